"""Robust fits of scaling laws with bootstrap intervals (Hoffmann et al.'s method, vectorised).

The objective is a Huber loss on log residuals, ``r = log L_hat - log L``:

    F(theta) = sum_i w_i rho_delta(r_i) / (delta^2 sum_i w_i)

It is minimised in three steps:

1. **Grid.** A data-adapted grid of a few thousand initialisations (floors as
   fractions of the smallest loss, exponents 0.05..1.6, amplitudes scaled to
   the data) is scored in one numpy pass. For laws that are linear in their
   coefficients once the exponents are fixed (power law, Hoffmann), variable
   projection adds its solution as one more start (and serves as a
   cross-check).
2. **L-BFGS-B** from the best few starts, with bounds; first with a small
   Huber delta (1e-3, as Hoffmann et al.: close to least absolute deviations,
   so outliers cannot pull the fit), then with ``delta = 1.345 sigma`` where
   sigma is the MAD scale of those residuals (95% efficient for Gaussian noise,
   still robust). ``delta`` can be fixed instead.
3. **Bootstrap.** Runs (``groups``) are resampled with replacement, never points
   within a run; all replicates are refitted *at once* by a batched
   Levenberg-Marquardt (IRLS for the Huber loss) started from the full-data
   optimum, and each replicate is checked against the whole init grid under its
   own weights so that a replicate whose optimum lies in another basin is
   refitted from there. Percentile intervals follow.

Identifiability: the irreducible loss is tested by a profile comparison with the
pure power law (floor pinned at ~0). If the pure law fits as well (Delta < the
chi-square quantile at ``level``), or the bootstrap interval runs into the bound,
the floor is reported *not identifiable*, its interval starts at 0, and a
warning says so. Any parameter whose interval runs into its bounds is marked the
same way.

Outliers: points whose log residual has a robust z-score (median/MAD) beyond
3.5 are reported in ``FitResult.outliers``; z is that of log(observed / fitted),
so a positive z is a point above the fit. The Huber loss bounds each residual's
pull, not a point's leverage: :mod:`apcscale.scaling.influence` refits without
them to say how far they move the parameters.

Threads: the fit runs with one BLAS thread (``BLAS_THREADS``, through
threadpoolctl). Its arrays are small (a few hundred points by 5 parameters), so
more threads only add synchronisation, and on a loaded machine they made a
bootstrapped fit ten times slower (benchmarks/bench_fit.py measures both).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

from .laws import Droppo, Hoffmann, Law, LearningCurve, PowerLaw
from .validate import FitError, OnBad, as_float_array, check_columns

HOFFMANN_DELTA = 1e-3
OUTLIER_Z = 3.5
BLAS_THREADS: int | None = 1  # BLAS threads inside a fit (None: leave the library's default)
N_STARTS = 6


class Outlier(NamedTuple):
    """A point whose residual is far from the others: ``z`` is the robust z-score of
    log(observed / fitted) (positive: above the fit); ``log_residual`` is log(fitted / observed)."""

    row: int
    reason: str
    log_residual: float
    z: float


# --------------------------------------------------------------------------------------
# objective
# --------------------------------------------------------------------------------------
def huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber rho and psi (its derivative) of residuals r."""
    a = np.abs(r)
    quad = a <= delta
    rho = np.where(quad, 0.5 * r * r, delta * (a - 0.5 * delta))
    psi = np.clip(r, -delta, delta)
    return rho, psi


class Target:
    """What the fit matches, in log space: exact losses, or intervals [lo, hi] that hold the loss.

    An exact point (lo == hi) has the usual residual log L_hat - log L. An interval point has
    residual 0 while the prediction lies inside it and its distance to the nearer end outside it
    (lo = 0 makes it a censored point: only the upper bound holds). `center` is a point estimate
    used only where the fitter needs a scale (initialisation grids, bounds)."""

    def __init__(self, center: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None):
        self.center = np.asarray(center, dtype=float)
        self.lo = self.center if lo is None else np.asarray(lo, dtype=float)
        self.hi = self.center if hi is None else np.asarray(hi, dtype=float)
        self.exact = self.lo >= self.hi

    def res(self, lp: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.maximum(lp - self.hi, 0.0) + np.minimum(lp - self.lo, 0.0)

    def active(self, lp: np.ndarray) -> np.ndarray:
        return self.exact | (lp >= self.hi) | (lp <= self.lo)

    def __getitem__(self, idx) -> Target:
        return Target(self.center[idx], self.lo[idx], self.hi[idx])


def _res(lp: np.ndarray, logy) -> np.ndarray:
    return logy.res(lp) if isinstance(logy, Target) else lp - logy


def _act(lp: np.ndarray, logy) -> np.ndarray | float:
    return logy.active(lp) if isinstance(logy, Target) else 1.0


def _center(logy) -> np.ndarray:
    return logy.center if isinstance(logy, Target) else logy


def _objective(r: np.ndarray, W: np.ndarray, delta: float) -> np.ndarray:
    rho, _ = huber(r, delta)
    return (W * rho).sum(axis=-1) / (delta * delta * W.sum(axis=-1))


def grid_objective(
    law: Law,
    grid: np.ndarray,
    U: np.ndarray,
    logy: np.ndarray,
    w: np.ndarray,
    delta: float,
    per_point: bool = False,
    chunk: int = 1024,
) -> np.ndarray:
    """Objective of every grid point (K,), or the per-point Huber terms (K, n), in chunks."""
    out = []
    for s in range(0, len(grid), chunk):
        r = _res(law.log_predict(grid[s : s + chunk], U), logy)
        rho, _ = huber(r, delta)
        rho = rho / (delta * delta)
        out.append(rho if per_point else (rho * w).sum(axis=1) / w.sum())
    return np.concatenate(out, axis=0)


def lbfgs(
    law: Law,
    theta0: np.ndarray,
    U: np.ndarray,
    logy: np.ndarray,
    w: np.ndarray,
    delta: float,
    lo: np.ndarray,
    hi: np.ndarray,
    fixed: dict[int, float] | None = None,
) -> tuple[np.ndarray, float]:
    """L-BFGS-B on the Huber objective from one start; ``fixed`` pins internal parameters."""
    norm = delta * delta * w.sum()
    lo, hi = lo.copy(), hi.copy()
    theta0 = np.clip(np.array(theta0, dtype=float), lo, hi)
    for i, v in (fixed or {}).items():
        lo[i] = hi[i] = theta0[i] = v

    def f(th):
        lp, J = law.log_predict_jac(th[None, :], U)
        r = _res(lp[0], logy)
        rho, psi = huber(r, delta)
        return float((w * rho).sum() / norm), J[0].T @ (w * psi * _act(lp[0], logy)) / norm

    res = optimize.minimize(
        f,
        theta0,
        jac=True,
        method="L-BFGS-B",
        bounds=list(zip(lo, hi)),
        options={"maxiter": 3000, "ftol": 1e-15, "gtol": 1e-11, "maxcor": 20},
    )
    return np.clip(res.x, lo, hi), float(res.fun)


def lm_batch(
    law: Law,
    theta0: np.ndarray,
    U: np.ndarray,
    logy: np.ndarray,
    W: np.ndarray,
    delta: float,
    lo: np.ndarray,
    hi: np.ndarray,
    maxiter: int = 300,
    ftol: float = 1e-12,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched bounded Levenberg-Marquardt on the Huber objective (IRLS weights).

    theta0 (B, P), W (B, n) point weights per problem. Returns theta (B, P), the
    objective (B,) and a converged flag (B,). Parameters at a bound whose
    gradient points outward are frozen for the step (a simple active set).
    """
    B, P = theta0.shape
    theta = np.clip(np.array(theta0, dtype=float), lo, hi)
    lp, J = law.log_predict_jac(theta, U)
    r = _res(lp, logy)
    act = np.broadcast_to(_act(lp, logy), r.shape).astype(float)
    F = _objective(r, W, delta)
    lam = np.full(B, 1e-3)
    active = np.ones(B, dtype=bool)
    converged = np.zeros(B, dtype=bool)
    eye = np.eye(P)
    wsum = W.sum(axis=1)
    for _ in range(maxiter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        Ja, ra, th = J[idx] * act[idx][:, :, None], r[idx], theta[idx]
        om = W[idx] * np.minimum(1.0, delta / np.maximum(np.abs(ra), 1e-300))
        JtW = np.swapaxes(Ja * om[:, :, None], 1, 2)  # (b, P, n)
        H = JtW @ Ja
        g = (JtW @ ra[:, :, None])[:, :, 0]
        frozen = ((th <= lo + 1e-12) & (g > 0)) | ((th >= hi - 1e-12) & (g < 0))
        d = np.diagonal(H, axis1=1, axis2=2)
        damp = lam[idx, None] * (d + 1e-9 * d.mean(axis=1, keepdims=True) + 1e-300)
        A = H + damp[:, :, None] * eye
        if frozen.any():
            keep = ~frozen
            A = A * keep[:, :, None] * keep[:, None, :] + frozen[:, :, None] * eye
            g = g * keep
        try:
            step = -np.linalg.solve(A, g[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            step = -np.stack([np.linalg.lstsq(a, b, rcond=None)[0] for a, b in zip(A, g)])
        new = np.clip(th + step, lo, hi)
        lp_n, J_n = law.log_predict_jac(new, U)
        r_n = _res(lp_n, logy)
        act_n = np.broadcast_to(_act(lp_n, logy), r_n.shape).astype(float)
        rho, _ = huber(r_n, delta)
        F_n = (W[idx] * rho).sum(axis=1) / (delta * delta * wsum[idx])
        ok = np.isfinite(F_n) & (F_n <= F[idx])
        acc = idx[ok]
        small = (F[idx] - F_n) <= ftol * (1.0 + F[idx])
        theta[acc], J[acc], r[acc], act[acc] = new[ok], J_n[ok], r_n[ok], act_n[ok]
        F[acc] = F_n[ok]
        lam[acc] = np.maximum(lam[acc] / 3.0, 1e-12)
        rej = idx[~ok]
        lam[rej] *= 8.0
        done_ok = acc[small[ok]]
        done_stuck = rej[lam[rej] > 1e10]
        converged[done_ok] = True
        converged[done_stuck] = True
        active[done_ok] = False
        active[done_stuck] = False
    return theta, F, converged


# --------------------------------------------------------------------------------------
# variable projection: linear coefficients for fixed exponents (cross-check and start)
# --------------------------------------------------------------------------------------
def varpro_start(law: Law, U: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray | None:
    """Best relative-least-squares fit over an exponent grid, coefficients by NNLS; internal theta."""
    if not isinstance(law, (PowerLaw, Hoffmann)):
        return None
    inv = 1.0 / y
    if isinstance(law, PowerLaw):
        best = (np.inf, None)
        for al in np.geomspace(0.01, 3.0, 80):
            X = np.stack([np.ones_like(y), np.exp(-al * U[:, 0])], axis=1)
            coef, res = optimize.nnls(X * inv[:, None], np.ones_like(y))
            if res < best[0]:
                best = (res, (coef, al))
        coef, al = best[1]
        e = math.log(coef[0]) if coef[0] > 0 else lo[0]
        a = math.log(coef[1]) if coef[1] > 0 else lo[1]
        return np.clip(np.array([e, a, al]), lo, hi)
    best = (np.inf, None)
    grid = np.geomspace(0.02, 2.5, 28)
    for al in grid:
        tN = np.exp(-al * U[:, 0])
        for be in grid:
            X = np.stack([np.ones_like(y), tN, np.exp(-be * U[:, 1])], axis=1)
            coef, res = optimize.nnls(X * inv[:, None], np.ones_like(y))
            if res < best[0]:
                best = (res, (coef, al, be))
    coef, al, be = best[1]
    logs = [math.log(c) if c > 0 else b for c, b in zip(coef, lo[:3])]
    return np.clip(np.array([*logs, al, be]), lo, hi)


# --------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------
def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    return x


@dataclass
class FitResult:
    """A fitted law: parameters, intervals, identifiability, residuals, warnings, outliers.

    ``params`` and ``intervals`` use the papers' names (see :mod:`apcscale.scaling.laws`).
    ``residuals`` are log residuals ``log(L_hat / L)`` aligned with the input rows
    (NaN for dropped rows). ``samples`` holds the bootstrap (or Laplace) draws of
    the natural parameters, one row per replicate, in ``law_obj.names`` order.
    """

    law: str
    formula: str
    variables: tuple[str, ...]
    params: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    identifiable: dict[str, bool]
    level: float
    stats: dict[str, float]
    warnings: list[str]
    outliers: list[Outlier]
    n_points: int
    n_groups: int
    interval_method: str
    residuals: np.ndarray = field(repr=False)
    samples: np.ndarray = field(repr=False)
    diagnostics: dict[str, Any] = field(default_factory=dict, repr=False)
    law_obj: Law = field(default=None, repr=False)
    theta: np.ndarray = field(default=None, repr=False)
    ref: np.ndarray = field(default=None, repr=False)
    theta_samples: np.ndarray = field(default=None, repr=False)
    fitted: np.ndarray = field(default=None, repr=False)  # fitted loss per input row (NaN for dropped rows)

    # -- prediction -----------------------------------------------------------------
    def _design(self, X: Sequence) -> tuple[np.ndarray, tuple[int, ...]]:
        if len(X) != len(self.variables):
            raise TypeError(
                f"{self.law} predicts from {len(self.variables)} variable(s) {self.variables}, got {len(X)}"
            )
        arrs = np.broadcast_arrays(*[np.asarray(x, dtype=float) for x in X])
        shape = arrs[0].shape
        cols = np.stack([a.ravel() for a in arrs], axis=1)
        return self.law_obj.design(cols, self.ref).U, shape

    def predict(self, *X) -> np.ndarray:
        """Predicted loss at the given covariates (broadcast), e.g. ``fit.predict(N, D)``."""
        U, shape = self._design(X)
        out = np.exp(self.law_obj.log_predict(self.theta[None, :], U)[0]).reshape(shape)
        return out if shape else float(out)

    def predict_interval(self, *X, level: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise interval of the fitted curve from the bootstrap draws (a confidence band)."""
        level = self.level if level is None else level
        U, shape = self._design(X)
        lp = self.law_obj.log_predict(self.theta_samples, U)
        lo, hi = np.quantile(lp, [(1 - level) / 2, (1 + level) / 2], axis=0)
        return np.exp(lo).reshape(shape), np.exp(hi).reshape(shape)

    # -- conveniences ---------------------------------------------------------------------
    @property
    def irreducible(self) -> float:
        """The irreducible loss (L_inf, E or L_final, whichever the law calls it)."""
        return self.params[self.law_obj.floor]

    @property
    def rmse(self) -> float:
        return self.stats["rmse_log"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary (non-finite numbers become strings such as "inf")."""
        return _jsonable(
            {
                "law": self.law,
                "formula": self.formula,
                "variables": list(self.variables),
                "params": self.params,
                "intervals": {k: list(v) for k, v in self.intervals.items()},
                "identifiable": self.identifiable,
                "level": self.level,
                "interval_method": self.interval_method,
                "stats": self.stats,
                "n_points": self.n_points,
                "n_groups": self.n_groups,
                "warnings": self.warnings,
                "outliers": [o._asdict() for o in self.outliers],
                "reference": dict(zip(self.variables, self.ref.tolist())),
                "diagnostics": self.diagnostics,
            }
        )

    def summary(self) -> str:
        """A few lines of text: formula, parameters with intervals, fit quality, warnings."""
        from .statements import format_fit

        return format_fit(self)


# --------------------------------------------------------------------------------------
# the fitting pipeline
# --------------------------------------------------------------------------------------
def _groups_codes(groups, mask: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    if groups is None:
        codes = np.arange(int(mask.sum()))
        return codes, len(codes)
    g = np.asarray(groups, dtype=object) if not isinstance(groups, np.ndarray) else groups
    if len(g) != n:
        raise FitError(f"groups: {len(g)} labels for {n} rows")
    _, codes = np.unique(np.asarray([str(v) for v in g[mask]]), return_inverse=True)
    return codes, int(codes.max()) + 1


def _bootstrap_weights(codes: np.ndarray, G: int, B: int, rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    draws = rng.integers(0, G, size=(B, G))
    counts = np.zeros((B, G))
    np.add.at(counts, (np.repeat(np.arange(B), G), draws.ravel()), 1.0)
    return counts[:, codes] * base[None, :]


def _sandwich_samples(
    law: Law,
    theta: np.ndarray,
    U: np.ndarray,
    logy: np.ndarray,
    w: np.ndarray,
    delta: float,
    lo: np.ndarray,
    hi: np.ndarray,
    rng: np.random.Generator,
    n_draws: int = 2000,
) -> np.ndarray:
    """Draws of theta from the robust (sandwich) normal approximation, clipped to the bounds."""
    lp, J = law.log_predict_jac(theta[None, :], U)
    r = _res(lp[0], logy)
    J = J[0] * np.broadcast_to(_act(lp[0], logy), r.shape).astype(float)[:, None]
    inside = (np.abs(r) <= delta).astype(float)
    _, psi = huber(r, delta)
    A = (J * (w * inside)[:, None]).T @ J
    Bm = (J * (w * psi * psi)[:, None]).T @ J
    n, P = J.shape
    Ainv = np.linalg.pinv(A)
    cov = Ainv @ Bm @ Ainv * n / max(n - P, 1)
    cov = 0.5 * (cov + cov.T)
    vals, vecs = np.linalg.eigh(cov)
    L = vecs * np.sqrt(np.clip(vals, 0, None))
    draws = theta[None, :] + rng.standard_normal((n_draws, P)) @ L.T
    return np.clip(draws, lo, hi)


def _expanded_levels(level: float, G: int, P: int) -> tuple[float, float]:
    """Quantile levels of the expanded percentile bootstrap (Hesterberg 2015).

    Percentile intervals are too narrow with few resampled units; widening the
    quantile levels by sqrt(G / (G - P)) t_{G-P} instead of z corrects most of it,
    and vanishes for many groups.
    """
    dof = max(G - P, 1)
    z = stats.norm.ppf((1 + level) / 2)
    zt = math.sqrt(G / dof) * stats.t.ppf((1 + level) / 2, dof)
    p = float(stats.norm.cdf(max(zt, z)))
    return 1 - p, p


# natural parameter -> internal indices it depends on (for "interval runs into a bound")
_DEPENDS = {
    "power_law": {0: [0], 1: [1, 2], 2: [2]},
    "learning_curve": {0: [0], 1: [1, 2], 2: [2]},
    "droppo": {0: [0], 1: [1, 3], 2: [2], 3: [3, 4], 4: [4]},
    "hoffmann": {0: [0], 1: [1, 3], 2: [2, 4], 3: [3], 4: [4]},
}


def fit_law(law: Law, X: np.ndarray, y, **options) -> FitResult:
    """Fit ``law`` to covariates X (n, n_vars) and losses y (see the module docstring).

    Options: groups, weights, bootstrap (200), level (0.9), seed (0), delta ("auto" or a
    number), labels, on_bad ("raise" or "drop"), n_starts, lo and hi (per-row intervals that
    hold the loss: see :func:`_fit_law`). Runs with ``BLAS_THREADS`` BLAS threads.
    """
    if BLAS_THREADS is None:
        return _fit_law(law, X, y, **options)
    with threadpool_limits(limits=BLAS_THREADS, user_api="blas"):
        return _fit_law(law, X, y, **options)


def _fit_law(
    law: Law,
    X: np.ndarray,
    y,
    *,
    groups=None,
    weights=None,
    bootstrap: int = 200,
    level: float = 0.9,
    seed: int | None = 0,
    delta: float | str = "auto",
    labels: Sequence | None = None,
    on_bad: OnBad = "raise",
    n_starts: int = N_STARTS,
    lo=None,
    hi=None,
) -> FitResult:
    """The fit itself (:func:`fit_law` runs it with BLAS_THREADS threads). See the module docstring.

    ``lo``/``hi`` (optional, per row): the loss of a row is only known to lie in [lo, hi] (an
    extrapolated or censored point: lo = 0 for an upper bound only); rows with lo == hi == y are
    exact. The fit pays nothing for a prediction inside a row's interval (:class:`Target`)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    t_start = time.perf_counter()
    y = as_float_array(y, "loss")
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    n = len(y)
    columns = {"loss": y}
    for j, v in enumerate(law.variables):
        columns[v] = as_float_array(X[:, j], v)
    if weights is not None:
        columns["weights"] = as_float_array(weights, "weights")
    mask, warns = check_columns(columns, loss="loss", n_params=law.n_params, labels=labels, on_bad=on_bad)
    rows = np.flatnonzero(mask)
    ym, Xm = y[mask], X[mask]
    w = columns["weights"][mask] if weights is not None else np.ones(len(ym))
    codes, G = _groups_codes(groups, mask, n)
    for j, v in enumerate(law.variables):
        distinct = np.unique(Xm[:, j]).size
        span = Xm[:, j].max() / Xm[:, j].min()
        if distinct < 3:
            warns.append(f"{v} takes only {distinct} distinct values: its exponent is barely constrained")
        if span < 10:
            warns.append(
                f"{v} spans only a factor {span:.3g} (less than one order of magnitude): exponents are poorly constrained"
            )

    design = law.design(Xm)
    U = design.U
    logy = np.log(ym)
    if lo is not None or hi is not None:
        lo_a = np.minimum(as_float_array(lo, "lo")[mask] if lo is not None else ym, ym)
        hi_a = np.maximum(as_float_array(hi, "hi")[mask] if hi is not None else ym, ym)
        with np.errstate(divide="ignore"):
            tgt = Target(logy, np.log(np.maximum(lo_a, 0.0)), np.log(hi_a))
    else:
        tgt = Target(logy)
    exact = tgt.exact
    lo, hi = law.bounds(logy)

    # 1. grid + variable projection
    grid = law.grid(logy, U)
    d0 = HOFFMANN_DELTA
    Fg = grid_objective(law, grid, U, tgt, w, d0)
    order = np.argsort(Fg)
    starts = [grid[i] for i in order[:n_starts]]
    floor_idx = np.flatnonzero(np.isclose(grid[:, law.floor_index], lo[law.floor_index]))
    if floor_idx.size:  # always try the no-floor basin too
        starts.append(grid[floor_idx[np.argmin(Fg[floor_idx])]])
    vp = varpro_start(law, U, ym, lo, hi)
    if vp is not None:
        starts.append(vp)

    # 2. L-BFGS-B from the starts (robust delta), then with the working delta
    fits = [lbfgs(law, s, U, tgt, w, d0, lo, hi) for s in starts]
    best = min(range(len(fits)), key=lambda i: fits[i][1])
    theta0 = fits[best][0]
    r0 = tgt.res(law.log_predict(theta0[None, :], U)[0])[exact]
    mad_sigma = 1.4826 * float(np.median(np.abs(r0 - np.median(r0))))
    if delta == "auto":
        dlt = max(1.345 * mad_sigma, 1e-6)
        delta_rule = "auto: 1.345 x the MAD scale of the delta = 1e-3 fit's residuals"
    else:
        delta_rule = "fixed"
        dlt = float(delta)
        if not dlt > 0:
            raise ValueError(f"delta must be > 0 or 'auto', got {delta!r}")
    cand = [lbfgs(law, f[0], U, tgt, w, dlt, lo, hi) for f in sorted(fits, key=lambda f: f[1])[:3]]
    theta, F = min(cand, key=lambda c: c[1])
    theta, Fb, _ = lm_batch(law, theta[None, :], U, tgt, w[None, :], dlt, lo, hi)
    theta, F = theta[0], float(Fb[0])

    lp = law.log_predict(theta[None, :], U)[0]
    r = tgt.res(lp)
    residuals = np.full(n, np.nan)
    residuals[rows] = r
    fitted = np.full(n, np.nan)
    fitted[rows] = np.exp(lp)

    # outliers (robust z of the residuals of exact points; an interval point has no residual inside it)
    r_exact = r[exact]
    med = float(np.median(r_exact)) if r_exact.size else 0.0
    scale = 1.4826 * float(np.median(np.abs(r_exact - med))) if r_exact.size else 0.0
    outliers: list[Outlier] = []
    if scale > 1e-12 and len(r_exact) - law.n_params >= 8:  # fewer residuals: their MAD is not a usable scale
        z = np.where(exact, (med - r) / scale, 0.0)  # robust z of log(observed / fitted): positive above the fit
        for k in np.flatnonzero(np.abs(z) > OUTLIER_Z):
            i = int(rows[k])
            name = labels[i] if labels is not None else i
            direction = "above" if r[k] < 0 else "below"  # residual = log(pred/obs)
            outliers.append(
                Outlier(
                    i,
                    f"row {name}: observed loss {ym[k]:.5g} is {abs(math.expm1(-r[k])) * 100:.1f}% "
                    f"{direction} the fit (robust z = {z[k]:+.1f})",
                    float(r[k]),
                    float(z[k]),
                )
            )
        if outliers:
            warns.append(
                f"{len(outliers)} outlier{'s' if len(outliers) > 1 else ''} flagged (rows "
                + ", ".join(str(labels[o.row] if labels is not None else o.row) for o in outliers)
                + ")"
            )

    # systematic structure left in the residuals (one covariate: order by it)
    if Xm.shape[1] == 1 and len(r) >= 10:
        rs = r[np.argsort(Xm[:, 0], kind="stable")] - r.mean()
        den = float(rs @ rs)
        lag1 = float((rs[1:] @ rs[:-1]) / den) if den > 0 else 0.0
        if lag1 > 0.6:
            warns.append(
                f"residuals are serially correlated along {law.variables[0]} (lag-1 r = {lag1:.2f}): the law "
                "misses a trend over this range, or the points are not independent (one run's curve); "
                "the intervals assume they are"
            )

    # profile test for the floor: does the pure power law fit as well?
    fi = law.floor_index
    pinned = law.fixed_floor(theta, logy)
    cands = [lbfgs(law, pinned, U, tgt, w, dlt, lo, hi, fixed={fi: lo[fi]})]
    if floor_idx.size:
        gstart = law.fixed_floor(grid[floor_idx[np.argmin(Fg[floor_idx])]], logy)
        cands.append(lbfgs(law, gstart, U, tgt, w, dlt, lo, hi, fixed={fi: lo[fi]}))
    F_nofloor = min(c[1] for c in cands)
    m = int(mask.sum())
    P = law.n_params
    sigma2 = max(2.0 * dlt * dlt * F * w.sum() / max(m - P, 1), 1e-300)
    deviance = 2.0 * dlt * dlt * w.sum() * max(F_nofloor - F, 0.0) / sigma2
    crit = float(stats.chi2.ppf(level, 1))

    # 3. intervals
    rng = np.random.default_rng(seed)
    diagnostics: dict[str, Any] = {
        "grid_size": int(len(grid)),
        "starts": len(starts),
        "delta": dlt,
        "delta_rule": delta_rule,
        "objective": F,
        "floor_deviance": deviance,
        "floor_critical": crit,
    }
    if vp is not None:
        lp_vp = law.log_predict(vp[None, :], U)[0]
        diagnostics["varpro_rmse_log"] = float(np.sqrt(np.mean((lp_vp - logy) ** 2)))
    diagnostics["time_fit_s"] = time.perf_counter() - t_start
    t_boot = time.perf_counter()
    if bootstrap and G >= 3:
        method = "bootstrap"
        Wb = _bootstrap_weights(codes, G, int(bootstrap), rng, w)
        tb, Fbs, conv = lm_batch(law, np.repeat(theta[None, :], len(Wb), axis=0), U, tgt, Wb, dlt, lo, hi)
        # another basin? compare with the whole grid under each replicate's weights
        Hg = grid_objective(law, grid, U, tgt, w, dlt, per_point=True)
        Fgrid = (Hg @ Wb.T) / Wb.sum(axis=1)[None, :]
        kbest = np.argmin(Fgrid, axis=0)
        worse = np.flatnonzero(Fgrid[kbest, np.arange(len(Wb))] < Fbs - 1e-9)
        if worse.size:
            t2, F2, c2 = lm_batch(law, grid[kbest[worse]], U, tgt, Wb[worse], dlt, lo, hi)
            better = F2 < Fbs[worse]
            tb[worse[better]], Fbs[worse[better]], conv[worse[better]] = t2[better], F2[better], c2[better]
        diagnostics.update(
            bootstrap=int(bootstrap), bootstrap_other_basin=int(worse.size), bootstrap_unconverged=int((~conv).sum())
        )
        theta_samples = tb
        if G < 10:
            warns.append(f"only {G} groups (runs) to resample: the bootstrap intervals are rough")
    else:
        method = "laplace"
        theta_samples = _sandwich_samples(law, theta, U, tgt, w, dlt, lo, hi, rng)
        if bootstrap and G < 3:
            warns.append(f"only {G} group(s): bootstrap impossible, intervals from the normal approximation")

    diagnostics["time_intervals_s"] = time.perf_counter() - t_boot
    nat = law.natural(theta[None, :], design.ref)[0]
    samples = law.natural(theta_samples, design.ref)
    qlo, qhi = _expanded_levels(level, G, law.n_params) if method == "bootstrap" else ((1 - level) / 2, (1 + level) / 2)
    params, intervals, ident = {}, {}, {}
    span = hi - lo
    at_lo = theta_samples <= lo + 1e-6 * span
    at_hi = theta_samples >= hi - 1e-6 * span
    for j, name in enumerate(law.names):
        s = np.clip(samples[:, j], -1e300, 1e300)
        s = s[np.isfinite(s)]
        params[name] = float(nat[j])
        if s.size:
            a, b = np.quantile(s, [qlo, qhi])
            a, b = min(a, nat[j]), max(b, nat[j])
        else:
            a, b = -np.inf, np.inf
        deps = _DEPENDS[law.name][j]
        touches = bool((at_lo[:, deps].any(axis=1).mean() >= qlo) or (at_hi[:, deps].any(axis=1).mean() >= qlo))
        ok = not touches and np.isfinite(a) and np.isfinite(b)
        if j == law.floor_index:
            floor_flat = deviance < crit
            if touches or floor_flat:
                ok = False
                a = 0.0
                why = (
                    f"a pure power law fits as well (profile deviance {deviance:.2f} < {crit:.2f})"
                    if floor_flat
                    else "its bootstrap interval reaches zero"
                )
                warns.append(
                    f"{name} is not identifiable: the data show no bend ({why}); "
                    f"it lies somewhere in [0, {b:.4g}], not at {nat[j]:.4g}"
                )
        elif touches:
            warns.append(f"{name} is not identifiable: its interval runs into the bound of the fit")
        intervals[name] = (float(a), float(b))
        ident[name] = bool(ok)

    re_ = r[exact] if exact.any() else r
    stats_ = {
        "rmse_log": float(np.sqrt(np.mean(re_ * re_))),
        "mae_log": float(np.mean(np.abs(re_))),
        "max_abs_log": float(np.max(np.abs(r))),
        "mad_sigma_log": float(scale),
        "huber_delta": float(dlt),
        "objective": float(F),
        "r2_log": float(1 - np.sum(re_ * re_) / max(np.sum((logy[exact] - logy[exact].mean()) ** 2), 1e-300))
        if exact.sum() > 1
        else math.nan,
        "n_exact": int(exact.sum()),
        "n_interval": int((~exact).sum()),
    }
    return FitResult(
        law=law.name,
        formula=law.formula,
        variables=tuple(law.variables),
        params=params,
        intervals=intervals,
        identifiable=ident,
        level=level,
        stats=stats_,
        warnings=warns,
        outliers=outliers,
        n_points=int(mask.sum()),
        n_groups=G,
        interval_method=method,
        residuals=residuals,
        samples=samples,
        diagnostics=diagnostics,
        law_obj=law,
        theta=theta,
        ref=design.ref,
        theta_samples=theta_samples,
        fitted=fitted,
    )


# --------------------------------------------------------------------------------------
# public entry points
# --------------------------------------------------------------------------------------
def fit_power_law(
    x, y, *, groups=None, bootstrap: int = 200, level: float = 0.9, seed: int | None = 0, variable: str = "x", **opts
) -> FitResult:
    """Fit L(x) = L_inf + (x_c / x)^alpha (x = N, D or C). ``opts`` go to :func:`fit_law`
    (weights, delta, labels, on_bad)."""
    return fit_law(
        PowerLaw(variable),
        as_float_array(x, variable),
        y,
        groups=groups,
        bootstrap=bootstrap,
        level=level,
        seed=seed,
        **opts,
    )


def fit_learning_curve(
    S, y, *, groups=None, bootstrap: int = 200, level: float = 0.9, seed: int | None = 0, variable: str = "S", **opts
) -> FitResult:
    """Fit one run's curve L(S) = L_final + (S_c / S)^alpha_S (S in steps, frames or FLOPs).

    Points of one curve are serially correlated; pass ``groups`` (e.g. blocks of
    consecutive evaluations) to resample blocks rather than points.
    """
    return fit_law(
        LearningCurve(variable),
        as_float_array(S, variable),
        y,
        groups=groups,
        bootstrap=bootstrap,
        level=level,
        seed=seed,
        **opts,
    )


def fit_joint(
    N, D, y, *, law: str = "droppo", groups=None, bootstrap: int = 200, level: float = 0.9, seed: int | None = 0, **opts
) -> FitResult:
    """Fit L(N, D): ``law="droppo"`` (Kaplan's form with an irreducible loss, Droppo & Elibol)
    or ``law="hoffmann"`` (E + A/N^alpha + B/D^beta)."""
    laws = {"droppo": Droppo, "hoffmann": Hoffmann}
    if law not in laws:
        raise ValueError(f"law must be one of {', '.join(laws)}, not {law!r}")
    N = as_float_array(N, "N")
    D = as_float_array(D, "D")
    if len(N) != len(D):
        raise FitError(f"N and D have different lengths ({len(N)} and {len(D)})")
    return fit_law(
        laws[law](), np.stack([N, D], axis=1), y, groups=groups, bootstrap=bootstrap, level=level, seed=seed, **opts
    )
