"""The compute-efficient frontier and compute-optimal allocation.

The frontier is the lower envelope, over all runs, of dev loss against training
compute (Kaplan et al. 2020; Droppo & Elibol 2021): for a compute budget C, the
best loss any run reached having spent at most C. A small model is on it early
and leaves it; a larger one joins it later. :class:`Frontier` keeps

* ``envelope``: the envelope points, sorted by compute: every evaluation that
  beat all evaluations of all runs at lower or equal compute (a staircase);
* ``segments``: which run is on the envelope over which compute range;
* ``envelope_at(C)``: the envelope value at any compute, as a step function
  (best loss reached with at most C; ``inf`` below the first evaluation, where
  nothing has been reached) or interpolated (minimum over runs of each run's
  curve interpolated log-log inside its own compute range; ``NaN`` where no run
  covers C);
* ``fit``: the law L(C) = L_inf + (C_c / C)^alpha_C fitted to the envelope
  points (thinned to at most ``points_per_decade`` per decade so that densely
  evaluated late stretches do not dominate; with model sizes known, leaving out
  the stretches formed by the smallest or the largest model), bootstrapping runs.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .fitting import FitResult, fit_power_law
from .validate import FitError


@dataclass(frozen=True)
class Segment:
    """Run ``run_id`` is on the envelope from ``C_start`` until ``C_end`` (where the next run takes over,
    or its own last envelope point for the final segment)."""

    run_id: Hashable
    C_start: float
    C_end: float
    n_points: int


class Frontier:
    """Lower envelope of loss against compute over many runs (see the module docstring)."""

    def __init__(
        self,
        curves: Mapping[Hashable, tuple[Any, Any]],
        *,
        points_per_decade: int = 10,
        sizes: Mapping[Hashable, float] | None = None,
    ):
        self.curves: dict[Hashable, tuple[np.ndarray, np.ndarray]] = {}
        dropped: list[str] = []
        for run, (C, L) in curves.items():
            C = np.asarray(C, dtype=float).ravel()
            L = np.asarray(L, dtype=float).ravel()
            if C.shape != L.shape:
                raise FitError(f"run {run!r}: compute and loss have different lengths ({C.size} and {L.size})")
            ok = np.isfinite(C) & np.isfinite(L) & (C > 0) & (L > 0)
            if (~ok).any():
                dropped.append(
                    f"run {run!r}: {int((~ok).sum())} point(s) with non-finite or non-positive compute/loss ignored"
                )
            o = np.argsort(C[ok], kind="stable")
            if o.size:
                self.curves[run] = (C[ok][o], L[ok][o])
        if not self.curves:
            raise FitError("no run has a usable (compute > 0, finite loss > 0) point")
        self.warnings = dropped
        self.points_per_decade = points_per_decade
        self.sizes = dict(sizes) if sizes else None

        runs = list(self.curves)
        allC = np.concatenate([self.curves[r][0] for r in runs])
        allL = np.concatenate([self.curves[r][1] for r in runs])
        allR = np.concatenate([np.full(self.curves[r][0].size, i) for i, r in enumerate(runs)])
        order = np.lexsort((allL, allC))  # by compute, ties: lowest loss first
        C, L, R = allC[order], allL[order], allR[order]
        prev_best = np.concatenate([[np.inf], np.minimum.accumulate(L)[:-1]])
        on = L < prev_best
        self._C, self._L = C[on], L[on]
        self._R = [runs[i] for i in R[on]]
        self._best = np.minimum.accumulate(L)
        self._allC = C
        self._fit: FitResult | None = None

    # -- the envelope ---------------------------------------------------------------------
    @property
    def envelope(self) -> list[tuple[float, float, Hashable]]:
        """Envelope points (C, loss, run_id), sorted by compute."""
        return [(float(c), float(l), r) for c, l, r in zip(self._C, self._L, self._R)]

    @property
    def runs_on_envelope(self) -> list[Hashable]:
        seen: dict[Hashable, None] = {}
        for r in self._R:
            seen.setdefault(r, None)
        return list(seen)

    @property
    def segments(self) -> list[Segment]:
        segs: list[Segment] = []
        start = 0
        for i in range(1, len(self._R) + 1):
            if i == len(self._R) or self._R[i] != self._R[start]:
                end = float(self._C[i]) if i < len(self._R) else float(self._C[i - 1])
                segs.append(Segment(self._R[start], float(self._C[start]), end, i - start))
                start = i
        return segs

    def envelope_at(self, C, kind: str = "step") -> np.ndarray | float:
        """Envelope loss at compute C (scalar or array).

        ``kind="step"``: best loss reached by any run with at most C compute
        (non-increasing; ``inf`` for C below the first evaluation).
        ``kind="interp"``: minimum over runs of each run's curve interpolated
        linearly in log-log within that run's own compute range (``NaN`` where
        no run's range covers C).
        """
        Cq = np.asarray(C, dtype=float)
        flat = np.atleast_1d(Cq).ravel()
        if kind == "step":
            idx = np.searchsorted(self._C, flat, side="right") - 1
            out = np.where(idx >= 0, self._L[np.maximum(idx, 0)], np.inf)
        elif kind == "interp":
            out = np.full(flat.shape, np.nan)
            lq = np.log(np.where(flat > 0, flat, np.nan))
            for c, l in self.curves.values():
                if c.size == 1:
                    v = np.where(flat == c[0], l[0], np.nan)
                else:
                    inside = (flat >= c[0]) & (flat <= c[-1])
                    v = np.where(inside, np.exp(np.interp(lq, np.log(c), np.log(l))), np.nan)
                out = np.fmin(out, v)
        else:
            raise ValueError(f"kind must be 'step' or 'interp', not {kind!r}")
        return float(out[0]) if Cq.ndim == 0 else out.reshape(Cq.shape)

    def gap(self, run_id: Hashable, C=None) -> np.ndarray:
        """log(loss / envelope) of one run at its own evaluations (0 where it is on the envelope)."""
        c, l = self.curves[run_id]
        if C is not None:
            l = np.exp(np.interp(np.log(np.asarray(C, dtype=float)), np.log(c), np.log(l)))
            c = np.asarray(C, dtype=float)
        return np.log(l / self.envelope_at(c))

    # -- the law ---------------------------------------------------------------------------
    def fit_points(
        self, *, trim_extremes: bool = True, C_min: float | None = None, C_max: float | None = None
    ) -> tuple[np.ndarray, np.ndarray, list[Hashable]]:
        """Envelope points used for the fit: the lowest point in each 1/points_per_decade slice of log C.

        With model ``sizes`` known and ``trim_extremes``, points where the
        smallest or the largest model is on the envelope are left out: there a
        smaller (or larger) model than any trained would likely do better, so
        the envelope is only an upper bound of the frontier and bends the fit.
        """
        sel = np.ones(self._C.size, dtype=bool)
        if C_min is not None:
            sel &= self._C >= C_min
        if C_max is not None:
            sel &= self._C <= C_max
        if trim_extremes and self.sizes:
            sz = np.array([self.sizes.get(r, np.nan) for r in self._R], dtype=float)
            known = np.array([v for v in self.sizes.values() if v is not None and np.isfinite(v)])
            if known.size and np.unique(known).size >= 3:
                inner = (sz > known.min()) & (sz < known.max())
                if (sel & inner).sum() >= 5:
                    sel &= inner
        idx_all = np.flatnonzero(sel)
        if not self.points_per_decade:
            keep = idx_all
        else:
            bins = np.floor(np.log10(self._C[idx_all]) * self.points_per_decade)
            keep = np.array(
                sorted(idx_all[bins == b][np.argmin(self._L[idx_all][bins == b])] for b in np.unique(bins)), dtype=int
            )
        return self._C[keep], self._L[keep], [self._R[i] for i in keep]

    def fit_law(
        self,
        *,
        bootstrap: int = 200,
        level: float = 0.9,
        seed: int | None = 0,
        trim_extremes: bool = True,
        C_min: float | None = None,
        C_max: float | None = None,
        **opts,
    ) -> FitResult:
        """Fit L(C) = L_inf + (C_c/C)^alpha_C to the envelope (see :meth:`fit_points`), resampling runs."""
        C, L, R = self.fit_points(trim_extremes=trim_extremes, C_min=C_min, C_max=C_max)
        if C.size < 5:
            raise FitError(f"the envelope has only {C.size} (thinned) points: too few to fit L(C)")
        groups = [str(r) for r in R]
        fit = fit_power_law(C, L, groups=groups, bootstrap=bootstrap, level=level, seed=seed, variable="C", **opts)
        fit.warnings.extend(self.warnings)
        fit.diagnostics["fit_range"] = (float(C.min()), float(C.max()))
        fit.diagnostics["fit_runs"] = len(set(groups))
        self._fit = fit
        return fit

    @property
    def fit(self) -> FitResult:
        """The L(C) fit (computed on first use with the defaults of :meth:`fit_law`)."""
        if self._fit is None:
            self.fit_law()
        return self._fit

    def to_dict(self) -> dict[str, Any]:
        from .fitting import _jsonable

        return _jsonable(
            {
                "envelope": [{"C": c, "loss": l, "run": str(r)} for c, l, r in self.envelope],
                "segments": [
                    {"run": str(s.run_id), "C_start": s.C_start, "C_end": s.C_end, "n_points": s.n_points}
                    for s in self.segments
                ],
                "fit": self._fit.to_dict() if self._fit is not None else None,
                "warnings": self.warnings,
            }
        )


def compute_frontier(
    curves: Mapping[Hashable, tuple[Any, Any]],
    *,
    points_per_decade: int = 10,
    sizes: Mapping[Hashable, float] | None = None,
) -> Frontier:
    """The lower envelope of many runs' (compute, dev loss) curves: ``{run_id: (C, loss)}``.

    ``sizes`` (``{run_id: N}``, optional) lets the L(C) fit leave out the stretches
    where the smallest or largest model forms the envelope."""
    return Frontier(curves, points_per_decade=points_per_decade, sizes=sizes)


# --------------------------------------------------------------------------------------
# compute-optimal allocation
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainingCost:
    """Training compute of a model of N parameters trained on D frames (or tokens): C = f(N) x passes x D.

    f(N), the training FLOPs per frame, is ``k`` N (k = 6: forward and backward, Kaplan et al.) unless
    measured values are given (``sizes`` and ``flops_per_frame``, e.g. a sweep's own counts, which include
    the attention term and the layers outside N): then f is interpolated log-log between them and extended
    beyond them by the power law fitted to them. ``passes`` is how many times the data are seen.
    """

    k: float = 6.0
    passes: float = 1.0
    sizes: tuple[float, ...] = ()
    flops_per_frame: tuple[float, ...] = ()
    source: str = ""

    def __post_init__(self):
        if not (self.k > 0 and self.passes > 0):
            raise ValueError(f"k and passes must be > 0, got {self.k} and {self.passes}")
        if len(self.sizes) != len(self.flops_per_frame):
            raise ValueError("sizes and flops_per_frame have different lengths")

    @property
    def measured(self) -> bool:
        return len(self.sizes) > 0

    def _power(self) -> tuple[float, float]:
        """(a, b) of f(N) ~ a N^b fitted to the measured values (b = 1 with one size)."""
        lN, lf = np.log(np.asarray(self.sizes, float)), np.log(np.asarray(self.flops_per_frame, float))
        if np.unique(lN).size < 2:
            return float(np.exp(np.mean(lf - lN))), 1.0
        b, la = np.polyfit(lN, lf, 1)
        return float(np.exp(la)), float(b)

    def per_frame(self, N) -> np.ndarray:
        """Training FLOPs per frame of a model of N parameters."""
        N = np.asarray(N, dtype=float)
        if not self.measured:
            return self.k * N
        order = np.argsort(self.sizes)
        xs, ys = np.log(np.asarray(self.sizes, float)[order]), np.log(np.asarray(self.flops_per_frame, float)[order])
        xs, idx = np.unique(xs, return_index=True)
        ys = ys[idx]
        a, b = self._power()
        lN = np.log(N)
        inside = np.exp(np.interp(lN, xs, ys)) if xs.size > 1 else a * N**b
        return np.where((lN < xs[0]) | (lN > xs[-1]), a * N**b, inside)

    def __call__(self, N, D) -> np.ndarray:
        return self.per_frame(N) * self.passes * np.asarray(D, dtype=float)

    def describe(self) -> str:
        reps = "one pass over the data" if self.passes == 1 else f"{self.passes:.3g} passes over the data"
        if not self.measured:
            return f"C = {self.k:g} N D x passes ({reps})"
        a, b = self._power()
        src = f" {self.source}" if self.source else ""
        return (
            f"C = f(N) x passes x D with f the measured FLOPs per frame{src} (f ~ {a:.3g} N^{b:.3f} over N = "
            f"{min(self.sizes):.3g}..{max(self.sizes):.3g}); {reps}"
        )


def compute_optimal(
    joint_fit: FitResult, C, flops_per_param_frame: float = 6.0, *, cost: TrainingCost | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Model size N and data D minimising the fitted L(N, D) at compute C = k N D (k = 6 FLOPs per parameter
    per frame by default, one pass over the data), or at C = ``cost``(N, D) when a :class:`TrainingCost` is
    given (measured FLOPs per frame, several passes).

    Closed forms (C = k' N D, k' = k x passes): for Hoffmann's law N_opt = G (C/k')^(beta/(alpha+beta)) with
    G = (alpha A / (beta B))^(1/(alpha+beta)); for Droppo's law, with
    p = alpha_N/alpha_D, N_opt = (p N_c^p C / (k' D_c))^(1/(p+1)). D_opt = C / (k' N_opt). With measured
    FLOPs per frame, N_opt is found by direct minimisation along the cost curve.
    """
    Cq = np.asarray(C, dtype=float)
    if np.any(~(Cq > 0)):
        raise ValueError("compute must be > 0")
    if cost is not None and cost.measured:
        return _optimal_along(joint_fit, Cq, cost)
    k = float(flops_per_param_frame) if cost is None else cost.k * cost.passes
    p = joint_fit.params
    if joint_fit.law == "hoffmann":
        a, b = p["alpha"], p["beta"]
        G = (a * p["A"] / (b * p["B"])) ** (1.0 / (a + b))
        N = G * (Cq / k) ** (b / (a + b))
    elif joint_fit.law == "droppo":
        q = p["alpha_N"] / p["alpha_D"]
        logN = (math.log(q) + q * math.log(p["N_c"]) + np.log(Cq) - math.log(k * p["D_c"])) / (q + 1.0)
        N = np.exp(logN)
    else:
        raise ValueError(f"compute_optimal needs a joint L(N, D) fit, not {joint_fit.law!r}")
    D = Cq / (k * N)
    return N, D


def _optimal_along(
    joint_fit: FitResult, C: np.ndarray, cost: TrainingCost, n_grid: int = 801
) -> tuple[np.ndarray, np.ndarray]:
    """argmin over N of L(N, D) with D = C / (f(N) passes): a log grid of N, then golden-section refinement."""
    flat = np.atleast_1d(C).ravel()
    outN = np.empty_like(flat)
    lo_all = math.log(min(cost.sizes)) - 12.0
    hi_all = math.log(max(cost.sizes)) + 12.0

    def loss(lN):
        N = np.exp(lN)
        return joint_fit.predict(N, c / (cost.per_frame(N) * cost.passes))

    for i, c in enumerate(flat):
        lN = np.linspace(lo_all, hi_all, n_grid)
        j = int(np.argmin(loss(lN)))
        lo, hi = lN[max(j - 1, 0)], lN[min(j + 1, n_grid - 1)]
        for _ in range(60):
            m1, m2 = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
            lo, hi = (lo, m2) if loss(np.array([m1]))[0] < loss(np.array([m2]))[0] else (m1, hi)
        outN[i] = math.exp(0.5 * (lo + hi))
    D = flat / (cost.per_frame(outN) * cost.passes)
    return outN.reshape(np.shape(C)), D.reshape(np.shape(C))


def compute_optimal_numeric(
    joint_fit: FitResult, C, flops_per_param_frame: float = 6.0, n_grid: int = 2001
) -> tuple[np.ndarray, np.ndarray]:
    """The same by direct minimisation over a log grid of N (a cross-check of the closed forms)."""
    Cq = np.atleast_1d(np.asarray(C, dtype=float))
    k = float(flops_per_param_frame)
    outN = np.empty_like(Cq)
    for i, c in enumerate(Cq):
        lN = np.linspace(math.log(c / k) / 2 - 25, math.log(c / k) / 2 + 25, n_grid)
        N = np.exp(lN)
        L = joint_fit.predict(N, c / (k * N))
        j = int(np.argmin(L))
        lo, hi = lN[max(j - 1, 0)], lN[min(j + 1, n_grid - 1)]
        for _ in range(60):  # golden-section refinement
            m1, m2 = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
            f1 = joint_fit.predict(math.exp(m1), c / (k * math.exp(m1)))
            f2 = joint_fit.predict(math.exp(m2), c / (k * math.exp(m2)))
            lo, hi = (lo, m2) if f1 < f2 else (m1, hi)
        outN[i] = math.exp(0.5 * (lo + hi))
    return outN, Cq / (k * outN)
