"""Does a law hold beyond its data? Held-out predictions, and the shared-asymptote test.

- `holdout`: refit a law without some of its points (the largest model rung, or the largest data
  subset: Alabdulmohsin et al. 2022 benchmark exactly this extrapolation) and predict them, each
  with a prediction band (the bootstrap band of the refitted law widened by the residual scale of
  its fit). The error of an exact held-out point is pred / actual - 1; an interval point (a run that
  did not converge, or was stopped) is "inside" when the prediction lies in its interval.
- `shared_floor_test`: Droppo & Elibol report one irreducible loss for LSTM and Transformer. Fit
  each architecture's law with its own floor and with one floor shared by all, by least squares on
  log residuals (distances outside intervals), and compare: F = (RSS_shared - RSS_separate) /
  (RSS_separate / (n - p)), one numerator degree of freedom, p the parameters of the separate fits.
  A small p-value rejects the shared floor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from scipy import optimize, stats

from .fitting import FitResult, Target, grid_objective, lbfgs, lm_batch
from .laws import Law

LS_DELTA = 1.0  # log residuals never reach 1 (a factor e): with this delta the Huber loss is least squares


def _prediction_band(fit: FitResult, X: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cols = [X[:, j] for j in range(X.shape[1])]
    mid = np.asarray(fit.predict(*cols), dtype=float)
    lo, hi = (np.asarray(v, dtype=float) for v in fit.predict_interval(*cols, level=level))
    z = float(stats.norm.ppf((1 + level) / 2))
    sigma = float(fit.stats.get("rmse_log", 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        dlo = np.sqrt(np.log(mid / lo) ** 2 + (z * sigma) ** 2)
        dhi = np.sqrt(np.log(hi / mid) ** 2 + (z * sigma) ** 2)
    return mid, mid * np.exp(-dlo), mid * np.exp(dhi)


def holdout(
    fit_fn: Callable[..., FitResult],
    X: np.ndarray,
    y: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    held: np.ndarray,
    *,
    level: float = 0.9,
    labels: list[str] | None = None,
) -> dict[str, Any]:
    """Refit with fit_fn(X, y, lo=, hi=) on the rows not `held`, predict the held rows."""
    X = np.asarray(X, dtype=float)
    y, lo, hi = (np.asarray(v, dtype=float) for v in (y, lo, hi))
    held = np.asarray(held, dtype=bool)
    out: dict[str, Any] = {"n_fit": int((~held).sum()), "n_held": int(held.sum()), "level": level}
    if held.sum() == 0 or (~held).sum() == 0:
        out["error"] = "nothing to hold out" if held.sum() == 0 else "nothing left to fit"
        return out
    fit = fit_fn(X[~held], y[~held], lo=lo[~held], hi=hi[~held])
    mid, plo, phi = _prediction_band(fit, X[held], level)
    rows = []
    for i, k in enumerate(np.flatnonzero(held)):
        exact = lo[k] >= hi[k]
        row = {
            "label": labels[k] if labels else int(k),
            "x": X[k].tolist(),
            "actual": float(y[k]),
            "actual_lo": float(lo[k]),
            "actual_hi": float(hi[k]),
            "exact": bool(exact),
            "predicted": float(mid[i]),
            "band": [float(plo[i]), float(phi[i])],
        }
        if exact:
            row["error"] = float(mid[i] / y[k] - 1.0)
            row["in_band"] = bool(plo[i] <= y[k] <= phi[i])
        else:
            row["inside_interval"] = bool(lo[k] <= mid[i] <= hi[k])
            row["in_band"] = bool(phi[i] >= lo[k] and plo[i] <= hi[k])
        rows.append(row)
    errs = [abs(r["error"]) for r in rows if "error" in r]
    out.update(
        points=rows,
        fit_warnings=list(fit.warnings),
        median_abs_error=float(np.median(errs)) if errs else math.nan,
        max_abs_error=float(np.max(errs)) if errs else math.nan,
        coverage=float(np.mean([r["in_band"] for r in rows])) if rows else math.nan,
        params=dict(fit.params),
    )
    return out


def _ls_fit(
    law: Law, X: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, floor: float | None = None, starts: int = 8
) -> tuple[float, np.ndarray]:
    """Least-squares fit (log residuals, distances outside intervals), the floor free or fixed: (RSS, theta)."""
    design = law.design(X)
    U = design.U
    logy = np.log(y)
    with np.errstate(divide="ignore"):
        tgt = Target(logy, np.log(np.maximum(np.minimum(lo, y), 0.0)), np.log(np.maximum(hi, y)))
    blo, bhi = law.bounds(logy)
    grid = law.grid(logy, U)
    fixed = None
    if floor is not None:
        f = math.log(max(floor, 1e-300))
        blo[law.floor_index] = min(blo[law.floor_index], f)
        bhi[law.floor_index] = max(bhi[law.floor_index], f)
        grid = grid.copy()
        grid[:, law.floor_index] = f
        fixed = {law.floor_index: f}
    if fixed:
        blo[law.floor_index] = bhi[law.floor_index] = f
    w = np.ones(len(y))
    F = grid_objective(law, grid, U, tgt, w, LS_DELTA)
    top = grid[np.argsort(F)[:starts]]
    polished, Fp, _ = lm_batch(law, top, U, tgt, np.repeat(w[None, :], len(top), axis=0), LS_DELTA, blo, bhi)
    k = int(np.argmin(Fp))
    theta, obj = lbfgs(law, polished[k], U, tgt, w, LS_DELTA, blo, bhi, fixed=fixed)
    obj = min(obj, float(Fp[k]))
    rss = 2.0 * LS_DELTA * LS_DELTA * w.sum() * obj
    return float(rss), theta


def shared_floor_test(
    parts: Mapping[str, tuple[Law, np.ndarray, np.ndarray, np.ndarray, np.ndarray]], level: float = 0.95
) -> dict[str, Any]:
    """One irreducible loss for every group (architecture) against one each (module docstring).

    parts: name -> (law, X, y, lo, hi)."""
    if len(parts) < 2:
        return {"error": "needs at least two architectures"}
    sep = {name: _ls_fit(law, X, y, lo, hi) for name, (law, X, y, lo, hi) in parts.items()}
    rss_sep = sum(r for r, _ in sep.values())
    floors = {
        name: float(np.exp(theta[law.floor_index]))
        for name, ((law, *_), (_, theta)) in ((n, (parts[n], sep[n])) for n in parts)
    }
    ymin = min(float(np.min(y)) for _, _, y, _, _ in parts.values())

    def total(log_floor: float) -> float:
        return sum(_ls_fit(law, X, y, lo, hi, floor=math.exp(log_floor))[0] for law, X, y, lo, hi in parts.values())

    grid = np.log(ymin * np.concatenate([np.geomspace(1e-3, 0.5, 8), np.linspace(0.55, 1.04, 12)]))
    vals = [total(g) for g in grid]
    k = int(np.argmin(vals))
    a, b = grid[max(k - 1, 0)], grid[min(k + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(total, bounds=(a, b), method="bounded", options={"xatol": 1e-4})
    rss_shared, shared = (
        (float(res.fun), float(math.exp(res.x))) if res.fun < vals[k] else (vals[k], float(math.exp(grid[k])))
    )
    n = sum(len(y) for _, _, y, _, _ in parts.values())
    p = sum(law.n_params for law, *_ in parts.values())
    dof = max(n - p, 1)
    F = max(rss_shared - rss_sep, 0.0) / max(rss_sep / dof, 1e-300)
    pval = float(stats.f.sf(F, 1, dof))
    return {
        "floors": floors,
        "shared_floor": shared,
        "rss_separate": rss_sep,
        "rss_shared": rss_shared,
        "F": float(F),
        "dof": [1, dof],
        "p_value": pval,
        "level": level,
        "rejected": bool(pval < 1 - level),
        "n_points": n,
    }


__all__ = ["holdout", "shared_floor_test"]
