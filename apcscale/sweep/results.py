"""What a sweep leaves behind: tidy tables, the fits, plots and a short report.

    results/
      points.csv / points.parquet   every dev evaluation of every run (one row each)
      runs.csv                      one row per run: counts, status, spend, losses, estimate vs actual time
      selection.csv                 per (arch, N, D): the L(N, D) point (median across seeds of each run's
                                    converged loss, or the interval that holds it: apcscale.sweep.points)
      baselines.json (sweep dir)    dev loss of copy-last-frame and of a linear predictor per subset
      fit.json                      the frontier L(C) and L(N, D) per architecture, the held-out checks,
                                    the shared-floor test, the report's answer table and every warning
      curves.png / .pdf             dev loss against compute, every run (colour N, marker D), each architecture's
                                    envelope and frontier fit with its band, the baselines
      compute.png / .pdf            Droppo & Elibol's Figure 5: one curve per model size, the frontier dashed
      isoflop.png / .pdf            loss against N at fixed compute, the minimum marked (Chinchilla's Approach 2)
      law_nd.png / .pdf             the L(N, D) points against N for each D (marker: their kind), the fitted
                                    L(N, D) with its band, the baselines (figures: apcscale.sweep.figures)
      report.txt                    the above in words

Everything is read from the sweep directory (plan.json, runs/*/curve.csv and
summary.json, decisions.jsonl, Tune's trial errors), so `collect` can be re-run
on a finished or interrupted sweep at any time.

Status of a run (apcscale.train.rundir): finished (it met its stopping rule, or spent its
budget), stopped (by the frontier policy or ASHA: its curve ends where it was stopped), failed
(its loss turned NaN, or it crashed more often than `max_failures`), interrupted (a crash, a
signal or Ctrl-C; resumable) or not run (in the backlog, or never started). Only finished and
stopped runs enter the selection and the fits; every run's evaluations are in points.csv with
its status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from apcscale.sweep.figures import figure_baselines, plot_compute, plot_curves, plot_isoflop, plot_law
from apcscale.sweep.fits import (
    _json_default,
    _jsonable_fit,
    frontier_fit,
    frontier_holdout,
    holdout_checks,
    joint_fit,
    shared_floor,
)
from apcscale.sweep.points import run_points, select
from apcscale.sweep.report import write_report
from apcscale.sweep.tables import FIT_STATUSES, POINT_COLUMNS, curves_of, load_tables  # noqa: F401 (re-exported)

BASELINES = "baselines.json"


@dataclass
class SweepResults:
    sweep_dir: Path
    points: pd.DataFrame
    runs: pd.DataFrame
    selection: pd.DataFrame
    fits: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, Any] = field(default_factory=dict)
    report: str = ""
    answer: list[dict[str, Any]] = field(default_factory=list)  # the report's table (fit.json "answer")
    warnings: list[str] = field(default_factory=list)  # every warning the report carries
    figures: list[str] = field(default_factory=list)  # the figures drawn (stems of results/*.png and .pdf)

    @property
    def frontier(self) -> dict[str, Any] | None:
        return self.fits.get("frontier", {}).get("all")


def sweep_baselines(sweep_dir: Path, plan) -> dict[str, Any]:
    """The dev loss of copy-last-frame and of the linear predictor of each subset (data.baselines),
    computed once per sweep and kept in <sweep>/baselines.json."""
    path = sweep_dir / BASELINES
    if path.is_file():
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            pass
    from apcscale.data.baselines import dev_baselines

    runs = [*plan.runs, *plan.backlog]
    if not runs:
        return {}
    rec = runs[0].recipe
    subsets = sorted({r.subset for r in runs}, key=lambda s: next(r.D for r in runs if r.subset == s))
    try:
        out = dev_baselines(
            plan.manifest,
            subsets,
            eval_crop_frames=int(rec["data"].get("eval_crop_frames", 2000)),
            time_shift=int(rec["model"].get("time_shift", 3)),
        )
    except Exception as exc:  # the manifest moved: the report says so instead
        return {"error": f"{type(exc).__name__}: {exc}"}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(path)
    return out


def add_margins(runs: pd.DataFrame, baselines: dict[str, Any]) -> pd.DataFrame:
    """Each run's margin over the baselines: 1 - min dev loss / baseline (positive: the model is better)."""
    runs = runs.copy()
    copy = baselines.get("copy_last_frame")
    by_subset = (baselines.get("linear") or {}).get("by_subset") or {}
    runs["copy_baseline"] = copy if copy else float("nan")
    runs["linear_baseline"] = runs["subset"].map(by_subset).astype(float)
    runs["margin_copy"] = 1.0 - runs["min_dev_loss"] / runs["copy_baseline"]
    runs["margin_linear"] = 1.0 - runs["min_dev_loss"] / runs["linear_baseline"]
    return runs


def collect(
    sweep_dir: str | Path,
    *,
    wall_seconds: float | None = None,
    mode: str | None = None,
    plots: bool = True,
    bootstrap: int = 200,
) -> SweepResults:
    """Build (and write under <sweep>/results/) the tables, fits, checks, plots and report of a sweep."""
    sweep_dir = Path(sweep_dir)
    out = sweep_dir / "results"
    out.mkdir(parents=True, exist_ok=True)
    points, runs, plan, decisions = load_tables(sweep_dir)
    baselines = sweep_baselines(sweep_dir, plan)
    runs = add_margins(runs, baselines)
    stop_cfg = ([*plan.runs, *plan.backlog][0].recipe.get("stopping") or {}) if plan.runs else {}
    run_pts = run_points(
        runs, points, patience=int(stop_cfg.get("patience", 3)), min_delta=float(stop_cfg.get("min_delta", 0.002))
    )
    runs = runs.merge(
        run_pts[["run_id", "kind", "loss", "lo", "hi"]].rename(
            columns={"kind": "point", "loss": "point_loss", "lo": "point_lo", "hi": "point_hi"}
        ),
        on="run_id",
        how="left",
    )
    selection = select(run_pts)
    curves = curves_of(points[points["status"].isin(FIT_STATUSES)])  # no crashed or half-trained run
    sizes = dict(zip(runs["run_id"], runs["N"].astype(float)))
    fits: dict[str, Any] = {"frontier": {}, "joint": {}, "holdout": {}, "frontier_holdout": {}}
    fits["frontier"]["all"] = frontier_fit(curves, sizes=sizes, bootstrap=bootstrap)
    for arch in sorted(set(runs["arch"])):
        ids = set(runs.loc[runs["arch"] == arch, "run_id"])
        sub = {k: v for k, v in curves.items() if k in ids}
        if len(sub) >= 2:
            fits["frontier"][arch] = frontier_fit(sub, sizes=sizes, bootstrap=bootstrap)
            if "fit" in fits["frontier"][arch]:
                fits["frontier_holdout"][arch] = frontier_holdout(sub, sizes, bootstrap=min(bootstrap, 100))
        fits["joint"][arch] = joint_fit(selection, arch, bootstrap=bootstrap)
        if "fit" in fits["joint"][arch]:
            fits["holdout"][arch] = holdout_checks(selection, arch, bootstrap=min(bootstrap, 100))
    fits["shared_floor"] = shared_floor(selection)
    res = SweepResults(
        sweep_dir=sweep_dir, points=points, runs=runs, selection=selection, fits=fits, baselines=baselines
    )

    points.to_csv(out / "points.csv", index=False)
    try:
        points.to_parquet(out / "points.parquet", index=False)
    except (ImportError, ValueError):
        pass
    runs.to_csv(out / "runs.csv", index=False)
    selection.to_csv(out / "selection.csv", index=False)
    payload = {
        "baselines": baselines,
        "frontier": {k: _jsonable_fit(v) for k, v in fits["frontier"].items()},
        "joint": {k: _jsonable_fit(v) for k, v in fits["joint"].items()},
        "holdout": fits["holdout"],
        "frontier_holdout": fits["frontier_holdout"],
        "shared_floor": fits["shared_floor"],
    }
    if plots:
        lines = figure_baselines(baselines, points)
        for stem in ("curves", "compute", "isoflop", "law_nd"):  # none left from an earlier collect
            for ext in (".png", ".pdf"):
                (out / f"{stem}{ext}").unlink(missing_ok=True)
        drawn = [
            *plot_curves(points, runs, fits, out / "curves", plan.name, baselines=lines),
            *plot_compute(points, runs, fits, out / "compute", plan.name, baselines=lines),
            *plot_isoflop(points, out / "isoflop", plan.name, baselines=lines),
            *plot_law(selection, fits, out / "law_nd", plan.name, baselines=lines),
        ]
        res.figures = [Path(f).stem for f in drawn if str(f).endswith(".png")]
    res.report = write_report(res, plan, decisions, wall_seconds=wall_seconds, mode=mode)
    payload["answer"] = res.answer
    payload["warnings"] = res.warnings
    (out / "fit.json").write_text(json.dumps(payload, indent=1, default=_json_default))
    (out / "report.txt").write_text(res.report)
    return res
