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

Status of a run (apcscale.train.rundir): finished (its budget spent), stopped
(pruned by the frontier policy or ASHA: its curve ends where it was stopped),
failed (its loss turned NaN, or it crashed more often than `max_failures`),
interrupted (a crash, a signal or Ctrl-C; resumable) or not run (in the
backlog, or never started). Only finished and stopped runs enter the
selection and the fits; every run's evaluations are in points.csv with its
status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from apcscale.sweep.figures import plot_curves, plot_law
from apcscale.sweep.fits import _json_default, _jsonable_fit, frontier_fit, joint_fit
from apcscale.sweep.report import write_report
from apcscale.sweep.tables import FIT_STATUSES, POINT_COLUMNS, curves_of, hestness_selection, load_tables



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


def collect(sweep_dir: str | Path, *, wall_seconds: float | None = None, mode: str | None = None,
            plots: bool = True, bootstrap: int = 200) -> SweepResults:
    """Build (and write under <sweep>/results/) the tables, fits, plots and report of a sweep."""
    sweep_dir = Path(sweep_dir)
    out = sweep_dir / "results"
    out.mkdir(parents=True, exist_ok=True)
    points, runs, plan, decisions = load_tables(sweep_dir)
    selection = hestness_selection(runs)
    curves = curves_of(points[points["status"].isin(FIT_STATUSES)])  # no crashed or half-trained run
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


__all__ = ["collect", "load_tables", "hestness_selection", "frontier_fit", "curves_of", "SweepResults",
           "POINT_COLUMNS"]
