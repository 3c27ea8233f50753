"""What a sweep leaves behind: tidy tables, the fits, plots and a short report.

    results/
      points.csv / points.parquet   every dev evaluation of every run (one row each)
      runs.csv                      one row per run: counts, status, spend, losses, estimate vs actual time
      selection.csv                 per (arch, N, D): median across seeds of each run's minimum dev loss
      fit.json                      the frontier L(C) (all runs and per architecture) and L(N, D) per architecture
      curves.png                    dev loss against compute, every run, the envelope and the frontier fit
      law_nd.png                    the selected losses against N for each D, with the fitted L(N, D)
      report.txt                    the above in words

Everything is read from the sweep directory (plan.json, runs/*/curve.csv and
summary.json, decisions.jsonl, Tune's trial errors), so `collect` can be re-run
on a finished or interrupted sweep at any time.

Status of a run: finished (its budget spent), pruned (stopped by the frontier
policy or ASHA: its curve ends where it was stopped), failed (its loss turned
NaN, or it crashed more often than `max_failures`), incomplete (interrupted,
resumable) or not run (in the backlog, or never started).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from apcscale.sweep.plan import Plan, _si, fmt_seconds
from apcscale.sweep.scheduler import DECISIONS, DecisionLog

POINT_COLUMNS = ["run_id", "arch", "width", "depth", "label", "N", "N_total", "subset", "D", "hours", "seed",
                 "step", "frames", "flops", "wall_time", "train_time", "dev_loss", "copy_baseline", "lr", "status"]


@dataclass
class SweepResults:
    sweep_dir: Path
    points: pd.DataFrame
    runs: pd.DataFrame
    selection: pd.DataFrame
    fits: dict[str, Any] = field(default_factory=dict)
    report: str = ""

    @property
    def frontier(self) -> dict[str, Any] | None:
        return self.fits.get("frontier", {}).get("all")


# ----------------------------------------------------------------------------------------------
# reading the sweep directory
# ----------------------------------------------------------------------------------------------

def _tune_errors(sweep_dir: Path) -> dict[str, str]:
    """run id -> last line of the error of trials Tune recorded as errored."""
    out: dict[str, str] = {}
    for err in (sweep_dir / "tune").glob("*/error.txt"):
        run_id = err.parent.name.rsplit("_", 1)[0]
        text = err.read_text().strip().splitlines()
        out[run_id] = text[-1][:300] if text else "error"
    return out


def _read_curve(run_dir: Path) -> pd.DataFrame:
    path = run_dir / "curve.csv"
    if not path.is_file():
        return pd.DataFrame()
    df = pd.read_csv(path)
    return df.drop_duplicates(subset=["frames", "steps"], keep="last").sort_values("flops", kind="stable")


def run_status(run_dir: Path, stops: dict[str, dict], errors: dict[str, str], run_id: str) -> tuple[str, str]:
    summary_path = run_dir / "summary.json"
    summary = {}
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
        except json.JSONDecodeError:
            summary = {}
    if summary.get("status") == "failed":
        return "failed", str(summary.get("error") or "")
    if run_id in stops:
        return "pruned", str(stops[run_id].get("reason", ""))
    if summary.get("status") == "stopped":
        return "pruned", str(summary.get("error") or "stopped by the scheduler")
    if summary.get("status") == "finished":
        return "finished", ""  # possibly after a crash and a retry (Tune keeps the first error's log)
    if run_id in errors:
        return "failed", errors[run_id]
    if run_dir.exists():
        return "incomplete", "interrupted; --resume continues it"
    return "not run", ""


def load_tables(sweep_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, Plan, list[dict]]:
    sweep_dir = Path(sweep_dir)
    plan = Plan.load(sweep_dir / "plan.json")
    decisions = DecisionLog(sweep_dir / DECISIONS).read()
    stops = {d["run_id"]: d for d in decisions if d.get("action") == "stop" and d.get("mode") in ("prune", "asha")}
    errors = _tune_errors(sweep_dir)
    point_frames, run_rows = [], []
    for r in [*plan.runs, *plan.backlog]:
        run_dir = sweep_dir / "runs" / r.run_id
        status, note = run_status(run_dir, stops, errors, r.run_id)
        curve = _read_curve(run_dir)
        meta = {"run_id": r.run_id, "arch": r.arch, "width": r.width, "depth": r.depth, "label": r.label, "N": r.N,
                "N_total": r.N_total, "subset": r.subset, "D": r.D, "hours": r.hours, "seed": r.seed}
        if len(curve):
            pts = pd.DataFrame({
                **{k: [v] * len(curve) for k, v in meta.items()},
                "step": curve["steps"].astype(int).to_numpy(), "frames": curve["frames"].to_numpy(),
                "flops": curve["flops"].to_numpy(), "wall_time": curve["wall_time"].to_numpy(),
                "train_time": curve["train_time"].to_numpy(), "dev_loss": curve["dev/loss"].to_numpy(),
                "copy_baseline": curve["dev/copy_baseline"].to_numpy(), "lr": curve["lr"].to_numpy(),
                "status": [status] * len(curve),
            })
            point_frames.append(pts)
        losses = curve["dev/loss"].to_numpy() if len(curve) else np.array([])
        finite = losses[np.isfinite(losses)]
        best_i = int(np.nanargmin(losses)) if len(finite) else -1
        flops = float(curve["flops"].iloc[-1]) if len(curve) else 0.0
        wall = float(curve["wall_time"].iloc[-1]) if len(curve) else math.nan
        run_rows.append({
            **meta, "status": status, "note": note, "in_plan": r in plan.runs,
            "planned_frames": r.planned_frames, "planned_flops": r.planned_flops,
            "frames": float(curve["frames"].iloc[-1]) if len(curve) else 0.0, "flops": flops,
            "fraction": flops / r.planned_flops if r.planned_flops else math.nan,
            "evaluations": int(len(curve)), "wall_time": wall, "est_seconds": r.est_seconds,
            "final_dev_loss": float(losses[-1]) if len(losses) else math.nan,
            "min_dev_loss": float(finite.min()) if len(finite) else math.nan,
            # the minimum is settled when the run finished, or the curve had turned up before it was stopped
            "min_settled": bool(status == "finished" or (len(finite) and best_i < len(losses) - 1)),
            "stopped_at": float(stops[r.run_id]["fraction"]) if r.run_id in stops and stops[r.run_id].get("fraction") is not None else math.nan,
        })
    points = pd.concat(point_frames, ignore_index=True) if point_frames else pd.DataFrame(columns=POINT_COLUMNS)
    points = points[POINT_COLUMNS]
    runs = pd.DataFrame(run_rows)
    return points, runs, plan, decisions


def hestness_selection(runs: pd.DataFrame, settled_only: bool = True) -> pd.DataFrame:
    """Per (arch, N, D): the median across seeds of each run's minimum dev loss (Hestness et al.)."""
    use = runs[np.isfinite(runs["min_dev_loss"])]
    if settled_only:
        use = use[use["min_settled"] & use["status"].isin(["finished", "pruned"])]
    if use.empty:
        return pd.DataFrame(columns=["arch", "label", "N", "subset", "D", "hours", "seeds", "median_min_dev_loss",
                                     "spread"])
    g = use.groupby(["arch", "label", "N", "subset", "D", "hours"], as_index=False)
    sel = g.agg(seeds=("seed", "nunique"), median_min_dev_loss=("min_dev_loss", "median"),
                lo=("min_dev_loss", "min"), hi=("min_dev_loss", "max"))
    sel["spread"] = sel["hi"] - sel["lo"]
    return sel.drop(columns=["lo", "hi"]).sort_values(["arch", "N", "D"]).reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# fits
# ----------------------------------------------------------------------------------------------

def curves_of(points: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for run_id, df in points.groupby("run_id", sort=False):
        df = df[(df["flops"] > 0) & np.isfinite(df["dev_loss"])]
        if len(df):
            out[str(run_id)] = (df["flops"].to_numpy(float), df["dev_loss"].to_numpy(float))
    return out


def frontier_fit(curves: dict[str, tuple[np.ndarray, np.ndarray]], *, sizes: dict[str, float] | None = None,
                 bootstrap: int = 200) -> dict[str, Any]:
    """The compute-efficient frontier of a set of curves and its fit L(C) = L_inf + (C_c/C)^alpha_C.

    With the runs' sizes, the fit leaves out the stretches of the envelope formed by the smallest
    or the largest model (there a smaller or larger model would likely have done better)."""
    from apcscale.scaling import compute_frontier

    if len(curves) < 2:
        return {"error": f"{len(curves)} curve(s): a frontier needs at least 2 runs"}
    try:
        fr = compute_frontier(curves, sizes={k: v for k, v in (sizes or {}).items() if k in curves} or None)
        fr.fit_law(bootstrap=bootstrap)
    except Exception as exc:  # FitError and friends: reported, not raised
        return {"error": f"{type(exc).__name__}: {exc}"}
    fit = getattr(fr, "fit", None)
    out: dict[str, Any] = {"frontier": fr}
    if fit is None:
        out["error"] = "the frontier could not be fitted"
        return out
    p = fit.params
    alpha_key = next(k for k in p if k.startswith("alpha"))
    floor_key = fit.law_obj.floor if getattr(fit, "law_obj", None) is not None else "L_inf"
    scale_key = next((k for k in p if k not in (alpha_key, floor_key)), None)
    out.update({
        "alpha": float(p[alpha_key]), "alpha_interval": list(fit.intervals.get(alpha_key, (math.nan, math.nan))),
        "L_inf": float(p[floor_key]), "L_inf_interval": list(fit.intervals.get(floor_key, (math.nan, math.nan))),
        "L_inf_identifiable": bool(fit.identifiable.get(floor_key, True)),
        "C_c": float(p[scale_key]) if scale_key else math.nan, "fit": fit,
        "segments": _segments(fr),
    })
    return out


def _segments(fr) -> list[dict[str, Any]]:
    segs = getattr(fr, "segments", None) or []
    out = []
    for s in segs:
        if isinstance(s, dict):
            out.append({k: (v if not isinstance(v, np.ndarray) else v.tolist()) for k, v in s.items()})
        elif hasattr(s, "_asdict"):
            out.append({k: (v if not isinstance(v, np.ndarray) else v.tolist()) for k, v in s._asdict().items()})
        else:
            out.append({"segment": str(s)})
    return out


def joint_fit(selection: pd.DataFrame, arch: str) -> dict[str, Any]:
    from apcscale.scaling import fit_joint

    sel = selection[selection["arch"] == arch]
    if sel["N"].nunique() < 2 or sel["D"].nunique() < 2:
        return {"error": f"{arch}: L(N, D) needs at least 2 sizes and 2 data sizes with settled losses"}
    try:
        fit = fit_joint(sel["N"].to_numpy(float), sel["D"].to_numpy(float), sel["median_min_dev_loss"].to_numpy(float),
                        law="droppo", bootstrap=200)
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"fit": fit, "params": fit.params, "intervals": {k: list(v) for k, v in fit.intervals.items()}}


def _jsonable_fit(entry: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in entry.items():
        if k in ("frontier",):
            continue
        if k == "fit" and v is not None:
            out["fit"] = v.to_dict()
        else:
            out[k] = v
    return out


# ----------------------------------------------------------------------------------------------
# plots
# ----------------------------------------------------------------------------------------------

def plot_curves(points: pd.DataFrame, runs: pd.DataFrame, fits: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    pts = points[(points["flops"] > 0) & np.isfinite(points["dev_loss"])]
    if pts.empty:
        plt.close(fig)
        return
    norm = colors.LogNorm(vmin=max(1.0, pts["N"].min()), vmax=max(pts["N"].max(), pts["N"].min() * 1.01))
    cmap = cm.viridis
    dashes = {"lstm": "-", "transformer": "--"}
    for run_id, df in pts.groupby("run_id", sort=False):
        row = runs[runs["run_id"] == run_id].iloc[0]
        ax.plot(df["flops"], df["dev_loss"], dashes.get(row["arch"], "-"), color=cmap(norm(row["N"])),
                lw=1.0, alpha=0.85 if row["status"] == "finished" else 0.6)
        if row["status"] == "pruned":
            ax.plot(df["flops"].iloc[-1], df["dev_loss"].iloc[-1], "x", color="tab:red", ms=6)
        if row["status"] == "failed":
            ax.plot(df["flops"].iloc[-1], df["dev_loss"].iloc[-1], "o", mfc="none", color="tab:red", ms=6)
    fr = fits.get("frontier", {}).get("all", {})
    c = np.sort(pts["flops"].to_numpy(float))
    env = np.minimum.accumulate(pts.sort_values("flops")["dev_loss"].to_numpy(float))
    ax.step(c, env, where="post", color="black", lw=1.6, label="envelope (best loss reached with <= C)")
    if "fit" in fr and fr.get("fit") is not None:
        lo, hi = fr["fit"].diagnostics.get("fit_range", (c[0], c[-1]))
        grid = np.geomspace(lo, hi, 200)  # drawn where it was fitted, not extrapolated
        ax.plot(grid, fr["fit"].predict(grid), color="tab:red", lw=1.8, ls=":",
                label=f"frontier fit: L_inf {fr['L_inf']:.3f} + (C_c/C)^{fr['alpha']:.3f}")
    finite = pts["dev_loss"].to_numpy(float)
    ax.set_ylim(finite.min() * 0.95, finite.max() * 1.05)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel("dev L1 loss")
    ax.set_title(title)
    sm = cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, label="N (context parameters)")
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="gray", ls=dashes[a], label=a) for a in sorted(set(pts["arch"])) if a in dashes]
    handles += [Line2D([], [], color="tab:red", marker="x", ls="none", label="pruned here")]
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_law(selection: pd.DataFrame, fits: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    archs = sorted(set(selection["arch"]))
    if not archs:
        return
    fig, axes = plt.subplots(1, len(archs), figsize=(5.5 * len(archs), 4.2), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        sel = selection[selection["arch"] == arch]
        ds = sorted(set(sel["D"]))
        cmap = plt.get_cmap("plasma")
        fit = fits.get("joint", {}).get(arch, {}).get("fit")
        for i, D in enumerate(ds):
            s = sel[sel["D"] == D].sort_values("N")
            color = cmap(i / max(1, len(ds) - 1) * 0.85)
            ax.plot(s["N"], s["median_min_dev_loss"], "o", color=color, label=f"D = {_si(D)} frames")
            if fit is not None:
                grid = np.geomspace(sel["N"].min() / 1.5, sel["N"].max() * 1.5, 100)
                ax.plot(grid, fit.predict(grid, np.full_like(grid, D)), "-", color=color, lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N (context parameters)")
        ax.set_ylabel("median over seeds of min dev loss")
        ax.set_title(f"{arch}" + ("" if fit is not None else " (no L(N, D) fit)"))
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
# the report
# ----------------------------------------------------------------------------------------------

def _fmt_interval(iv) -> str:
    try:
        lo, hi = iv
        return f"[{lo:.4g}, {hi:.4g}]"
    except (TypeError, ValueError):
        return ""


def write_report(res: SweepResults, plan: Plan, decisions: list[dict], *, wall_seconds: float | None,
                 mode: str | None) -> str:
    from apcscale.scaling import derived_statements

    runs, sel = res.runs, res.selection
    in_plan = runs[runs["in_plan"] | (runs["status"] != "not run")]
    L = []
    L.append(f"sweep {plan.name}" + (f" (pruning: {mode})" if mode else ""))
    counts = in_plan["status"].value_counts().to_dict()
    L.append("runs: " + ", ".join(f"{counts.get(s, 0)} {s}" for s in ("finished", "pruned", "failed", "incomplete", "not run")
                                  if counts.get(s, 0) or s in ("finished", "pruned", "failed")))
    spent = float(runs["flops"].sum())
    planned = float(in_plan["planned_flops"].sum())
    line = f"compute: {_si(spent)}FLOP spent of {_si(planned)}FLOP planned ({spent / planned:.0%})" if planned else "compute: -"
    if wall_seconds is not None:
        line += f"; wall time {fmt_seconds(wall_seconds)} (plan estimated {fmt_seconds(plan.makespan())})"
    L.append(line)
    L.append("")
    L.append("Selected losses (Hestness et al.: median across seeds of each run's minimum dev loss;")
    L.append("runs whose minimum is settled: finished, or stopped after their curve turned up)")
    if sel.empty:
        L.append("  (none)")
    else:
        L.append(f"  {'arch':<12}{'N':>9}  {'subset':<7}{'D frames':>10}{'hours':>8}{'seeds':>6}{'loss':>9}")
        for _, r in sel.iterrows():
            L.append(f"  {r['arch']:<12}{_si(r['N']):>9}  {r['subset']:<7}{_si(r['D']):>10}{r['hours']:>8.3g}"
                     f"{int(r['seeds']):>6}{r['median_min_dev_loss']:>9.4f}")
    L.append("")
    L.append("Compute-efficient frontier  L(C) = L_inf + (C_c / C)^alpha_C  (lower envelope of every curve)")
    for key, fr in res.fits.get("frontier", {}).items():
        if "error" in fr and "alpha" not in fr:
            L.append(f"  {key}: not fitted ({fr['error']})")
            continue
        ident = "" if fr.get("L_inf_identifiable", True) else "  (L_inf not identifiable)"
        L.append(f"  {key:<12} alpha_C {fr['alpha']:.4f} {_fmt_interval(fr['alpha_interval'])}  "
                 f"L_inf {fr['L_inf']:.4f} {_fmt_interval(fr['L_inf_interval'])}  C_c {fr['C_c']:.3g}{ident}")
        try:
            st = derived_statements(fr["alpha"], tuple(fr["alpha_interval"]))
            L.append(f"  {'':<12} {st['doubling']} {st['halving']}")
        except (ValueError, KeyError, TypeError):
            pass
    L.append("")
    L.append("L(N, D) = L_inf + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D  (Droppo & Elibol), per architecture")
    for arch, jf in res.fits.get("joint", {}).items():
        if "fit" not in jf:
            L.append(f"  {arch}: not fitted ({jf.get('error', '')})")
            continue
        L.append(f"  {arch}:")
        L.append("    " + jf["fit"].summary().replace("\n", "\n    "))
    L.append("")
    stops = [d for d in decisions if d.get("action") == "stop"]
    if stops:
        kind = {"prune": "stopped", "shadow": "would have stopped (shadow mode: nothing was stopped)", "asha": "ASHA stopped"}
        L.append("Pruning decisions")
        for d in stops:
            frac = d.get("fraction")
            L.append(f"  {kind.get(d.get('mode'), d.get('mode'))} {d['run_id']} at "
                     f"{(frac if frac is not None else math.nan):.0%} of its budget: {d.get('reason', '')}")
        by_rule: dict[str, list[float]] = {}
        for d in stops:
            rule = ("behind a larger data twin" if d.get("twin") else "past its best" if
                    str(d.get("reason", "")).startswith("past its best") else
                    "extrapolated above the frontier" if d.get("mode") != "asha" else "ASHA")
            by_rule.setdefault(rule, []).append((d.get("planned") or 0) - (d.get("compute") or 0))
        L.append("  by rule: " + "; ".join(f"{rule} {len(v)} ({_si(sum(v))}FLOP of their plans not spent)"
                                          for rule, v in by_rule.items()))
        shadow = [d for d in stops if d.get("mode") == "shadow"]
        if shadow:
            saved = sum((d.get("planned") or 0) - (d.get("compute") or 0) for d in shadow)
            L.append(f"  in shadow mode the frontier policy would have saved {_si(saved)}FLOP "
                     f"({saved / spent:.0%} of what was spent); apcscale.sweep.replay tells how far the fit would move")
        L.append(f"  ({len(decisions)} decisions in decisions.jsonl)")
        L.append("")
    failed = in_plan[in_plan["status"] == "failed"]
    if len(failed):
        L.append("Failed runs")
        for _, r in failed.iterrows():
            L.append(f"  {r['run_id']}: {r['note']}")
        L.append("")
    ran = runs[(runs["status"] == "finished") & np.isfinite(runs["wall_time"])]
    if len(ran):
        overhead = float((plan.to_dict().get("probe") or {}).get("trial_overhead_s", 0.0))
        ratio = float(np.median(ran["wall_time"] / np.maximum(ran["est_seconds"] - overhead, 1e-9)))
        L.append(f"time estimates: a finished run trained and evaluated for {ratio:.2f}x the plan's estimate "
                 f"(median over {len(ran)} runs; the probe times an idle machine, the runs share it)")
    L.append("files: points.csv/.parquet (every evaluation), runs.csv, selection.csv, fit.json, curves.png, law_nd.png")
    return "\n".join(L) + "\n"


def collect(sweep_dir: str | Path, *, wall_seconds: float | None = None, mode: str | None = None,
            plots: bool = True, bootstrap: int = 200) -> SweepResults:
    """Build (and write under <sweep>/results/) the tables, fits, plots and report of a sweep."""
    sweep_dir = Path(sweep_dir)
    out = sweep_dir / "results"
    out.mkdir(parents=True, exist_ok=True)
    points, runs, plan, decisions = load_tables(sweep_dir)
    selection = hestness_selection(runs)
    curves = curves_of(points)
    sizes = dict(zip(runs["run_id"], runs["N"].astype(float)))
    fits: dict[str, Any] = {"frontier": {}, "joint": {}}
    fits["frontier"]["all"] = frontier_fit(curves, sizes=sizes, bootstrap=bootstrap)
    for arch in sorted(set(runs["arch"])):
        ids = set(runs.loc[runs["arch"] == arch, "run_id"])
        sub = {k: v for k, v in curves.items() if k in ids}
        if len(sub) >= 2:
            fits["frontier"][arch] = frontier_fit(sub, sizes=sizes, bootstrap=bootstrap)
        fits["joint"][arch] = joint_fit(selection, arch)
    res = SweepResults(sweep_dir=sweep_dir, points=points, runs=runs, selection=selection, fits=fits)

    points.to_csv(out / "points.csv", index=False)
    try:
        points.to_parquet(out / "points.parquet", index=False)
    except (ImportError, ValueError):
        pass
    runs.to_csv(out / "runs.csv", index=False)
    selection.to_csv(out / "selection.csv", index=False)
    payload = {
        "frontier": {k: _jsonable_fit(v) for k, v in fits["frontier"].items()},
        "joint": {k: _jsonable_fit(v) for k, v in fits["joint"].items()},
    }
    (out / "fit.json").write_text(json.dumps(payload, indent=1, default=_json_default))
    if plots:
        plot_curves(points, runs, fits, out / "curves.png", f"{plan.name}: dev loss vs training compute")
        plot_law(selection, fits, out / "law_nd.png", f"{plan.name}: L(N, D)")
    res.report = write_report(res, plan, decisions, wall_seconds=wall_seconds, mode=mode)
    (out / "report.txt").write_text(res.report)
    return res


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return str(value)


__all__ = ["collect", "load_tables", "hestness_selection", "frontier_fit", "curves_of", "SweepResults",
           "POINT_COLUMNS"]
