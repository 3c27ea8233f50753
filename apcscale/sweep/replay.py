"""Replay a pruning policy over the recorded curves of a finished sweep.

"What would this policy have saved, and how far would the frontier have moved?"
answered without training anything: the evaluations of every run are fed to a
fresh `FrontierPolicy` in the order they arrived (their recorded report times,
`timeline="recorded"`), or with every other run complete from the start
(`timeline="complete"`, the most the policy could prune with hindsight of the
envelope). A stopped run's later evaluations are dropped, as they would never
have happened. Reported: compute spent and saved, the frontier fitted on the
truncated curves against the one fitted on the full curves (exponent and
L_inf, absolute and relative), and every stopped run that would in fact have
reached the final envelope later (a wrong stop) with how far below it went.

Best replayed over a sweep run with `pruning: off` (ground truth: every curve
complete). Caveat: in a live pruned sweep a stopped run frees its slot, so later
runs start earlier; the replay keeps the recorded timing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from apcscale.sweep.policy import Envelope, FrontierPolicy, PolicyConfig


@dataclass
class ReplayResult:
    config: PolicyConfig
    timeline: str
    stops: dict[str, dict[str, Any]]  # run id -> the stop decision
    spent_full: float
    spent: float
    frontier_full: dict[str, Any]
    frontier: dict[str, Any]
    wrong_stops: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    by_group: dict[str, tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=dict)  # arch -> (full, kept)
    hindsight: float = math.nan  # fraction of the compute a policy knowing every final curve would spend

    def group_change(self, group: str, key: str) -> float:
        full, kept = self.by_group.get(group, ({}, {}))
        a, b = full.get(key, math.nan), kept.get(key, math.nan)
        return (b - a) / abs(a) if a and math.isfinite(a) and math.isfinite(b) else math.nan

    @property
    def saved_fraction(self) -> float:
        return 1.0 - self.spent / self.spent_full if self.spent_full > 0 else math.nan

    def change(self, key: str) -> float:
        a, b = self.frontier_full.get(key, math.nan), self.frontier.get(key, math.nan)
        return (b - a) / abs(a) if a and math.isfinite(a) and math.isfinite(b) else math.nan

    def summary(self) -> str:
        ff, fr = self.frontier_full, self.frontier
        lines = [
            f"replay ({self.timeline} timeline, min_fraction {self.config.min_fraction:g}, level {self.config.level:g}, "
            f"margin {self.config.margin:g}): {len(self.stops)} runs stopped",
            f"  compute {self.spent:.4g} of {self.spent_full:.4g} FLOPs ({self.spent / self.spent_full:.1%}; "
            f"saved {self.saved_fraction:.1%}); with hindsight of every final curve (each run stopped, past the "
            f"same minimum fractions, once it never again reaches the envelope): {self.hindsight:.1%}",
        ]
        if "alpha" in ff and "alpha" in fr:
            lines.append(
                f"  frontier alpha_C {ff['alpha']:.4f} -> {fr['alpha']:.4f} ({self.change('alpha'):+.1%}), "
                f"L_inf {ff['L_inf']:.4f} -> {fr['L_inf']:.4f} ({self.change('L_inf'):+.2%})"
            )
        else:
            lines.append(f"  frontier fit unavailable: {ff.get('error') or fr.get('error')}")
        for group, (full, kept) in self.by_group.items():
            if "alpha" in full and "alpha" in kept:
                lines.append(
                    f"  {group} frontier alpha_C {full['alpha']:.4f} -> {kept['alpha']:.4f} "
                    f"({self.group_change(group, 'alpha'):+.1%}), L_inf {full['L_inf']:.4f} -> "
                    f"{kept['L_inf']:.4f} ({self.group_change(group, 'L_inf'):+.2%})"
                )
            else:
                lines.append(f"  {group} frontier: not fitted ({full.get('error') or kept.get('error')})")
        for run_id, d in self.stops.items():
            lines.append(f"  stop {run_id} at {d['fraction']:.0%}: {d['reason']}")
        for w in self.wrong_stops:
            lines.append(
                f"  WRONG STOP {w['run_id']}: its full curve reached {w['loss']:.4f} at C={w['compute']:.3g}, "
                f"below the envelope of the others ({w['envelope']:.4f})"
            )
        if not self.wrong_stops:
            lines.append("  no stopped run would have reached the final envelope")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        strip = lambda d: {k: v for k, v in d.items() if k not in ("fit", "frontier")}  # noqa: E731
        return {
            "timeline": self.timeline,
            "config": self.config.__dict__,
            "stops": self.stops,
            "spent_full": self.spent_full,
            "spent": self.spent,
            "saved_fraction": self.saved_fraction,
            "frontier_full": strip(self.frontier_full),
            "frontier": strip(self.frontier),
            "alpha_change": self.change("alpha"),
            "L_inf_change": self.change("L_inf"),
            "by_group": {
                g: {
                    "full": strip(f),
                    "kept": strip(k),
                    "alpha_change": self.group_change(g, "alpha"),
                    "L_inf_change": self.group_change(g, "L_inf"),
                }
                for g, (f, k) in self.by_group.items()
            },
            "hindsight_spend": self.hindsight,
            "wrong_stops": self.wrong_stops,
        }


def hindsight_spend(points: pd.DataFrame, min_fraction: float | dict[str, float], per_arch: bool = True) -> float:
    """What a policy knowing every final curve would spend (fraction of the full compute): each run
    is stopped at the first evaluation past `min_fraction` of its budget (a number, or one per run
    id: the earliest the policy may stop it) after which it never again reaches the final envelope
    of the others (of its architecture, if per_arch): no stop is wrong, and none comes later than
    it could."""
    pts = points[np.isfinite(points["dev_loss"])]
    total = float(pts.groupby("run_id")["flops"].max().sum())
    spent = 0.0
    for run_id, df in pts.groupby("run_id", sort=False):
        others = pts[pts["run_id"] != run_id]
        if per_arch and "arch" in pts:
            others = others[others["arch"] == df["arch"].iloc[0]]
        env = Envelope(others["flops"].to_numpy(float), others["dev_loss"].to_numpy(float))
        df = df.sort_values("flops")
        c = df["flops"].to_numpy(float)
        planned = float(c.max())
        below = df["dev_loss"].to_numpy(float) < env(c)  # as the wrong-stop check counts it
        stop = planned
        first = min_fraction.get(run_id, math.nan) if isinstance(min_fraction, dict) else min_fraction
        for j in np.flatnonzero(c >= first * planned):
            if not below[j + 1 :].any():  # nothing later reaches the envelope: stop here
                stop = float(c[j])
                break
        spent += stop
    return spent / total if total > 0 else math.nan


def report_times(sweep_dir: Path) -> dict[tuple[str, float], float]:
    """(run id, compute) -> unix time the evaluation was reported, from Tune's per-trial result logs."""
    out: dict[tuple[str, float], float] = {}
    for path in (sweep_dir / "tune").glob("*/result.json"):
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            run_id = rec.get("run_id") or rec.get("config", {}).get("run_id")
            t = rec.get("timestamp_s", rec.get("timestamp"))
            if run_id is not None and "flops" in rec and t is not None:
                out.setdefault((run_id, float(rec["flops"])), float(t))
    return out


def replay(
    points: pd.DataFrame,
    planned: dict[str, float],
    config: PolicyConfig | None = None,
    *,
    timeline: str = "recorded",
    times: dict[tuple[str, float], float] | None = None,
    cooldown: dict[str, float | None] | None = None,
    sizes: dict[str, float] | None = None,
    groups: dict[str, str] | None = None,
    twins: dict[str, list[str]] | None = None,
    extrapolate=None,
    bootstrap: int = 200,
    frozen_from: dict[str, float] | None = None,
) -> ReplayResult:
    """Replay the frontier policy over `points` (the tidy table: run_id, flops, dev_loss, wall_time).

    frozen_from: run id -> compute from which the live scheduler took no decision for it (its last
    evaluation, or its stopping rule fired and it was cooling down to its end)."""
    frozen_from = frozen_from or {}
    from apcscale.sweep.fits import frontier_fit
    from apcscale.sweep.tables import curves_of

    config = config or PolicyConfig()
    pts = points[np.isfinite(points["dev_loss"])].copy()
    pts = pts.sort_values(["run_id", "flops"], kind="stable")
    if timeline == "recorded":
        times = times or {}
        start: dict[str, float] = {}
        for run_id, df in pts.groupby("run_id", sort=False):
            known = [
                times[(run_id, float(c))] - float(w)
                for c, w in zip(df["flops"], df["wall_time"])
                if (run_id, float(c)) in times
            ]
            start[run_id] = float(np.median(known)) if known else math.nan
        # runs without report times keep their order in the table, after the ones with times
        fallback = max([v for v in start.values() if math.isfinite(v)], default=0.0)
        pts["t"] = [
            times.get((r, float(c)), (start[r] if math.isfinite(start[r]) else fallback) + float(w))
            for r, c, w in zip(pts["run_id"], pts["flops"], pts["wall_time"])
        ]
        events = pts.sort_values(["t", "run_id"], kind="stable")
    elif timeline != "complete":
        raise ValueError(f"timeline must be 'recorded' or 'complete', got {timeline!r}")

    stops: dict[str, dict[str, Any]] = {}
    log: list[dict[str, Any]] = []
    run_group = dict(groups) if groups is not None else (dict(zip(pts["run_id"], pts["arch"])) if "arch" in pts else {})

    def new_policy() -> FrontierPolicy:
        p = FrontierPolicy(config, extrapolate=extrapolate)
        for run_id in pts["run_id"].unique():
            p.register(
                run_id,
                planned[run_id],
                (cooldown or {}).get(run_id),
                run_group.get(run_id),
                (twins or {}).get(run_id, ()),
            )
        return p

    if timeline == "recorded":
        policy = new_policy()
        for run_id, c, l in zip(events["run_id"], events["flops"], events["dev_loss"]):
            if run_id in stops:
                continue
            if policy.observe(run_id, c, l) and c > 0 and c < frozen_from.get(run_id, math.inf):
                d = policy.decide(run_id)
                log.append(d.to_dict())
                if d.action == "stop":
                    stops[run_id] = d.to_dict()
    else:
        for run_id, df in pts.groupby("run_id", sort=False):
            policy = new_policy()
            for other, odf in pts[pts["run_id"] != run_id].groupby("run_id", sort=False):
                for c, l in zip(odf["flops"], odf["dev_loss"]):
                    policy.observe(other, c, l)
            for c, l in zip(df["flops"], df["dev_loss"]):
                if policy.observe(run_id, c, l) and c > 0 and c < frozen_from.get(run_id, math.inf):
                    d = policy.decide(run_id)
                    log.append(d.to_dict())
                    if d.action == "stop":
                        stops[run_id] = d.to_dict()
                        break

    # the earliest fraction at which the policy may stop each run (sooner for one with twins)
    earliest = {r: config.earliest_stop(bool((twins or {}).get(r))) for r in pts["run_id"].unique()}
    kept = pts[[not (r in stops and c > stops[r]["compute"]) for r, c in zip(pts["run_id"], pts["flops"])]]
    full_curves, kept_curves = curves_of(pts), curves_of(kept)
    spent_full = float(pts.groupby("run_id")["flops"].max().sum())
    spent = float(kept.groupby("run_id")["flops"].max().sum())
    if sizes is None and "N" in pts:
        sizes = dict(zip(pts["run_id"], pts["N"].astype(float)))
    fr_full = frontier_fit(full_curves, sizes=sizes, bootstrap=bootstrap)
    fr_kept = frontier_fit(kept_curves, sizes=sizes, bootstrap=bootstrap)
    by_group = {}
    for group in sorted({g for g in run_group.values() if g is not None}):
        ids = {r for r, g in run_group.items() if g == group}
        if len(ids) >= 2 and len(set(run_group.values())) > 1:
            by_group[group] = (
                frontier_fit({k: v for k, v in full_curves.items() if k in ids}, sizes=sizes, bootstrap=bootstrap),
                frontier_fit({k: v for k, v in kept_curves.items() if k in ids}, sizes=sizes, bootstrap=bootstrap),
            )

    wrong = []
    for run_id, d in stops.items():
        others = pts[pts["run_id"] != run_id]
        if config.envelope == "arch" and run_group.get(run_id) is not None:
            others = others[[run_group.get(r) == run_group[run_id] for r in others["run_id"]]]
        env = Envelope(others["flops"].to_numpy(float), others["dev_loss"].to_numpy(float))
        later = pts[(pts["run_id"] == run_id) & (pts["flops"] > d["compute"])]
        if len(later):
            gap = later["dev_loss"].to_numpy(float) - env(later["flops"].to_numpy(float))
            i = int(np.argmin(gap))
            if gap[i] < 0:
                wrong.append(
                    {
                        "run_id": run_id,
                        "compute": float(later["flops"].iloc[i]),
                        "loss": float(later["dev_loss"].iloc[i]),
                        "envelope": float(later["dev_loss"].iloc[i] - gap[i]),
                        "below_by": float(-gap[i]),
                    }
                )
    return ReplayResult(
        config=config,
        timeline=timeline,
        stops=stops,
        spent_full=spent_full,
        spent=spent,
        frontier_full=fr_full,
        frontier=fr_kept,
        wrong_stops=wrong,
        decisions=log,
        by_group=by_group,
        hindsight=hindsight_spend(pts, earliest, config.envelope == "arch"),
    )


def replay_sweep(
    sweep_dir: str | Path, config: PolicyConfig | None = None, *, timeline: str = "recorded", bootstrap: int = 200
) -> ReplayResult:
    """Replay over a sweep directory (best one run with pruning off)."""
    from apcscale.sweep.tables import load_tables

    sweep_dir = Path(sweep_dir)
    points, runs, plan, _ = load_tables(sweep_dir)
    from apcscale.sweep.plan import cooldown_start, plan_twins

    everything = [*plan.runs, *plan.backlog]
    planned = {r.run_id: r.planned_flops for r in everything}
    cooldown = {r.run_id: cooldown_start(r.recipe) for r in everything}
    return replay(
        points,
        planned,
        config,
        timeline=timeline,
        times=report_times(sweep_dir),
        cooldown=cooldown,
        twins=plan_twins(plan),
        bootstrap=bootstrap,
        frozen_from=frozen_from(points, runs),
    )


def frozen_from(points: pd.DataFrame, runs: pd.DataFrame) -> dict[str, float]:
    """Per finished run, the compute from which the live scheduler decides nothing: the first evaluation
    after its stopping rule fired, else its last evaluation."""
    out = {}
    for _, r in runs[runs["status"] == "finished"].iterrows():
        df = points[(points["run_id"] == r["run_id"]) & np.isfinite(points["dev_loss"])]
        if df.empty:
            continue
        end = float(df["flops"].max())
        fired = r.get("cooldown_frames") if bool(r.get("converged") == True) else None  # noqa: E712
        if fired is not None and np.isfinite(fired):
            after = df[df["frames"] >= fired]
            if len(after):
                end = min(end, float(after["flops"].min()))
        out[str(r["run_id"])] = end
    return out


__all__ = ["replay", "replay_sweep", "ReplayResult", "report_times", "hindsight_spend"]
