"""How far the flagged outliers move a fit: refits without each of them, and without all of them.

The Huber loss bounds the pull of a large residual, not the leverage of a point
far from the others in its covariates: a handful of runs at the edge of the
design (a few tokens per parameter, say) can move an exponent well outside its
interval while their residuals stay modest. So each flagged point is taken out
and the law refitted (no bootstrap); then all flagged points together. The
conclusion *depends on them* when, without them, an exponent (or a derived
quantity such as the compute-optimal allocation exponent) moves by more than
2% and out of the interval of the full fit (or the full fit lies outside the
interval of the fit without them).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .fitting import FitResult
from .statements import display_names
from .validate import FitError

MAX_EACH = 12  # refits one point at a time for at most this many outliers (the largest |z| first)
MATERIAL = 0.02  # a relative move of an exponent smaller than this is no change of conclusion, whatever the intervals


def _rel(a: float, b: float) -> float:
    return abs(b / a - 1.0) if a not in (0.0,) and math.isfinite(a) and math.isfinite(b) else math.inf


def _fmt(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    return f"{x:.4g}" if abs(x) < 1e4 else f"{x:.3g}"


def outlier_influence(
    fit: FitResult,
    refit: Callable[[np.ndarray], FitResult],
    *,
    derived: Callable[[FitResult], Mapping[str, tuple[float, tuple[float, float]]]] | None = None,
    describe_row: Callable[[int], str] | None = None,
) -> dict[str, Any] | None:
    """Refit without each flagged outlier of ``fit`` and without all of them.

    ``refit(mask)`` fits the same law to the rows where ``mask`` (over the fit's input rows) is True (no
    bootstrap: its intervals are the normal approximation). ``derived(fit)`` adds quantities computed from a
    fit, each with its interval ({"N_opt exponent": (value, (lo, hi))}). Returns None when nothing was
    flagged, else a dict with "each" (one entry per outlier: row, reason, parameters without it, the largest
    relative moves), "all" (parameters without every flagged point), "depends", "moved" and "statement".

    The conclusion depends on the flagged points when, for an exponent or a derived quantity, the fit
    without them lies outside the full fit's interval, or the full fit lies outside the interval of the fit
    without them, and the move is material (more than ``MATERIAL``, 2%, relative). The second interval test
    matters: the bootstrap of the full fit resamples the outliers too, so a few points of high leverage widen
    its own interval until it swallows their effect.
    """
    if not fit.outliers:
        return None
    ok = np.isfinite(fit.residuals)
    names = display_names(fit)

    def values(f: FitResult) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
        p, ivl = dict(f.params), {k: tuple(v) for k, v in f.intervals.items()}
        for k, (v, i) in (derived(f) if derived is not None else {}).items():
            p[k], ivl[k] = v, tuple(i)
        return p, ivl

    base, intervals = values(fit)
    watched = list(fit.law_obj.exponents) + [k for k in base if k not in fit.params]
    watched += [k for k in fit.params if k not in watched]

    def without(rows: Sequence[int]) -> FitResult | None:
        mask = ok.copy()
        mask[list(rows)] = False
        try:
            return refit(mask)
        except FitError:
            return None

    order = sorted(fit.outliers, key=lambda o: -abs(o.z))
    each = []
    for o in order[:MAX_EACH]:
        f = without([o.row])
        if f is None:
            continue
        p, _ = values(f)
        moves = sorted(((k, _rel(base[k], p[k])) for k in watched if k in p), key=lambda t: -t[1])
        each.append(
            {
                "row": o.row,
                "reason": o.reason,
                "z": o.z,
                "where": describe_row(o.row) if describe_row else "",
                "params": p,
                "largest_moves": [
                    {"name": names.get(k, k), "key": k, "from": base[k], "to": p[k], "relative": m}
                    for k, m in moves[:3]
                ],
            }
        )
    rows = [o.row for o in fit.outliers]
    f_all = without(rows)
    out: dict[str, Any] = {"each": each, "rows": rows, "n_points": int(ok.sum()), "level": fit.level}
    if f_all is None:
        out.update(
            all=None,
            depends=False,
            moved=[],
            statement=f"without the {len(rows)} flagged points the law could not be refitted",
        )
        return out
    p_all, ivl_all = values(f_all)
    moved, shifts = [], []
    for k in watched:
        if k not in p_all:
            continue
        shifts.append((k, _rel(base[k], p_all[k])))
        if k in fit.params and k not in fit.law_obj.exponents:
            continue  # floors and amplitudes are reported, exponents decide
        lo, hi = intervals.get(k, (-math.inf, math.inf))
        lo2, hi2 = ivl_all.get(k, (-math.inf, math.inf))
        outside = not (lo <= p_all[k] <= hi) or not (lo2 <= base[k] <= hi2)
        if outside and _rel(base[k], p_all[k]) > MATERIAL:
            moved.append(k)
    out.update({"all": p_all, "all_intervals": ivl_all, "moved": moved, "depends": bool(moved)})
    pct = int(round(fit.level * 100))
    k_pts = len(rows)
    share = 100.0 * k_pts / max(int(ok.sum()), 1)
    if moved:
        parts = [
            f"{names.get(k, k)} {_fmt(base[k])} -> {_fmt(p_all[k])} ({pct}% intervals [{_fmt(intervals[k][0])}, "
            f"{_fmt(intervals[k][1])}] with them, [{_fmt(ivl_all[k][0])}, {_fmt(ivl_all[k][1])}] without)"
            for k in moved
        ]
        big = [k for k, m in sorted(shifts, key=lambda t: -t[1]) if k not in moved and m > 0.5][:2]
        extra = (
            ("; also " + ", ".join(f"{names.get(k, k)} {_fmt(base[k])} -> {_fmt(p_all[k])}" for k in big))
            if big
            else ""
        )
        out["statement"] = (
            f"The conclusion depends on {k_pts} point{'s' if k_pts > 1 else ''} ({share:.1f}% of "
            f"{int(ok.sum())}): without {'them' if k_pts > 1 else 'it'}, "
            + ", ".join(parts)
            + extra
            + ". Check those runs before trusting the exponents."
        )
    else:
        k_big = max(shifts, key=lambda t: t[1])[0] if shifts else None
        tail = (
            f" (largest move: {names.get(k_big, k_big)} {_fmt(base[k_big])} -> {_fmt(p_all[k_big])})" if k_big else ""
        )
        out["statement"] = (
            f"Without the {k_pts} flagged point{'s' if k_pts > 1 else ''} every exponent agrees with "
            f"the full fit within both fits' {pct}% intervals{tail}."
        )
    return out


def format_influence(info: Mapping[str, Any] | None, indent: str = "  ") -> list[str]:
    """Summary lines: one per outlier (what it is, how far it moves the fit), then the plain statement."""
    if not info:
        return []
    lines = [f"{indent}influence of the flagged points (the law refitted without each, no bootstrap):"]
    for e in info["each"]:
        where = f" [{e['where']}]" if e.get("where") else ""
        moves = ", ".join(f"{m['name']} {_fmt(m['from'])} -> {_fmt(m['to'])}" for m in e["largest_moves"])
        lines.append(f"{indent}  {e['reason']}{where}: without it {moves}")
    skipped = len(info["rows"]) - len(info["each"])
    if skipped > 0:
        lines.append(f"{indent}  ... and {skipped} more (not refitted one by one)")
    lines.append(f"{indent}{'! ' if info.get('depends') else ''}{info['statement']}")
    return lines


__all__ = ["outlier_influence", "format_influence", "MAX_EACH"]
