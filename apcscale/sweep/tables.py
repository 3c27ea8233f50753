"""A sweep directory read into tables: every evaluation point, one row per run, the selection.

Everything is read from the sweep directory (plan.json, runs/*/curve.csv and summary.json,
decisions.jsonl, Tune's trial errors), so the tables can be rebuilt at any time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from apcscale.sweep.plan import Plan, cooldown_start
from apcscale.sweep.scheduler import DECISIONS, DecisionLog
from apcscale.train.rundir import CURVE_FIELDS, FAILED, FINISHED, INTERRUPTED, RUNNING, STOPPED, RunDir

POINT_COLUMNS = [
    "run_id",
    "arch",
    "width",
    "depth",
    "label",
    "N",
    "N_total",
    "subset",
    "D",
    "hours",
    "seed",
    "step",
    "frames",
    "flops",
    "wall_time",
    "train_time",
    "dev_loss",
    "copy_baseline",
    "lr",
    "status",
]


def _tune_errors(sweep_dir: Path) -> dict[str, str]:
    """run id -> last line of the error of trials Tune recorded as errored."""
    out: dict[str, str] = {}
    for err in (sweep_dir / "tune").glob("*/error.txt"):
        run_id = err.parent.name.rsplit("_", 1)[0]
        text = err.read_text().strip().splitlines()
        out[run_id] = text[-1][:300] if text else "error"
    return out


def _read_curve(run_dir: Path) -> pd.DataFrame:
    points = RunDir(run_dir).read_curve()
    return pd.DataFrame(points, columns=list(CURVE_FIELDS)) if points else pd.DataFrame()


#: the statuses whose evaluations enter the selection and the fits: runs that ended normally
FIT_STATUSES = ("finished", "stopped")


def run_status(
    run_dir: Path, stops: dict[str, dict], errors: dict[str, str], run_id: str, live: bool = False
) -> tuple[str, str]:
    """(status, note) of a run for the tables: finished, stopped (by the scheduler: pruned),
    failed, interrupted (resumable), running (only while a driver holds the sweep: `live`) or
    not run. The status is the run directory's (RunDir); `stops` (the scheduler's stop
    decisions) give a stopped run's reason; `errors` (Tune's trial errors) the error of a run
    that failed before it could record one."""
    rd = RunDir(run_dir)
    summary = rd.read_summary() or {}
    status = rd.effective_status(live=live)
    if status == RUNNING:
        return "running", "being trained by the live sweep"
    if status == FAILED:
        return "failed", str(summary.get("error") or errors.get(run_id) or "failed")
    if status == STOPPED:
        reason = (summary.get("decision") or stops.get(run_id) or {}).get("reason")
        return "stopped", str(reason or summary.get("error") or "stopped by the scheduler")
    if status == FINISHED:
        return "finished", ""  # possibly after a crash and a retry (Tune keeps the first error's log)
    if status == INTERRUPTED:
        why = summary.get("error") or "the process training it ended without a word (killed, or its driver died)"
        return "interrupted", f"{why}; --resume continues it"
    if run_id in errors:  # a trial that errored before its run could start
        return "failed", errors[run_id]
    return "not run", ""


def _live_elsewhere(sweep_dir: Path) -> bool:
    """A driver other than this process holds the sweep (its "running" runs are being trained)."""
    import os
    import socket

    from apcscale.sweep.lock import holder

    h = holder(sweep_dir)
    return h is not None and (h.get("pid") != os.getpid() or h.get("host") != socket.gethostname())


def _number(value: Any) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return 0.0
    return v if math.isfinite(v) else 0.0


def load_tables(sweep_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, Plan, list[dict]]:
    sweep_dir = Path(sweep_dir)
    plan = Plan.load(sweep_dir / "plan.json")
    decisions = DecisionLog(sweep_dir / DECISIONS).read()
    stops = {d["run_id"]: d for d in decisions if d.get("action") == "stop" and d.get("mode") in ("prune", "asha")}
    errors = _tune_errors(sweep_dir)
    live = _live_elsewhere(sweep_dir)
    point_frames, run_rows = [], []
    for r in [*plan.runs, *plan.backlog]:
        run_dir = sweep_dir / "runs" / r.run_id
        status, note = run_status(run_dir, stops, errors, r.run_id, live=live)
        curve = _read_curve(run_dir)
        meta = {
            "run_id": r.run_id,
            "arch": r.arch,
            "width": r.width,
            "depth": r.depth,
            "label": r.label,
            "N": r.N,
            "N_total": r.N_total,
            "subset": r.subset,
            "D": r.D,
            "hours": r.hours,
            "seed": r.seed,
        }
        if len(curve):
            pts = pd.DataFrame(
                {
                    **{k: [v] * len(curve) for k, v in meta.items()},
                    "step": curve["steps"].astype(int).to_numpy(),
                    "frames": curve["frames"].to_numpy(),
                    "flops": curve["flops"].to_numpy(),
                    "wall_time": curve["wall_time"].to_numpy(),
                    "train_time": curve["train_time"].to_numpy(),
                    "dev_loss": curve["dev/loss"].to_numpy(),
                    "copy_baseline": curve["dev/copy_baseline"].to_numpy(),
                    "lr": curve["lr"].to_numpy(),
                    "status": [status] * len(curve),
                }
            )
            point_frames.append(pts)
        summary = RunDir(run_dir).read_summary() or {}
        stopping = summary.get("stopping") or {}
        fired = stopping.get("fired_at")
        start = cooldown_start(r.recipe)
        cooldown_frames = (
            float(fired) if fired is not None else start * r.planned_frames if start is not None else math.nan
        )
        losses = curve["dev/loss"].to_numpy() if len(curve) else np.array([])
        finite = losses[np.isfinite(losses)]
        best_i = int(np.nanargmin(losses)) if len(finite) else -1
        # what the run spent: its last evaluation, or beyond it where its summary says so (a run that failed
        # between evaluations trained past its last one)
        frames = max(float(curve["frames"].iloc[-1]) if len(curve) else 0.0, _number(summary.get("frames")))
        flops = max(float(curve["flops"].iloc[-1]) if len(curve) else 0.0, _number(summary.get("flops")))
        wall = float(curve["wall_time"].iloc[-1]) if len(curve) else math.nan
        run_rows.append(
            {
                **meta,
                "status": status,
                "note": note,
                "in_plan": r in plan.runs,
                "planned_frames": r.planned_frames,
                "planned_flops": r.planned_flops,
                "frames": frames,
                "flops": flops,
                "fraction": flops / r.planned_flops if r.planned_flops else math.nan,
                "evaluations": int(len(curve)),
                "wall_time": wall,
                "est_seconds": r.est_seconds,
                "final_dev_loss": float(losses[-1]) if len(losses) else math.nan,
                "min_dev_loss": float(finite.min()) if len(finite) else math.nan,
                # the minimum is settled when the run finished, or the curve had turned up before it was stopped
                "min_settled": bool(status == "finished" or (len(finite) and best_i < len(losses) - 1)),
                "stopped_at": float(stops[r.run_id]["fraction"])
                if r.run_id in stops and stops[r.run_id].get("fraction") is not None
                else math.nan,
                "end": summary.get("end"),
                "converged": summary.get("converged"),
                "cooldown_frames": cooldown_frames,
            }
        )
    points = pd.concat(point_frames, ignore_index=True) if point_frames else pd.DataFrame(columns=POINT_COLUMNS)
    points = points[POINT_COLUMNS]
    runs = pd.DataFrame(run_rows)
    return points, runs, plan, decisions


def curves_of(points: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for run_id, df in points.groupby("run_id", sort=False):
        df = df[(df["flops"] > 0) & np.isfinite(df["dev_loss"])]
        if len(df):
            out[str(run_id)] = (df["flops"].to_numpy(float), df["dev_loss"].to_numpy(float))
    return out


__all__ = ["POINT_COLUMNS", "FIT_STATUSES", "load_tables", "run_status", "curves_of"]
