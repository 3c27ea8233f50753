"""Plain-language statements derived from a fitted exponent, and text summaries of fits.

For a reducible loss proportional to C^-alpha:

* doubling compute multiplies it by 2^-alpha, i.e. cuts it by 1 - 2^-alpha;
* halving it takes 2^(1/alpha) times the compute.

Droppo & Elibol's frontier slopes give: alpha = 0.167 -> 10.9% and 63.5x (LSTM);
alpha = 0.197 -> 12.7% and 33.7x (Transformer). Percentages in the sentences are
truncated to one decimal (never overstating the gain; 0.197 gives 12.76%, which
the paper states as 12.7%), multipliers are rounded.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .fitting import FitResult


def _pct(fraction: float) -> str:
    return f"{math.floor(fraction * 1000 + 1e-9) / 10:.1f}%"


def _times(x: float) -> str:
    if not math.isfinite(x):
        return "infinitely many times"
    if x >= 1e4:
        return f"{x:.3g}x"
    return f"{x:.1f}x"


def derived_statements(
    alpha: float,
    interval: tuple[float, float] | None = None,
    *,
    quantity: str = "compute",
    loss: str = "reducible loss",
) -> dict[str, Any]:
    """What an exponent means: reduction per doubling and the factor needed to halve.

    ``alpha`` is the magnitude of the slope of the reducible loss against
    ``quantity`` on log-log axes (0.167 for a slope of -0.167). With an interval
    of alpha, the statements carry the corresponding ranges.
    """
    alpha = float(abs(alpha))
    if not alpha > 0:
        raise ValueError(f"alpha must be non-zero, got {alpha}")
    red = 1.0 - 2.0 ** (-alpha)
    halve = 2.0 ** (1.0 / alpha) if alpha > 1e-3 else math.inf
    out: dict[str, Any] = {
        "alpha": alpha,
        "reduction_per_doubling": red,
        f"{quantity}_to_halve": halve,
        "doubling": f"Doubling {quantity} cuts the {loss} by {_pct(red)}.",
        "halving": f"Halving the {loss} needs {_times(halve)} the {quantity}.",
    }
    if quantity != "compute":
        out["compute_to_halve"] = halve  # the generic key the sweep reads
    if interval is not None:
        lo, hi = sorted(abs(float(v)) for v in interval)
        r_lo, r_hi = 1.0 - 2.0 ** (-lo), 1.0 - 2.0 ** (-hi)
        h_lo = 2.0 ** (1.0 / hi) if hi > 0 else math.inf
        h_hi = 2.0 ** (1.0 / lo) if lo > 1e-3 else math.inf
        out["reduction_per_doubling_interval"] = (r_lo, r_hi)
        out[f"{quantity}_to_halve_interval"] = (h_lo, h_hi)
        out["doubling"] = out["doubling"][:-1] + f" (interval {_pct(r_lo)} to {_pct(r_hi)})."
        out["halving"] = out["halving"][:-1] + f" (interval {_times(h_lo)} to {_times(h_hi)})."
    out["sentences"] = [out["doubling"], out["halving"]]
    return out


def _num(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        return f"{x:.4g}"
    return f"{x:.4g}"


def display_names(fit: FitResult) -> dict[str, str]:
    """Parameter names as printed: a power law in C shows C_c and alpha_C rather than x_c and alpha."""
    if fit.law == "power_law" and fit.variables and fit.variables[0] != "x":
        v = fit.variables[0]
        return {"L_inf": "L_inf", "x_c": f"{v}_c", "alpha": f"alpha_{v}"}
    return {k: k for k in fit.params}


def format_fit(fit: FitResult, title: str | None = None) -> str:
    lines = [title or f"{fit.law}: {fit.formula}"]
    if title:
        lines.append(f"  {fit.formula}")
    names = display_names(fit)
    pct = int(round(fit.level * 100))
    width = max(len(names[k]) for k in fit.params)
    for k, v in fit.params.items():
        lo, hi = fit.intervals[k]
        flag = "" if fit.identifiable[k] else "   NOT IDENTIFIABLE"
        lines.append(f"  {names[k]:<{width}} = {_num(v):>10}   {pct}% [{_num(lo)}, {_num(hi)}]{flag}")
    s = fit.stats
    lines.append(
        f"  {fit.n_points} points, {fit.n_groups} groups; rms log residual {s['rmse_log']:.4f} "
        f"(max {s['max_abs_log']:.4f}); intervals: {fit.interval_method}"
    )
    rule = fit.diagnostics.get("delta_rule", "")
    lines.append(
        f"  Huber delta {s['huber_delta']:.4g}{f' ({rule})' if rule else ''}; objective {s['objective']:.6g} "
        "(sum of Huber losses of the log residuals / (delta^2 n))"
    )
    for w in fit.warnings:
        lines.append(f"  ! {w}")
    return "\n".join(lines)


def exponent_statements(fit: FitResult) -> list[dict[str, Any]]:
    """derived_statements for every exponent of a fit, with its interval."""
    out = []
    quantity = {"C": "compute", "N": "model size", "D": "data", "S": "training"}
    for name in fit.law_obj.exponents:
        a = fit.params[name]
        if not (np.isfinite(a) and a > 1e-3):
            continue
        var = fit.variables[0] if len(fit.variables) == 1 else name.split("_")[-1]
        if fit.law == "hoffmann":
            var = "N" if name == "alpha" else "D"
        q = quantity.get(var, var)
        d = derived_statements(a, fit.intervals.get(name), quantity=q)
        d["parameter"] = name
        out.append(d)
    return out
