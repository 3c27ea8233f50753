"""Fit every law a table of runs allows, and write fit.json, summary.txt and plots.

Which laws are fitted depends only on the columns present (see
:mod:`apcscale.scaling.tables`):

* C (with or without a run column): the compute frontier (lower envelope over
  runs) and L(C) fitted to it, with the derived statements;
* N and D, each with at least 2 distinct values: the joint L(N, D) (Droppo or
  Hoffmann form) on one row per run (its lowest loss, or its last row), and the
  compute-optimal N(C), D(C) it implies under a :class:`TrainingCost`;
* N: L(N) on the best loss reached at each N (the limit of enough data);
* D: L(D) on the best loss reached at each D (the best model size per data size,
  as Hestness et al.). A continuous covariate is binned, or the law refused with
  the reason (:func:`apcscale.scaling.tables.best_per_value`).

Asking for a law (``law="hoffmann"``) whose columns are missing is an error. A
law that cannot be fitted for its data (too few distinct values, say) is
reported under ``errors`` and the others still are; if none can be fitted,
:class:`FitError`. Every fit with flagged outliers is refitted without them
(:mod:`apcscale.scaling.influence`). :func:`fit_by` fits one table per value
of a column (one per architecture for a sweep).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .fitting import FitResult, _jsonable, fit_joint, fit_power_law
from .frontier import Frontier, TrainingCost, compute_frontier, compute_optimal
from .influence import format_influence, outlier_influence
from .statements import derived_statements, exponent_statements, format_fit
from .style import axis_label, d_unit, si
from .tables import best_per_value, check_table, per_run, resolve_columns
from .validate import FitError

LAWS = ("droppo", "hoffmann")


def _fmt(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


def allocation_exponent(law: str, params: Mapping[str, float]) -> float:
    """a in N_opt ~ C^a for C proportional to N D (Hoffmann: beta/(alpha+beta); Droppo: 1/(p+1), p = alpha_N/alpha_D)."""
    if law == "hoffmann":
        return params["beta"] / (params["alpha"] + params["beta"])
    return 1.0 / (params["alpha_N"] / params["alpha_D"] + 1.0)


def _allocation_interval(fit: FitResult) -> tuple[float, float]:
    names = list(fit.law_obj.names)
    s = fit.samples
    p = {k: s[:, names.index(k)] for k in names}
    with np.errstate(all="ignore"):
        a = allocation_exponent(fit.law, p)
    a = a[np.isfinite(a)]
    if not a.size:
        return (-math.inf, math.inf)
    lo, hi = np.quantile(a, [(1 - fit.level) / 2, (1 + fit.level) / 2])
    e = allocation_exponent(fit.law, fit.params)
    return float(min(lo, e)), float(max(hi, e))


def _optimal_table(
    fit: FitResult, C: np.ndarray, cost: TrainingCost, N_range: tuple[float, float], D_range: tuple[float, float]
) -> dict[str, Any]:
    N, D = compute_optimal(fit, C, cost=cost)
    inside = (N >= N_range[0]) & (N <= N_range[1]) & (D >= D_range[0]) & (D <= D_range[1])
    if cost.measured:  # the local slope along the table
        eN = float(np.polyfit(np.log(C), np.log(N), 1)[0]) if len(C) > 1 else math.nan
        how = "slope over the table"
    else:
        eN = allocation_exponent(fit.law, fit.params)
        how = "closed form"
    lo, hi = _allocation_interval(fit)
    return {
        "cost": cost.describe(),
        "flops_per_param_frame": cost.k,
        "passes": cost.passes,
        "C": C.tolist(),
        "N_opt": N.tolist(),
        "D_opt": D.tolist(),
        "loss": fit.predict(N, D).tolist(),
        "within_data": inside.tolist(),
        "N_exponent": eN,
        "N_exponent_how": how,
        "D_exponent": 1.0 - eN if not cost.measured else math.nan,
        "allocation_exponent_interval": [lo, hi],
    }


def fit_table(
    df: pd.DataFrame,
    columns: Mapping[str, str | None] | None = None,
    out_dir: str | Path | None = None,
    *,
    law: str | None = None,
    reduce: str = "min",
    bootstrap: int = 200,
    level: float = 0.9,
    seed: int = 0,
    delta: float | str = "auto",
    drop_bad: bool = False,
    plots: bool = True,
    flops_per_param_frame: float = 6.0,
    cost: TrainingCost | None = None,
    exclude_runs: Mapping[str, str] | None = None,
    baselines: Mapping[str, float] | None = None,
    data_unit: str | None = None,
    notes: Sequence[str] = (),
    influence: bool = True,
    source: str | None = None,
    title: str | None = None,
    return_objects: bool = False,
) -> dict[str, Any]:
    """Fit the laws the table's columns allow; write fit.json, summary.txt and plots to ``out_dir``.

    ``columns`` maps roles (N, D, C, loss, group) to column names; missing roles
    are looked up by their usual names. ``law``: the form of L(N, D) (default
    Droppo's when N and D exist; naming it makes N and D required). ``delta``:
    the Huber delta of every fit ("auto" or a number, e.g. 1e-3 as Hoffmann et
    al.). ``cost``: how compute follows from N and D for the compute-optimal
    table (default C = ``flops_per_param_frame`` N D, one pass). ``exclude_runs``
    ({run: reason}): runs kept out of L(N, D), L(N) and L(D) (their curves still
    make the frontier). ``baselines`` ({name: loss}) are drawn on the plots.
    Returns a JSON-safe dict (the content of fit.json, plus "summary" and
    "files"); with ``return_objects`` also "objects": the FitResult and Frontier
    instances.
    """
    if law is not None and law not in LAWS:
        raise FitError(f"law must be one of {', '.join(LAWS)}, not {law!r}")
    cols = resolve_columns(df, columns)
    if law is not None:
        missing = [r for r in ("N", "D") if r not in cols]
        if missing:
            what = {"N": "an N column (model size: --n COL)", "D": "a D column (training-set size: --d COL)"}
            raise FitError(
                f"--law {law} fits L(N, D) and needs "
                + " and ".join(what[m] for m in missing)
                + "; the table has none (columns: "
                + ", ".join(map(str, df.columns))
                + ")"
            )
    law = law or "droppo"
    if not (delta == "auto" or (isinstance(delta, (int, float)) and delta > 0)):
        raise FitError(f"delta must be 'auto' or a number > 0, not {delta!r}")
    cost = cost or TrainingCost(k=flops_per_param_frame)
    data, warns = check_table(df, cols, drop_bad=drop_bad)
    loss = cols["loss"]
    unit = data_unit or d_unit(cols.get("D"))
    labels_ax = {
        "N": axis_label("N"),
        "D": axis_label("D", cols.get("D"), unit),
        "C": axis_label("C"),
        "loss": axis_label("loss", loss),
    }
    result: dict[str, Any] = {
        "source": source,
        "columns": cols,
        "n_rows": int(len(data)),
        "level": level,
        "delta": delta,
        "fits": {},
        "statements": {},
        "errors": {},
        "influence": {},
        "warnings": list(notes) + list(warns),
    }
    if title:
        result["title"] = title
    objects: dict[str, Any] = {}
    inputs: dict[str, tuple] = {}  # per fit: (refit(mask), describe_row) for the influence of outliers
    if "group" in cols:
        result["n_runs"] = int(data[cols["group"]].nunique())
    opts = {"bootstrap": bootstrap, "level": level, "seed": seed, "delta": delta}

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
            curves = {
                run: (g[cols["C"]].to_numpy(), g[loss].to_numpy()) for run, g in data.groupby(cols["group"], sort=False)
            }
        else:
            curves = {idx: (np.array([row[cols["C"]]]), np.array([row[loss]])) for idx, row in data.iterrows()}
        sizes = None
        if "N" in cols:
            key = cols["group"] if "group" in cols else None
            sizes = data.groupby(key, sort=False)[cols["N"]].first().to_dict() if key else data[cols["N"]].to_dict()
        frontier = attempt("frontier_envelope", lambda: compute_frontier(curves, sizes=sizes))
        if frontier is not None:
            ffit = attempt("frontier", lambda: frontier.fit_law(**opts))
            result["fits"]["frontier"] = frontier.to_dict()
            if ffit is not None:
                result["statements"]["frontier"] = derived_statements(ffit.params["alpha"], ffit.intervals["alpha"])
                Cf, Lf, Rf = frontier.fit_points()
                inputs["frontier"] = (
                    lambda m, Cf=Cf, Lf=Lf, Rf=Rf: fit_power_law(
                        Cf[m],
                        Lf[m],
                        groups=[str(r) for r, k in zip(Rf, m) if k],
                        variable="C",
                        **{**opts, "bootstrap": 0},
                    ),
                    lambda i, Cf=Cf, Rf=Rf: f"run {Rf[i]}, C {si(Cf[i])}",
                    None,
                )

    runs = per_run(data, cols, reduce)
    if exclude_runs and "group" in cols:
        ids = runs[cols["group"]].astype(str)
        out_mask = ids.isin({str(k) for k in exclude_runs})
        # runs of this table with no usable evaluation (one that failed before its first) are left out too
        absent = sorted(({str(k) for k in exclude_runs} & set(df[cols["group"]].astype(str))) - set(ids))
        if out_mask.any() or absent:
            reasons: dict[str, int] = {}
            for r in [*runs.loc[out_mask, cols["group"]].astype(str), *absent]:
                reasons[exclude_runs[r]] = reasons.get(exclude_runs[r], 0) + 1
            n_out = int(out_mask.sum()) + len(absent)
            result["warnings"].append(
                f"{n_out} of {len(runs) + len(absent)} runs left out of L(N, D), L(N) and L(D) "
                "(their curves still make the frontier): " + ", ".join(f"{n} {why}" for why, n in reasons.items())
            )
            runs = runs.loc[~out_mask]
    result["n_fit_runs"] = int(len(runs))

    # joint L(N, D)
    joint = None
    if "N" in cols and "D" in cols:
        if len(runs) and runs[cols["N"]].nunique() >= 2 and runs[cols["D"]].nunique() >= 2:
            groups = runs[cols["group"]].astype(str).to_numpy() if "group" in cols else None
            Nj, Dj, yj = (runs[cols[r]].to_numpy(float) for r in ("N", "D", "loss"))
            labels = [str(i) for i in (runs[cols["group"]] if "group" in cols else runs.index)]
            joint = attempt("joint", lambda: fit_joint(Nj, Dj, yj, law=law, groups=groups, labels=labels, **opts))
            if joint is not None:
                result["fits"]["joint"] = joint.to_dict()
                result["statements"]["joint"] = exponent_statements(joint)
                inputs["joint"] = (
                    lambda m: fit_joint(
                        Nj[m],
                        Dj[m],
                        yj[m],
                        law=law,
                        groups=None if groups is None else groups[m],
                        **{**opts, "bootstrap": 0},
                    ),
                    lambda i: f"N {si(Nj[i])}, D {si(Dj[i])}, D/N {Dj[i] / Nj[i]:.3g}",
                    "joint",
                )
                if "C" in cols:
                    Cr = np.geomspace(data[cols["C"]].min(), data[cols["C"]].max(), 5)
                else:
                    cc = cost(Nj, Dj)
                    Cr = np.geomspace(cc.min(), cc.max(), 5)
                result["compute_optimal"] = _optimal_table(joint, Cr, cost, (Nj.min(), Nj.max()), (Dj.min(), Dj.max()))
        else:
            result["errors"]["joint"] = "joint L(N, D) needs at least 2 distinct values of both N and D"

    # one-variable laws on the best loss per value
    one_d: dict[str, tuple[FitResult, pd.DataFrame]] = {}
    for role in ("N", "D"):
        if role not in cols or not len(runs):
            continue
        other = "D" if role == "N" else "N"
        name = f"L_{role}"
        if other in cols or "group" in cols:
            try:
                best, how = best_per_value(
                    runs, cols[role], loss, cols[other] if other in cols else None, role=role, other_role=other
                )
            except FitError as exc:
                result["errors"][name] = str(exc)
                continue
        else:
            best, how = runs, f"every row (no {other} column)"
        xb, yb = best[cols[role]].to_numpy(float), best[loss].to_numpy(float)
        fit = attempt(name, lambda: fit_power_law(xb, yb, variable=role, labels=[str(i) for i in best.index], **opts))
        if fit is not None:
            fit.diagnostics["selection"] = how
            result["fits"][name] = fit.to_dict()
            result["statements"][name] = exponent_statements(fit)
            one_d[role] = (fit, best)
            inputs[name] = (
                lambda m, xb=xb, yb=yb, role=role: fit_power_law(
                    xb[m], yb[m], variable=role, **{**opts, "bootstrap": 0}
                ),
                lambda i, xb=xb, role=role: f"{role} {si(xb[i])}",
                None,
            )

    if not result["fits"] or all(k == "frontier" and "fit" not in v for k, v in result["fits"].items()):
        raise FitError("no law could be fitted: " + "; ".join(f"{k}: {v}" for k, v in result["errors"].items()))

    # how far the flagged outliers move each fit
    if influence:
        for name, (refit, describe, kind) in inputs.items():
            fit = objects.get(name)
            if fit is None or not fit.outliers:
                continue
            derived = None
            if kind == "joint":
                derived = lambda f: {"N_opt exponent": (allocation_exponent(f.law, f.params), _allocation_interval(f))}
            info = outlier_influence(fit, refit, derived=derived, describe_row=describe)
            if info is not None:
                result["influence"][name] = info

    summary = format_summary(result, objects, cols, source)
    result["summary"] = summary
    files: list[str] = []
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if plots:
            files += [
                str(p) for p in _plots(out, objects, frontier, joint, one_d, runs, cols, labels_ax, baselines, title)
            ]
        (out / "summary.txt").write_text(summary + "\n")
        files = [str(out / "fit.json"), str(out / "summary.txt")] + files
        result["files"] = files
        (out / "fit.json").write_text(
            json.dumps(_jsonable({k: v for k, v in result.items()}), indent=2, allow_nan=False)
        )
    result = _jsonable(result)
    if return_objects:
        result["objects"] = objects
    return result


def _plots(out: Path, objects, frontier, joint, one_d, runs, cols, labels, baselines, title) -> list[Path]:
    from . import plots

    files: list[Path] = []
    loss = cols["loss"]
    prefix = f"{title}: " if title else ""
    if frontier is not None:
        fit = objects.get("frontier")
        files += plots.plot_frontier(
            frontier,
            out / "frontier",
            sizes=frontier.sizes if "N" in cols else None,
            fit=fit,
            xlabel=labels["C"],
            ylabel=labels["loss"],
            baselines=baselines,
            title=f"{prefix}{len(frontier.curves)} runs, {len(frontier.runs_on_envelope)} on the frontier",
        )
    if joint is not None:
        files += plots.plot_joint(
            joint,
            runs[cols["N"]].to_numpy(),
            runs[cols["D"]].to_numpy(),
            runs[loss].to_numpy(),
            out / "joint",
            ylabel=labels["loss"],
            n_label=labels["N"],
            d_label=labels["D"],
            baselines=baselines,
            title=title,
        )
    for role, (fit, best) in one_d.items():
        rest = runs.drop(index=best.index, errors="ignore")
        how = fit.diagnostics.get("selection", "")
        files += plots.plot_law(
            fit,
            best[cols[role]].to_numpy(),
            best[loss].to_numpy(),
            out / f"loss_vs_{role}",
            xlabel=labels[role],
            ylabel=labels["loss"],
            baselines=baselines,
            context=(rest[cols[role]].to_numpy(), rest[loss].to_numpy()) if len(rest) else None,
            context_label="other runs (not the best at their value)",
            title=f"{prefix}L({role}) on {_short(how)}",
        )
    fits = {k: v for k, v in objects.items() if isinstance(v, FitResult)}
    if fits:
        files += plots.plot_residuals(fits, out / "residuals", ylabel_loss=f"fitted {labels['loss']}")
    return files


def _short(how: str) -> str:
    return how.split(" (")[0] if how else "the best loss at each value"


def format_summary(
    result: Mapping[str, Any], objects: Mapping[str, Any], cols: Mapping[str, str], source: str | None = None
) -> str:
    lines = []
    head = f"apcscale fit: {source or 'table'}: {result['n_rows']} rows"
    if "n_runs" in result:
        head += f", {result['n_runs']} runs"
    lines += [head, "columns: " + ", ".join(f"{k}={v}" for k, v in cols.items()), ""]
    influence = result.get("influence", {})
    frontier = objects.get("frontier_envelope")
    if frontier is not None:
        fit = objects.get("frontier")
        lines.append(
            f"Compute frontier: {len(frontier.envelope)} envelope points from "
            f"{len(frontier.runs_on_envelope)} of {len(frontier.curves)} runs; on it:"
        )
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
            lines.append(
                format_fit(
                    fit,
                    title=f"L(C) on the envelope: {fit.n_points} points from "
                    f"{fit.diagnostics.get('fit_runs', '?')} runs, C = {_fmt(lo)} to {_fmt(hi)}",
                )
            )
            st = result["statements"].get("frontier")
            if st:
                lines += ["  " + st["doubling"], "  " + st["halving"]]
            lines += format_influence(influence.get("frontier"))
        lines.append("")
    joint = objects.get("joint")
    if joint is not None:
        lines.append(
            format_fit(joint, title=f"Joint L(N, D) ({joint.law}) on {result.get('n_fit_runs', joint.n_points)} runs")
        )
        for st in result["statements"].get("joint", []):
            lines.append(f"  {st['parameter']}: {st['doubling']}")
            lines.append(f"  {' ' * len(st['parameter'])}  {st['halving']}")
        co = result.get("compute_optimal")
        if co:
            lo, hi = co["allocation_exponent_interval"]
            pct = int(round(joint.level * 100))
            lines.append(f"  compute-optimal, {co['cost']}:")
            lines.append(
                f"    N_opt ~ C^{co['N_exponent']:.3f} ({co['N_exponent_how']}; for C proportional to N D: "
                f"{allocation_exponent(joint.law, joint.params):.3f}, {pct}% [{lo:.3f}, {hi:.3f}])"
            )
            for c, n, d, l, ok in zip(co["C"], co["N_opt"], co["D_opt"], co["loss"], co["within_data"]):
                note = "" if ok else "   (outside the data's N or D: extrapolated)"
                lines.append(f"    C = {_fmt(c):>9}: N = {_fmt(n):>9}, D = {_fmt(d):>9}, loss {l:.4g}{note}")
        lines += format_influence(influence.get("joint"))
        lines.append("")
    for role in ("N", "D"):
        fit = objects.get(f"L_{role}")
        if fit is not None:
            how = fit.diagnostics.get("selection", f"the best loss at each {role}")
            lines.append(format_fit(fit, title=f"L({role}) on {how}"))
            for st in result["statements"].get(f"L_{role}", []):
                lines += [f"  {st['doubling']}", f"  {st['halving']}"]
            lines += format_influence(influence.get(f"L_{role}"))
            lines.append("")
    if result["errors"]:
        lines.append("Not fitted:")
        lines += [f"  {k}: {v}" for k, v in result["errors"].items()]
        lines.append("")
    if result["warnings"]:
        lines.append("Table warnings:")
        lines += [f"  ! {w}" for w in result["warnings"]]
    return "\n".join(lines).rstrip()


def _dirname(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(value)) or "_"


def fit_by(
    df: pd.DataFrame,
    by: str,
    columns: Mapping[str, str | None] | None = None,
    out_dir: str | Path | None = None,
    *,
    costs: Mapping[Any, TrainingCost] | None = None,
    notes: Sequence[str] = (),
    source: str | None = None,
    plots: bool = True,
    return_objects: bool = False,
    **options,
) -> dict[str, Any]:
    """One :func:`fit_table` per value of column ``by`` (e.g. one per architecture), written to
    ``out_dir/<value>/``; ``out_dir`` gets fit.json (every group), summary.txt and, with two or more
    frontiers, frontiers.png (every group's envelope and L(C) on one plot). ``costs`` ({value: TrainingCost})
    gives each group its own cost. Groups that cannot be fitted are reported; none: :class:`FitError`."""
    if by not in df.columns:
        raise FitError(f"--by {by!r}: no such column (columns: {', '.join(map(str, df.columns))})")
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    objects: dict[str, Any] = {}
    default_cost = options.pop("cost", None)
    for value, sub in df.groupby(by, sort=True):
        sub_out = Path(out_dir) / _dirname(value) if out_dir is not None else None
        try:
            res = fit_table(
                sub,
                columns,
                sub_out,
                cost=(costs or {}).get(value, default_cost),
                source=f"{source} [{by} = {value}]",
                title=str(value),
                plots=plots,
                return_objects=True,
                **options,
            )
        except FitError as exc:
            errors[str(value)] = str(exc)
            continue
        objects[str(value)] = res.pop("objects")
        results[str(value)] = res
    if not results:
        raise FitError("no group could be fitted: " + "; ".join(f"{by} = {k}: {v}" for k, v in errors.items()))
    parts = [r["summary"] for r in results.values()]
    if notes:
        parts.insert(0, "\n".join(f"note: {n}" for n in notes))
    if errors:
        parts.append("Groups not fitted:\n" + "\n".join(f"  {by} = {k}: {v}" for k, v in errors.items()))
    summary = "\n\n".join(parts)
    out: dict[str, Any] = {
        "source": source,
        "by": by,
        "groups": {k: {kk: vv for kk, vv in v.items() if kk != "summary"} for k, v in results.items()},
        "errors": errors,
        "notes": list(notes),
        "summary": summary,
    }
    files: list[str] = []
    if out_dir is not None:
        root = Path(out_dir)
        root.mkdir(parents=True, exist_ok=True)
        (root / "summary.txt").write_text(summary + "\n")
        (root / "fit.json").write_text(
            json.dumps(_jsonable({k: v for k, v in out.items() if k != "summary"}), indent=2, allow_nan=False)
        )
        files = [str(root / "fit.json"), str(root / "summary.txt")]
        frontiers = {
            k: (o["frontier_envelope"], o.get("frontier")) for k, o in objects.items() if "frontier_envelope" in o
        }
        if plots and len(frontiers) >= 2:
            from . import plots as plots_mod

            files += [
                str(p)
                for p in plots_mod.plot_frontiers(frontiers, root / "frontiers", baselines=options.get("baselines"))
            ]
        for r in results.values():
            files += r.get("files", [])
    out["files"] = files
    if return_objects:
        out["objects"] = objects
    return out


__all__ = ["fit_table", "fit_by", "format_summary", "allocation_exponent", "LAWS"]
