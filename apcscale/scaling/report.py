"""Fit every law a table of runs allows, and write fit.json, summary.txt and plots.

Which laws are fitted depends only on the columns present (see
:mod:`apcscale.scaling.tables`):

* C (with or without a run column): the compute frontier (lower envelope over
  runs) and L(C) fitted to it, with the derived statements;
* N and D, each with at least 2 distinct values: the joint L(N, D) (Droppo or
  Hoffmann form) on one row per run (its lowest loss, or its last row), and the
  compute-optimal N(C), D(C) it implies;
* N: L(N) on the best loss reached at each N (the limit of enough data);
* D: L(D) on the best loss reached at each D (the best model size per data size,
  as Hestness et al.).

A law that cannot be fitted (too few distinct values, say) is reported under
``errors`` and the others still are; if none can be fitted, :class:`FitError`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from .fitting import FitResult, _jsonable, fit_joint, fit_power_law
from .frontier import Frontier, compute_frontier, compute_optimal
from .statements import derived_statements, exponent_statements, format_fit
from .tables import best_per_value, check_table, per_run, resolve_columns
from .validate import FitError


def _fmt(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


def _optimal_table(fit: FitResult, C: np.ndarray, k: float, N_range: tuple[float, float],
                   D_range: tuple[float, float]) -> dict[str, Any]:
    N, D = compute_optimal(fit, C, k)
    inside = (N >= N_range[0]) & (N <= N_range[1]) & (D >= D_range[0]) & (D <= D_range[1])
    if fit.law == "hoffmann":
        a, b = fit.params["alpha"], fit.params["beta"]
        eN = b / (a + b)
    else:
        q = fit.params["alpha_N"] / fit.params["alpha_D"]
        eN = 1.0 / (q + 1.0)
    return {"flops_per_param_frame": k, "C": C.tolist(), "N_opt": N.tolist(), "D_opt": D.tolist(),
            "loss": fit.predict(N, D).tolist(), "within_data": inside.tolist(), "N_exponent": eN, "D_exponent": 1.0 - eN}


def fit_table(df: pd.DataFrame, columns: Mapping[str, str | None] | None = None, out_dir: str | Path | None = None, *,
              law: str = "droppo", reduce: str = "min", bootstrap: int = 200, level: float = 0.9, seed: int = 0,
              drop_bad: bool = False, plots: bool = True, flops_per_param_frame: float = 6.0,
              source: str | None = None, return_objects: bool = False) -> dict[str, Any]:
    """Fit the laws the table's columns allow; write fit.json, summary.txt and plots to ``out_dir``.

    ``columns`` maps roles (N, D, C, loss, group) to column names; missing roles
    are looked up by their usual names. Returns a JSON-safe dict (the content
    of fit.json, plus "summary" and "files"); with ``return_objects`` also
    "objects": the FitResult and Frontier instances.
    """
    cols = resolve_columns(df, columns)
    data, warns = check_table(df, cols, drop_bad=drop_bad)
    loss = cols["loss"]
    result: dict[str, Any] = {"source": source, "columns": cols, "n_rows": int(len(data)), "level": level,
                              "fits": {}, "statements": {}, "errors": {}, "warnings": list(warns)}
    objects: dict[str, Any] = {}
    if "group" in cols:
        result["n_runs"] = int(data[cols["group"]].nunique())

    def attempt(name: str, fn):
        try:
            obj = fn()
        except FitError as exc:
            result["errors"][name] = str(exc)
            return None
        objects[name] = obj
        return obj

    # compute frontier
    frontier: Frontier | None = None
    if "C" in cols:
        if "group" in cols:
            curves = {run: (g[cols["C"]].to_numpy(), g[loss].to_numpy()) for run, g in data.groupby(cols["group"], sort=False)}
        else:
            curves = {idx: (np.array([row[cols["C"]]]), np.array([row[loss]])) for idx, row in data.iterrows()}
        sizes = None
        if "N" in cols:
            key = cols["group"] if "group" in cols else None
            sizes = (data.groupby(key, sort=False)[cols["N"]].first().to_dict() if key
                     else data[cols["N"]].to_dict())
        frontier = attempt("frontier_envelope", lambda: compute_frontier(curves, sizes=sizes))
        if frontier is not None:
            ffit = attempt("frontier", lambda: frontier.fit_law(bootstrap=bootstrap, level=level, seed=seed))
            result["fits"]["frontier"] = frontier.to_dict()
            if ffit is not None:
                result["statements"]["frontier"] = derived_statements(ffit.params["alpha"], ffit.intervals["alpha"])

    runs = per_run(data, cols, reduce)
    # joint L(N, D)
    joint = None
    if "N" in cols and "D" in cols:
        if runs[cols["N"]].nunique() >= 2 and runs[cols["D"]].nunique() >= 2:
            groups = runs[cols["group"]].astype(str).to_numpy() if "group" in cols else None
            joint = attempt("joint", lambda: fit_joint(runs[cols["N"]].to_numpy(), runs[cols["D"]].to_numpy(),
                                                       runs[loss].to_numpy(), law=law, groups=groups,
                                                       bootstrap=bootstrap, level=level, seed=seed,
                                                       labels=[str(i) for i in runs.index]))
            if joint is not None:
                result["fits"]["joint"] = joint.to_dict()
                result["statements"]["joint"] = exponent_statements(joint)
                if "C" in cols:
                    Cr = np.geomspace(data[cols["C"]].min(), data[cols["C"]].max(), 5)
                else:
                    cc = flops_per_param_frame * runs[cols["N"]] * runs[cols["D"]]
                    Cr = np.geomspace(cc.min(), cc.max(), 5)
                result["compute_optimal"] = _optimal_table(
                    joint, Cr, flops_per_param_frame, (runs[cols["N"]].min(), runs[cols["N"]].max()),
                    (runs[cols["D"]].min(), runs[cols["D"]].max()))
        else:
            result["errors"]["joint"] = "joint L(N, D) needs at least 2 distinct values of both N and D"

    # one-variable laws on the best loss per value
    one_d: dict[str, tuple[FitResult, pd.DataFrame]] = {}
    for role in ("N", "D"):
        if role not in cols:
            continue
        other = "D" if role == "N" else "N"
        best = best_per_value(runs, cols[role], loss) if other in cols or "group" in cols else runs
        name = f"L_{role}"
        fit = attempt(name, lambda: fit_power_law(best[cols[role]].to_numpy(), best[loss].to_numpy(),
                                                  bootstrap=bootstrap, level=level, seed=seed, variable=role,
                                                  labels=[str(i) for i in best.index]))
        if fit is not None:
            result["fits"][name] = fit.to_dict()
            result["statements"][name] = exponent_statements(fit)
            one_d[role] = (fit, best)

    if not result["fits"] or all(k == "frontier" and "fit" not in v for k, v in result["fits"].items()):
        raise FitError("no law could be fitted: " + "; ".join(f"{k}: {v}" for k, v in result["errors"].items()))

    summary = format_summary(result, objects, cols, source)
    result["summary"] = summary
    files: list[str] = []
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if plots:
            files += [str(p) for p in _plots(out, objects, frontier, joint, one_d, runs, data, cols)]
        (out / "summary.txt").write_text(summary + "\n")
        files = [str(out / "fit.json"), str(out / "summary.txt")] + files
        result["files"] = files
        (out / "fit.json").write_text(json.dumps(_jsonable({k: v for k, v in result.items()}), indent=2, allow_nan=False))
    result = _jsonable(result)
    if return_objects:
        result["objects"] = objects
    return result


def _plots(out: Path, objects, frontier, joint, one_d, runs, data, cols) -> list[Path]:
    from . import plots

    files: list[Path] = []
    loss = cols["loss"]
    if frontier is not None:
        sizes = None
        if "N" in cols:
            sizes = frontier.sizes
        files += plots.plot_frontier(frontier, out / "frontier", sizes=sizes, fit=objects.get("frontier"),
                                     xlabel=f"compute ({cols['C']})", ylabel=loss)
    if joint is not None:
        files += plots.plot_joint(joint, runs[cols["N"]].to_numpy(), runs[cols["D"]].to_numpy(), runs[loss].to_numpy(),
                                  out / "joint", ylabel=loss)
    for role, (fit, best) in one_d.items():
        files += plots.plot_law(fit, best[cols[role]].to_numpy(), best[loss].to_numpy(), out / f"loss_vs_{role}",
                                xlabel=f"{role} ({cols[role]})", ylabel=loss,
                                title=f"L({role}) on the best loss at each {role}")
    fits = {k: v for k, v in objects.items() if isinstance(v, FitResult)}
    if fits:
        files += plots.plot_residuals(fits, out / "residuals")
    return files


def format_summary(result: Mapping[str, Any], objects: Mapping[str, Any], cols: Mapping[str, str],
                   source: str | None = None) -> str:
    lines = []
    head = f"apcscale fit: {source or 'table'}: {result['n_rows']} rows"
    if "n_runs" in result:
        head += f", {result['n_runs']} runs"
    lines += [head, "columns: " + ", ".join(f"{k}={v}" for k, v in cols.items()), ""]
    frontier = objects.get("frontier_envelope")
    if frontier is not None:
        fit = objects.get("frontier")
        lines.append(f"Compute frontier: {len(frontier.envelope)} envelope points from "
                     f"{len(frontier.runs_on_envelope)} of {len(frontier.curves)} runs; on it:")
        spans: dict[Any, list] = {}
        for s in frontier.segments:
            sp = spans.setdefault(s.run_id, [s.C_start, s.C_end, 0])
            sp[0], sp[1], sp[2] = min(sp[0], s.C_start), max(sp[1], s.C_end), sp[2] + 1
        width = min(max(len(str(r)) for r in spans), 32)
        for i, (run, (a, b, k)) in enumerate(spans.items()):
            if i == 12:
                lines.append(f"  ... and {len(spans) - 12} more runs")
                break
            times = f"  ({k} stretches)" if k > 1 else ""
            lines.append(f"  {str(run):<{width}}  C = {_fmt(a)} .. {_fmt(b)}{times}")
        if fit is not None:
            lo, hi = fit.diagnostics.get("fit_range", (float("nan"),) * 2)
            lines.append(format_fit(fit, title=f"L(C) on the envelope: {fit.n_points} points from "
                                               f"{fit.diagnostics.get('fit_runs', '?')} runs, C = {_fmt(lo)} to {_fmt(hi)}"))
            st = result["statements"].get("frontier")
            if st:
                lines += ["  " + st["doubling"], "  " + st["halving"]]
        lines.append("")
    joint = objects.get("joint")
    if joint is not None:
        lines.append(format_fit(joint, title=f"Joint L(N, D) ({joint.law})"))
        for st in result["statements"].get("joint", []):
            lines.append(f"  {st['parameter']}: {st['doubling']}")
            lines.append(f"  {' ' * len(st['parameter'])}  {st['halving']}")
        co = result.get("compute_optimal")
        if co:
            lines.append(f"  compute-optimal (C = {co['flops_per_param_frame']:g} N D): N_opt ~ C^{co['N_exponent']:.3f}, "
                         f"D_opt ~ C^{co['D_exponent']:.3f}")
            for c, n, d, l, ok in zip(co["C"], co["N_opt"], co["D_opt"], co["loss"], co["within_data"]):
                note = "" if ok else "   (outside the data's N or D: extrapolated)"
                lines.append(f"    C = {_fmt(c):>9}: N = {_fmt(n):>9}, D = {_fmt(d):>9}, loss {l:.4g}{note}")
        lines.append("")
    for role in ("N", "D"):
        fit = objects.get(f"L_{role}")
        if fit is not None:
            lines.append(format_fit(fit, title=f"L({role}) on the best loss at each {role}"))
            for st in result["statements"].get(f"L_{role}", []):
                lines += [f"  {st['doubling']}", f"  {st['halving']}"]
            lines.append("")
    if result["errors"]:
        lines.append("Not fitted:")
        lines += [f"  {k}: {v}" for k, v in result["errors"].items()]
        lines.append("")
    if result["warnings"]:
        lines.append("Table warnings:")
        lines += [f"  ! {w}" for w in result["warnings"]]
    return "\n".join(lines).rstrip()
