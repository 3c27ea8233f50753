"""A sweep's results read as a table of runs for the fit command (pandas and json only: no torch, no ray).

``python -m apcscale.recipes.fit SWEEP_DIR`` (or ``SWEEP_DIR/results/points.csv``)
reads the tables a sweep writes (results/points.csv, runs.csv, plan.json) and
fits them as the study intends:

* one fit per architecture (LSTM and Transformer are compared, never pooled);
* the evaluation each run makes before training (compute 0) is dropped with a
  note; so are the NaN losses of runs that diverged (status failed);
* L(N, D), L(N) and L(D) use the runs whose L(N, D) point the sweep judged a
  measured converged loss (runs.csv "point": converged, or at its budget); a run
  not converged, stopped while still falling, censored, interrupted or failed
  has only a bound of it (the sweep's own fit uses those bounds; this command
  leaves them out and says how many): its curve still makes the frontier. For
  an older runs.csv without "point": the finished runs, and the stopped ones
  whose curve had turned up;
* the compute-optimal table uses the sweep's own FLOPs per frame (which include
  the attention term and the layers outside N) and its data repetition (the
  median over the fitted runs of the passes over their data at their best
  evaluation), not C = 6 N D for one pass;
* the copy-last-frame baseline is drawn on the plots.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .frontier import TrainingCost
from .tables import read_table
from .validate import FitError

SWEEP_COLUMNS = ("run_id", "arch", "N", "D", "flops", "dev_loss")
COLUMNS = {"N": "N", "D": "D", "C": "flops", "loss": "dev_loss", "group": "run_id"}
FINISHED = ("finished",)
STOPPED = ("stopped", "pruned")
EXACT = ("converged", "at budget")  # the kinds of apcscale.sweep.points whose loss is a measured converged loss
WHY = {
    "stopped": "stopped before their minimum (only an upper bound)",
    "pruned": "stopped before their minimum (only an upper bound)",
    "failed": "failed",
    "incomplete": "interrupted",
    "interrupted": "interrupted",
    "not run": "not run",
}


@dataclass
class SweepTable:
    """A sweep's points with what the fit command needs to fit them as the study intends."""

    points: pd.DataFrame
    columns: dict[str, str]
    by: str
    costs: dict[str, TrainingCost]
    exclude_runs: dict[str, str]
    baselines: dict[str, float]
    notes: list[str] = field(default_factory=list)
    name: str | None = None
    source: str = ""


def is_sweep_table(df: pd.DataFrame) -> bool:
    return all(c in df.columns for c in SWEEP_COLUMNS)


def find_points(path: str | Path) -> Path | None:
    """results/points.csv (or .parquet) of a sweep directory; the path itself if it is a file; None if a
    directory without results."""
    p = Path(path)
    if p.is_dir():
        for cand in (p / "results" / "points.csv", p / "results" / "points.parquet", p / "points.csv"):
            if cand.is_file():
                return cand
        return None
    return p


def _plan(points_path: Path) -> dict[str, Any] | None:
    for cand in (points_path.parent.parent / "plan.json", points_path.parent / "plan.json"):
        if cand.is_file():
            try:
                return json.loads(cand.read_text())
            except (OSError, json.JSONDecodeError):
                return None
    return None


def read_sweep(path: str | Path, *, passes: float | None = None) -> SweepTable:
    """The sweep at ``path`` (its directory, or its results/points.csv) as a :class:`SweepTable`.

    ``passes`` overrides the data repetition assumed by the compute-optimal table."""
    p = Path(path)
    points_path = find_points(p)
    if points_path is None:
        raise FitError(
            f"{p}: a directory without results/points.csv; if it is a sweep, write its tables first "
            f"(python -m apcscale.recipes.sweep --report {p})"
        )
    df = read_table(points_path)
    if not is_sweep_table(df):
        missing = [c for c in SWEEP_COLUMNS if c not in df.columns]
        raise FitError(f"{points_path}: not a sweep's points table (missing {', '.join(missing)})")
    runs_path = points_path.parent / "runs.csv"
    runs = pd.read_csv(runs_path) if runs_path.is_file() else None
    plan = _plan(points_path)
    notes: list[str] = []

    status = df.groupby("run_id", sort=False)["status"].first().astype(str) if "status" in df.columns else None
    if status is None and runs is not None and "status" in runs.columns:
        status = runs.set_index("run_id")["status"].astype(str)
    loss = pd.to_numeric(df["dev_loss"], errors="coerce")
    failed_nan = ~np.isfinite(loss)
    if status is not None:
        failed_nan &= df["run_id"].map(status).eq("failed").to_numpy()
    if failed_nan.any():
        ids = sorted(set(df.loc[failed_nan, "run_id"].astype(str)))
        notes.append(
            f"dropped {int(failed_nan.sum())} non-finite dev losses of {len(ids)} failed run(s): "
            + ", ".join(ids[:6])
            + (" ..." if len(ids) > 6 else "")
        )
        df = df.loc[~failed_nan]

    exclude: dict[str, str] = {}
    if runs is not None and "point" in runs.columns:  # the sweep's own verdict on each run's L(N, D) point
        for run_id, kind in zip(runs["run_id"].astype(str), runs["point"]):
            if isinstance(kind, str) and kind not in EXACT:
                exclude[run_id] = f"{kind} (their converged loss is only bounded)"
            elif not isinstance(kind, str):
                exclude[run_id] = "without an L(N, D) point"
    elif status is not None:
        settled = _settled(df, runs)
        for run_id, st in status.items():
            if st in FINISHED or (st in STOPPED and settled.get(str(run_id), False)):
                continue
            exclude[str(run_id)] = WHY.get(st, st)

    # the sweep's cost: measured FLOPs per frame (per architecture) and its data repetition
    fpf = _flops_per_frame(df, runs, plan)
    costs: dict[str, TrainingCost] = {}
    rep_all = _passes_at_best(df, exclude)
    for arch, g in fpf.groupby("arch"):
        rep = passes if passes is not None else rep_all.get(arch, (1.0,))[0]
        costs[str(arch)] = TrainingCost(
            passes=float(rep),
            sizes=tuple(g["N"].astype(float)),
            flops_per_frame=tuple(g["flops_per_frame"].astype(float)),
            source="of the sweep" if passes is None else "of the sweep (passes given)",
        )
    if passes is None and rep_all:
        parts = []
        for a, (med, lo, hi) in sorted(rep_all.items()):
            spread = f" (its runs: {lo:.3g} to {hi:.3g})" if hi > 2 * lo else ""
            parts.append(f"{a} {med:.3g} passes{spread}")
        notes.append(
            "compute-optimal tables assume the sweep's data repetition, the median over the fitted runs of "
            "the passes over their data at their best evaluation: "
            + ", ".join(parts)
            + (
                "; runs that see their data a very different number of times make any single value a rough guide"
                if any(hi > 2 * lo for _, lo, hi in rep_all.values())
                else ""
            )
            + "; --passes to set it"
        )

    baselines: dict[str, float] = {}
    if "copy_baseline" in df.columns:
        cb = pd.to_numeric(df["copy_baseline"], errors="coerce")
        cb = cb[np.isfinite(cb) & (cb > 0)]
        if len(cb):
            baselines["copy last frame"] = float(cb.median())
    return SweepTable(
        points=df,
        columns=dict(COLUMNS),
        by="arch",
        costs=costs,
        exclude_runs=exclude,
        baselines=baselines,
        notes=notes,
        name=(plan or {}).get("name"),
        source=str(points_path),
    )


def _settled(df: pd.DataFrame, runs: pd.DataFrame | None) -> dict[str, bool]:
    """Run id -> whether its minimum is settled: runs.csv's min_settled, else whether its curve turned up
    after its lowest evaluation (as the sweep's own selection decides)."""
    if runs is not None and "min_settled" in runs.columns:
        return {str(r): bool(v) for r, v in zip(runs["run_id"], runs["min_settled"])}
    out = {}
    for run_id, g in df.groupby("run_id", sort=False):
        loss = pd.to_numeric(
            g.sort_values("frames" if "frames" in g else "flops")["dev_loss"], errors="coerce"
        ).to_numpy()
        finite = np.isfinite(loss)
        out[str(run_id)] = bool(finite.any() and np.nanargmin(np.where(finite, loss, np.inf)) < len(loss) - 1)
    return out


def _flops_per_frame(df: pd.DataFrame, runs: pd.DataFrame | None, plan: dict | None) -> pd.DataFrame:
    """(arch, N, flops_per_frame) per model size, from plan.json, runs.csv or the points themselves."""
    rows = []
    if plan is not None:
        for r in [*plan.get("runs", []), *plan.get("backlog", [])]:
            if r.get("flops_per_frame"):
                rows.append({"arch": r["arch"], "N": float(r["N"]), "flops_per_frame": float(r["flops_per_frame"])})
    if not rows and runs is not None and {"planned_flops", "planned_frames", "arch", "N"} <= set(runs.columns):
        ok = runs["planned_frames"] > 0
        rows = [
            {"arch": a, "N": float(n), "flops_per_frame": float(f / fr)}
            for a, n, f, fr in runs.loc[ok, ["arch", "N", "planned_flops", "planned_frames"]].itertuples(index=False)
        ]
    if not rows and "frames" in df.columns:
        ok = (df["frames"] > 0) & (df["flops"] > 0)
        rows = [
            {"arch": a, "N": float(n), "flops_per_frame": float(f / fr)}
            for a, n, f, fr in df.loc[ok, ["arch", "N", "flops", "frames"]].itertuples(index=False)
        ]
    out = pd.DataFrame(rows, columns=["arch", "N", "flops_per_frame"])
    return out.groupby(["arch", "N"], as_index=False)["flops_per_frame"].median()


def _passes_at_best(df: pd.DataFrame, exclude: dict[str, str]) -> dict[str, tuple[float, float, float]]:
    """Per architecture: (median, min, max) over the runs kept for L(N, D) of frames at their lowest loss / D."""
    if "frames" not in df.columns:
        return {}
    out: dict[str, list[float]] = {}
    for run_id, g in df.groupby("run_id", sort=False):
        if str(run_id) in exclude:
            continue
        g = g[np.isfinite(pd.to_numeric(g["dev_loss"], errors="coerce"))]
        if not len(g):
            continue
        best = g.loc[g["dev_loss"].idxmin()]
        if best["frames"] > 0 and best["D"] > 0:
            out.setdefault(str(best["arch"]), []).append(float(best["frames"] / best["D"]))
    return {
        a: (float(np.median(v)), float(min(v)), float(max(v)))
        for a, v in out.items()
        if v and math.isfinite(np.median(v))
    }


__all__ = ["SweepTable", "read_sweep", "is_sweep_table", "find_points", "SWEEP_COLUMNS"]
