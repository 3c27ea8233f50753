"""Learning-curve extrapolation with calibrated predictive intervals.

From the prefix of one run's learning curve (x = frames, steps or FLOPs; y = dev
loss) predict the loss at a later x, with an interval meant to contain the
*observed* dev loss there with probability ``level``.

Model: L(x) = L_final + c ((x + x0) / x_ref)^(-alpha), the learning-curve law
L_final + (S_c/S)^alpha_S with a small shift x0 of the time axis (warmup, or
progress made before the first evaluation, bends the first points of real
curves; without it the fit reads that bend as a floor and extrapolates too
optimistically). For every (alpha, x0) on a grid the law is linear in
(L_final, c): these come from a (Huber-reweighted) least-squares fit of the
relative residuals, all cells in one numpy pass (variable projection).

The predictive distribution is a mixture over the grid cells, weighted by their
profile likelihood ``exp(-(SSR - SSR_min) / (2 sigma^2 infl))`` (and a prior that
prefers no shift), each cell a normal in log space whose variance adds

1. the conditional uncertainty of (L_final, c) given the cell;
2. observation noise at the target (the residual scale);
3. model mismatch, growing linearly with the log horizon log(x_target/x_last):
   its rate comes from a *backtest* inside the prefix (fit the earlier part,
   predict its last points), shrunk towards a prior rate when the run has few
   points. Real curves are not exactly this law; this learns from the run how
   far it can be trusted.

``infl = (1 + rho) / (1 - rho)`` widens everything for the lag-1
autocorrelation rho of the residuals (neighbouring evaluations of one run are
not independent). The constants (``PRIOR_RATE``, ``PRIOR_WEIGHT``) were set on
:func:`synthetic_curves` and checked on curves of another shape
(:func:`synthetic_curves` with ``family="transient"``); :func:`calibration`
measures coverage on any set of finished curves, real ones included.

``flag`` is set when the extrapolation cannot be trusted:

* ``"too_few_points"``: fewer than ``MIN_POINTS`` usable points; the interval is
  [0, highest loss seen]: no decision should rest on it;
* ``"no_bend"``: the prefix shows no curvature (a pure power law fits as well:
  F test at 95%, with the residual variance inflated for autocorrelation),
  so the floor is unknown: the interval is widened to run from the pure
  power-law extrapolation (no floor) to the current loss (no further progress);
* ``"no_trend"``: the curve is flat or rising (no decreasing law fits); the
  median of its last points is the prediction, the interval [0, highest loss];
* ``"bad_fit"``: the residuals are large compared with the spread of the data;
  the interval is widened to [0, highest loss seen].
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special, stats

MIN_POINTS = 5
PRIOR_RATE = 0.0125  # log error per unit log horizon expected before the run says otherwise
PRIOR_WEIGHT = 2.0  # worth of that prior, in backtests
BACKTEST_FRACTIONS = (0.5, 0.65, 0.8)
ALPHAS = np.geomspace(0.05, 2.5, 40)
SHIFTS = np.array([0.0, -0.75, -0.5, -0.25, 0.5, 1.0, 2.0, 4.0, 8.0])  # x0 in units of the first x
ZERO_SHIFT_PRIOR = 0.5  # prior mass of "no shift"; the rest is spread over the other shifts
NO_BEND_LEVEL = 0.95  # F test of the floor against the pure power law


@dataclass
class Prediction:
    """Predicted loss at ``x_target`` with a predictive interval [lo, hi] at ``level``.

    ``mean`` is the median of the predictive distribution (the geometric mean
    for a symmetric one in log space). ``flag`` is None when the extrapolation
    is considered reliable, else the reason it is not (see the module doc).
    """

    x_target: Any
    mean: Any
    lo: Any
    hi: Any
    level: float
    flag: str | None
    n_points: int
    params: dict[str, float] = field(default_factory=dict)
    sigma_log: Any = None  # (hi/lo) expressed as a normal sd in log space
    details: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def reliable(self) -> bool:
        return self.flag is None

    def to_dict(self) -> dict[str, Any]:
        from .fitting import _jsonable

        return _jsonable(
            {
                "x_target": self.x_target,
                "mean": self.mean,
                "lo": self.lo,
                "hi": self.hi,
                "level": self.level,
                "flag": self.flag,
                "n_points": self.n_points,
                "params": self.params,
                "sigma_log": self.sigma_log,
                "details": self.details,
            }
        )


# --------------------------------------------------------------------------------------
# all grid cells at once
# --------------------------------------------------------------------------------------
@dataclass
class _Cells:
    alpha: np.ndarray  # (K,)
    x0: np.ndarray  # (K,)
    prior: np.ndarray  # (K,) log prior
    ref: float
    Z: np.ndarray  # (K, n) basis ((x + x0)/ref)^-alpha


def _cells(xs: np.ndarray) -> _Cells:
    x1, xm = xs[0], xs[-1]
    shifts = SHIFTS * x1
    keep = shifts <= 0.5 * xm
    shifts = shifts[keep]
    prior_shift = np.where(shifts == 0, ZERO_SHIFT_PRIOR, (1 - ZERO_SHIFT_PRIOR) / max(len(shifts) - 1, 1))
    alpha = np.repeat(ALPHAS, len(shifts))
    x0 = np.tile(shifts, len(ALPHAS))
    prior = np.log(np.tile(prior_shift, len(ALPHAS)))
    ref = float(np.exp(np.mean(np.log(xs))))
    Z = _basis(xs, alpha, x0, ref)
    return _Cells(alpha, x0, prior, ref, Z)


def _basis(x: np.ndarray, alpha: np.ndarray, x0: np.ndarray, ref: float) -> np.ndarray:
    return np.exp(-alpha[:, None] * np.log((x[None, :] + x0[:, None]) / ref))


@dataclass
class _Solve:
    Lf: np.ndarray
    c: np.ndarray
    ssr: np.ndarray
    S11: float
    S12: np.ndarray
    S22: np.ndarray
    at_zero: np.ndarray  # floor constrained at 0
    ssr_nofloor: np.ndarray


def _solve(Z: np.ndarray, y: np.ndarray, w: np.ndarray) -> _Solve:
    """Weighted LS of relative residuals (L_final + c z)/y - 1 for every cell; L_final, c >= 0."""
    iy = 1.0 / y
    a = w * iy * iy
    wy = w * iy
    S11 = float(a.sum())
    S12 = Z @ a
    S22 = (Z * Z) @ a
    b1 = float(wy.sum())
    b2 = Z @ wy
    sw = float(w.sum())
    det = S11 * S22 - S12 * S12
    with np.errstate(divide="ignore", invalid="ignore"):
        Lf = (S22 * b1 - S12 * b2) / det
        c = (S11 * b2 - S12 * b1) / det
        ssr = sw - (Lf * b1 + c * b2)
        c0 = b2 / S22
        ssr0 = sw - c0 * b2
    at_zero = ~(Lf > 0) | ~np.isfinite(det) | (det <= 0)
    Lf = np.where(at_zero, 0.0, Lf)
    c = np.where(at_zero, c0, c)
    ssr = np.where(at_zero, ssr0, ssr)
    bad = ~(c > 0) | ~np.isfinite(ssr)
    ssr = np.where(bad, np.inf, np.maximum(ssr, 0.0))
    ssr0 = np.where(~(c0 > 0) | ~np.isfinite(ssr0), np.inf, np.maximum(ssr0, 0.0))
    return _Solve(Lf, c, ssr, S11, S12, S22, at_zero, ssr0)


def _robust_fit(cells: _Cells, ys: np.ndarray, passes: int = 2) -> tuple[_Solve, np.ndarray, np.ndarray, int]:
    """Solve, then reweight by Huber on the relative residuals of the best cell."""
    w = np.ones_like(ys)
    sol = _solve(cells.Z, ys, w)
    for _ in range(passes):
        k = int(np.argmin(sol.ssr))
        if not np.isfinite(sol.ssr[k]):
            break
        r = (sol.Lf[k] + sol.c[k] * cells.Z[k]) / ys - 1.0
        sigma = 1.4826 * float(np.median(np.abs(r - np.median(r))))
        delta = max(1.345 * sigma, 1e-6)
        w = np.minimum(1.0, delta / np.maximum(np.abs(r), 1e-300))
        sol = _solve(cells.Z, ys, w)
    k = int(np.argmin(sol.ssr))
    r = (sol.Lf[k] + sol.c[k] * cells.Z[k]) / ys - 1.0
    return sol, w, r, k


def _lag1(r: np.ndarray) -> float:
    r = r - r.mean()
    den = float(r @ r)
    if den <= 0 or len(r) < 4:
        return 0.0
    return float(np.clip((r[1:] @ r[:-1]) / den, 0.0, 0.9))


def _mixture_quantiles(logw: np.ndarray, m: np.ndarray, s: np.ndarray, probs: Sequence[float]) -> np.ndarray:
    """Quantiles of sum_k w_k N(m_k, s_k^2) for each column of m, s (K, T). Returns (len(probs), T)."""
    w = np.exp(logw - logw.max())
    w = w / w.sum()
    lo = (m - 8 * s).min(axis=0)
    hi = (m + 8 * s).max(axis=0)
    out = []
    for p in probs:
        a, b = lo.copy(), hi.copy()
        for _ in range(40):
            mid = 0.5 * (a + b)
            cdf = (w[:, None] * special.ndtr((mid[None, :] - m) / s)).sum(axis=0)
            below = cdf < p
            a = np.where(below, mid, a)
            b = np.where(below, b, mid)
        out.append(0.5 * (a + b))
    return np.array(out)


@dataclass
class _Posterior:
    xs: np.ndarray
    ys: np.ndarray
    cells: _Cells
    sol: _Solve
    w: np.ndarray
    r: np.ndarray
    k: int  # best cell
    sigma2: float  # residual variance (relative ~ log)
    infl: float  # autocorrelation inflation
    rho: float
    logpost: np.ndarray
    keep: np.ndarray  # cells that matter


def _posterior(xs: np.ndarray, ys: np.ndarray, passes: int = 2) -> _Posterior | None:
    cells = _cells(xs)
    sol, w, r, k = _robust_fit(cells, ys, passes)
    if not np.isfinite(sol.ssr[k]):
        return None
    sigma2 = max(float(sol.ssr[k]) / max(float(w.sum()) - 4.0, 1.0), 1e-12)
    rho = _lag1(r)
    infl = (1 + rho) / (1 - rho)
    logpost = cells.prior - (sol.ssr - sol.ssr[k]) / (2 * sigma2 * infl)
    keep = np.flatnonzero(logpost > logpost.max() - 18.0)
    return _Posterior(xs, ys, cells, sol, w, r, k, sigma2, infl, rho, logpost, keep)


def _predictive(post: _Posterior, xt: np.ndarray, var_extra: np.ndarray, probs: Sequence[float]) -> np.ndarray:
    """Quantiles (len(probs), T) of log L at xt: mixture over cells, each normal in log space with the
    conditional variance of (L_final, c) plus ``var_extra`` (noise, mismatch)."""
    keep, sol, cells = post.keep, post.sol, post.cells
    Zt = _basis(xt, cells.alpha[keep], cells.x0[keep], cells.ref)  # (K', T)
    Lf, c = sol.Lf[keep][:, None], sol.c[keep][:, None]
    mu = Lf + c * Zt
    S11, S12, S22 = sol.S11, sol.S12[keep][:, None], sol.S22[keep][:, None]
    det = S11 * S22 - S12 * S12
    with np.errstate(divide="ignore", invalid="ignore"):
        quad_free = (S22 - 2 * S12 * Zt + S11 * Zt * Zt) / det  # g' G^-1 g with g = (1, z_t)
        quad_zero = Zt * Zt / S22
    quad = np.where(sol.at_zero[keep][:, None], quad_zero, quad_free)
    quad = np.where(np.isfinite(quad), np.maximum(quad, 0.0), 0.0)
    var_cond = post.sigma2 * post.infl * quad / (mu * mu)
    s = np.sqrt(var_cond + var_extra[None, :])
    return _mixture_quantiles(post.logpost[keep], np.log(mu), np.maximum(s, 1e-9), probs)


def _backtest_rate(xs: np.ndarray, ys: np.ndarray, min_points: int) -> tuple[float, int, dict]:
    """Excess squared log error per unit log horizon squared, from fits of earlier parts of the prefix.

    Each backtest fits the first part of the prefix, predicts the mean log loss
    of the last points, and keeps only the part of the squared error that its
    own predictive variance (parameters + noise of that mean) does not explain.
    """
    n = xs.size
    errs, hs, ex = [], [], []
    for frac in BACKTEST_FRACTIONS:
        m = max(int(round(n * frac)), min_points)
        if m >= n - 1:
            continue
        post = _posterior(xs[:m], ys[:m], passes=1)
        if post is None:
            continue
        tail = np.arange(max(m, n - max(2, (n - m) // 3)), n)  # the last points of the prefix
        xbar = np.array([float(np.exp(np.mean(np.log(xs[tail]))))])
        noise = post.sigma2 * post.infl / len(tail)
        q = _predictive(post, xbar, np.array([noise]), (0.158655, 0.5, 0.841345))[:, 0]
        e = float(q[1] - np.mean(np.log(ys[tail])))
        var_model = (0.5 * (q[2] - q[0])) ** 2
        h = float(np.log(xbar[0] / xs[m - 1]))
        if h > 0 and np.isfinite(e):
            errs.append(e)
            hs.append(h)
            ex.append(max(e * e - var_model, 0.0) / (h * h))
    if not errs:
        return 0.0, 0, {}
    return float(np.mean(ex)), len(errs), {"errors": errs, "horizons": hs}


# --------------------------------------------------------------------------------------
# the public function
# --------------------------------------------------------------------------------------
def extrapolate_curve(
    x, y, x_target, level: float = 0.8, *, backtest: bool = True, min_points: int = MIN_POINTS, skip_first: int = 0
) -> Prediction:
    """Predict the loss of one run at ``x_target`` from its curve so far (x > 0 points).

    ``x_target`` may be a scalar or an array; the result has the same shape.
    ``skip_first`` drops the first evaluations (e.g. warmup). Points with x <= 0
    or a non-finite or non-positive loss are ignored (and counted in ``details``).
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y have different lengths ({x.size} and {y.size})")
    xt = np.asarray(x_target, dtype=float)
    scalar = xt.ndim == 0
    xt1 = np.atleast_1d(xt).ravel()
    if np.any(~np.isfinite(xt1)) or np.any(xt1 <= 0):
        raise ValueError("x_target must be finite and > 0")
    good = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    ignored = int((~good).sum())
    order = np.argsort(x[good], kind="stable")
    xs, ys = x[good][order], y[good][order]
    if skip_first:
        xs, ys = xs[skip_first:], ys[skip_first:]
    n = xs.size
    shape = xt.shape
    z = float(stats.norm.ppf((1 + level) / 2))

    def out(mean, lo, hi, flag, params=None, **details):
        mean, lo, hi = (np.asarray(v, dtype=float).reshape(xt1.shape) for v in (mean, lo, hi))
        with np.errstate(divide="ignore"):
            sig = np.log(hi / lo) / (2 * z)
        cast = (lambda a: float(a[0])) if scalar else (lambda a: a.reshape(shape))
        return Prediction(
            x_target=float(xt) if scalar else xt,
            mean=cast(mean),
            lo=cast(lo),
            hi=cast(hi),
            level=level,
            flag=flag,
            n_points=n,
            params=params or {},
            sigma_log=cast(sig),
            details={"ignored": ignored, **details},
        )

    if n < max(min_points, 4) or np.unique(xs).size < 4:
        last = ys[-1] if n else np.nan
        top = ys.max() if n else np.nan
        return out(np.full(xt1.shape, last), np.zeros(xt1.shape), np.full(xt1.shape, top), "too_few_points")

    post = _posterior(xs, ys)
    if post is None:  # no cell has a decreasing term: the curve is flat or rising
        tail = ys[-max(3, n // 5) :]
        return out(
            np.full(xt1.shape, float(np.median(tail))), np.zeros(xt1.shape), np.full(xt1.shape, ys.max()), "no_trend"
        )
    sol, cells, k = post.sol, post.cells, post.k
    horizon = np.maximum(np.log(xt1 / xs[-1]), 0.0)
    bt: dict[str, Any] = {}
    rate2, n_bt = 0.0, 0
    if backtest and n >= min_points + 3:
        rate2, n_bt, bt = _backtest_rate(xs, ys, min_points)
    rate2 = (PRIOR_WEIGHT * PRIOR_RATE**2 + n_bt * rate2) / (PRIOR_WEIGHT + n_bt)
    var_extra = post.sigma2 + rate2 * horizon**2
    q = _predictive(post, xt1, var_extra, [(1 - level) / 2, 0.5, (1 + level) / 2])
    lo, mean, hi = np.exp(q)

    nat = {
        "L_final": float(sol.Lf[k]),
        "S_c": float(cells.ref * sol.c[k] ** (1 / cells.alpha[k])),
        "alpha_S": float(cells.alpha[k]),
        "x0": float(cells.x0[k]),
    }

    # is there a bend? compare with the pure power law (floor pinned at 0)
    flag = None
    k0 = int(np.argmin(sol.ssr_nofloor))
    dev = float((sol.ssr_nofloor[k0] - sol.ssr[k]) / (post.sigma2 * post.infl))
    crit = float(stats.f.ppf(NO_BEND_LEVEL, 1, max(float(post.w.sum()) - 4.0, 1.0)))
    if dev < crit:
        flag = "no_bend"
        z0 = _basis(xt1, cells.alpha[k0 : k0 + 1], cells.x0[k0 : k0 + 1], cells.ref)[0]
        zk = cells.Z[k0]
        c0 = float((zk * post.w / ys).sum() / (zk * zk * post.w / (ys * ys)).sum())
        now = float(sol.Lf[k] + sol.c[k] * cells.Z[k][-1])
        lo = np.minimum(lo, c0 * z0 * np.exp(-z * np.sqrt(var_extra)))
        hi = np.maximum(hi, now * math.exp(z * math.sqrt(post.sigma2)))
    spread = float(np.std(np.log(ys)))
    if spread > 0 and math.sqrt(float(np.mean(post.r**2))) > 0.5 * spread:
        flag = flag or "bad_fit"
        lo = np.zeros_like(lo)
        hi = np.maximum(hi, ys.max())
    return out(
        mean,
        lo,
        hi,
        flag,
        nat,
        rho=post.rho,
        sigma_noise=math.sqrt(post.sigma2),
        floor_deviance=dev,
        mismatch_rate=math.sqrt(rate2),
        horizon=float(horizon[0]) if scalar else horizon.tolist(),
        backtest=bt,
    )


# --------------------------------------------------------------------------------------
# calibration
# --------------------------------------------------------------------------------------
def calibration(
    curves: Iterable, prefix_fraction: float | Sequence[float] = 0.5, level: float = 0.8, target: str = "last", **opts
) -> dict[str, Any]:
    """Coverage of the predictive intervals on held-out ends of learning curves.

    ``curves``: iterable of (x, y) or dicts with keys "x" and "y" (e.g. frames
    and dev loss of finished runs). For each curve and prefix fraction, the
    points with x <= fraction * x_max form the prefix; the prediction targets
    the last point (``target="last"``) or every later point (``"all"``).
    Returns overall coverage, coverage of reliable (unflagged) predictions, mean
    log width, and per-flag counts.
    """
    fractions = [prefix_fraction] if np.ndim(prefix_fraction) == 0 else list(prefix_fraction)
    rows = []
    for c in curves:
        x, y = (c["x"], c["y"]) if isinstance(c, dict) else (c[0], c[1])
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        for frac in fractions:
            cut = frac * x.max()
            pre = x <= cut
            later = ~pre
            if pre.sum() == 0 or later.sum() == 0:
                continue
            idx = np.flatnonzero(later)
            if target == "last":
                idx = idx[-1:]
            p = extrapolate_curve(x[pre], y[pre], x[idx], level=level, **opts)
            inside = (p.lo <= y[idx]) & (y[idx] <= p.hi)
            for k, i in enumerate(idx):
                rows.append(
                    (
                        frac,
                        p.flag,
                        bool(inside[k]),
                        float(np.log(p.hi[k] / p.lo[k])) if p.lo[k] > 0 else np.inf,
                        float(np.log(p.mean[k] / y[i])),
                    )
                )
    if not rows:
        raise ValueError("no curve had both a prefix and later points")
    inside = np.array([r[2] for r in rows])
    flags = [r[1] for r in rows]
    reliable = np.array([f is None for f in flags])
    widths = np.array([r[3] for r in rows])
    errs = np.array([r[4] for r in rows])
    res = {
        "level": level,
        "n": len(rows),
        "coverage": float(inside.mean()),
        "coverage_reliable": float(inside[reliable].mean()) if reliable.any() else float("nan"),
        "n_reliable": int(reliable.sum()),
        "flags": {str(f): flags.count(f) for f in sorted(set(flags), key=str)},
        "median_log_width": float(np.median(widths[np.isfinite(widths)]))
        if np.isfinite(widths).any()
        else float("inf"),
        "median_abs_log_error": float(np.median(np.abs(errs))),
        "by_fraction": {},
    }
    for frac in fractions:
        sel = np.array([r[0] == frac for r in rows])
        if sel.any():
            res["by_fraction"][frac] = {
                "n": int(sel.sum()),
                "coverage": float(inside[sel].mean()),
                "coverage_reliable": float(inside[sel & reliable].mean()) if (sel & reliable).any() else float("nan"),
            }
    return res


def synthetic_curves(
    n: int,
    seed: int = 0,
    *,
    family: str = "shifted",
    n_evals: tuple[int, int] = (30, 80),
    noise: tuple[float, float] = (0.002, 0.015),
    rho: tuple[float, float] = (0.0, 0.7),
    spikes: float = 0.01,
) -> list[dict[str, np.ndarray]]:
    """Learning curves that look like real ones, for calibration tests.

    Each curve: evaluations at evenly spaced x (a trainer evaluates every k
    steps) up to x_end in [1e8, 1e10]; log-normal noise of scale in ``noise``
    (log-uniform) with AR(1) correlation in ``rho`` between neighbouring
    evaluations; rare loss spikes (+2..10%, probability ``spikes`` per point).
    The true curve never is the fitted law exactly:

    * ``family="shifted"``: L_final + A ((x1 + x0)/(x + x0))^alpha + B (slow
      term, exponent 0.05..0.3): x0 > 0 (progress before the first evaluation)
      or x0 < 0 (a warmup delay), one third each, no shift for the rest;
    * ``family="transient"``: L_final + A (x1/x)^alpha + C exp(-x/tau) (an early
      transient over the first 1-5% of training) + the slow term: a shape the
      extrapolator's grid does not contain, to check calibration out of family.

    alpha is drawn in [0.3, 1.0], L_final in [0.3, 0.6], the reducible loss at
    the first evaluation within a factor 3 of L_final. Returns dicts with x, y
    (observed) and y_true.
    """
    if family not in ("shifted", "transient"):
        raise ValueError(f"family must be 'shifted' or 'transient', not {family!r}")
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        m = int(rng.integers(n_evals[0], n_evals[1] + 1))
        x_end = float(10 ** rng.uniform(8, 10))
        x = np.linspace(x_end / m, x_end, m)
        L_final = rng.uniform(0.3, 0.6)
        alpha = rng.uniform(0.3, 1.0)
        first = L_final * 10 ** rng.uniform(-0.5, 0.5)  # reducible loss at the first evaluation
        if family == "shifted":
            kind = rng.integers(3)
            x0 = (0.0, rng.uniform(0.0, 0.03) * x_end, -rng.uniform(0.0, 0.7) * x[0])[kind]
            true = L_final + first * ((x[0] + x0) / (x + x0)) ** alpha
        else:
            tau = rng.uniform(0.01, 0.05) * x_end
            true = L_final + first * (x[0] / x) ** alpha + rng.uniform(0.0, 0.5) * first * np.exp(-(x - x[0]) / tau)
        beta = rng.uniform(0.05, 0.3)
        amp = rng.uniform(0.0, 0.3) * first
        true = true + amp * ((x[0] / x) ** beta - (x[0] / x_end) ** beta)
        s = 10 ** rng.uniform(np.log10(noise[0]), np.log10(noise[1]))
        r = rng.uniform(*rho)
        e = np.empty(m)
        e[0] = rng.standard_normal() * s
        for t in range(1, m):
            e[t] = r * e[t - 1] + math.sqrt(1 - r * r) * s * rng.standard_normal()
        if spikes:
            hit = rng.random(m) < spikes
            e[hit] += rng.uniform(0.02, 0.1, hit.sum())
        out.append({"x": x, "y": true * np.exp(e), "y_true": true})
    return out
