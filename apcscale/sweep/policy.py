"""Frontier pruning: learning curves in, stop/continue decisions out (no Ray, no Lightning).

A scaling study wants every run's curve *where it lies on the lower envelope*
of dev loss against training compute (docs/sweep.md, "Pruning: the frontier,
not the best run"). The envelope seen by run r at compute C is

    E_r(C) = the best dev loss any *other* run has reached with <= C compute.

It is a non-increasing step function, and it can only move down as more
results arrive. A run is stopped only when, after `min_fraction` of its
planned compute and with at least `min_points` evaluations, the *lower bound*
of its extrapolated curve (the best loss it can be expected to have reached,
at confidence `level`) stays above E_r over the whole rest of its budget,
[C_now, C_end]. Because E_r only ever moves down, a stop stays right when more
runs report later; a "continue" is simply revisited at the next evaluation.

A run that is past its best (its last evaluations all clearly above its
minimum: it overfits a small training subset) cannot be extrapolated by a
power law; what it can still reach is taken to be its best so far.

What is never a reason to stop: being behind other runs at equal steps or
equal compute *today*. A large model is above the envelope early and joins it
later; its extrapolation says so, and it is kept.

Learning-rate cooldown. Under a warmup-stable-decay schedule the loss drops
in the final cooldown, a drop that a power law fitted to the stable phase
cannot see. Over the cooldown part of a run's budget the lower bound is
therefore lowered by up to `cooldown_gain` (relative), ramping linearly to the
full gain at the end; the gain used is the larger of the configured one and
the largest bonus measured on the sweep's own finished runs: how far below
the extrapolation of its stable phase (the points before its cooldown) a run
actually ended. For a cosine schedule the whole run is its cooldown; a
constant schedule has none.

Calibration on the sweep's own runs. The extrapolation's band is calibrated
on synthetic curves; the real curves of one study may be more (or less)
predictable. Every run that reaches the end of its budget is therefore
backtested: from each prefix a decision could have been taken on (past
`min_fraction`, not past its best), its curve is extrapolated to its end as a
decision would, and the score

    u = log(mean x cooldown allowance / best at the end) / log(mean / lo)

is the band scale that would just have kept its real end above the bound
(u = 1: the model band's lower edge; u < 1: it ended higher than the band
allowed for; u > 1: lower). Once `calibrate_min` finished runs have scores
(kept apart by the kind of extrapolation, trusted or "no bend", and by where
the cooldown starts), a decision at fraction f of its budget uses the
split-conformal quantile of their scores at f: the ceil((n + 1)(1 - a))-th
smallest of n, a = (1 - level) / 2, so that the lower bound
mean x (lo / mean)^u_hat (then the cooldown allowance) on the run's best loss
at its end holds, for a run exchangeable with the finished ones, with
probability at least 1 - a. u_hat is never below `calibrate_floor`: the runs
that finish first are the cheap ones, and the large runs that decide later are
not quite exchangeable with them (they keep improving for longer). Until
enough runs have finished, the model band is used as it is.

Data-limited twins. The training subsets of a study are nested (each holds
every smaller one), so a run on a subset has a *twin* on every larger subset:
the same model and recipe, the same seed, on a strict superset of its data. At
equal steps more fresh data does not make the same model worse in expectation
(a subset is only repeated sooner), so a run stays at or above its larger twin
for the rest of its budget and can only reach the envelope where it ties it.
Once that is confirmed on its own curve (`twin_points` evaluations in a row at
which its best so far sits more than `twin_tol` above the twin's best with no
more compute; the twin's best is taken at its own evaluations, so a twin that
lags makes the test stricter, never looser), the run is stopped as dominated.
The tolerance is there because real curves are noisy at a constant learning
rate: on FSDD a run on a subset sat 1.8% (another 2.4%) behind its twin at two
evaluations in a row and still got level with it later, and runs on a quarter
of the data were ahead of their full-data twins by 1-2% at the end. So the
tolerance used is the larger of `twin_tol` and the largest such confirmed gap
that a finished run of the sweep later closed (`twin_reversals`): noisier
curves raise it by themselves. This test needs no extrapolation, so it applies
from `twin_min_fraction` of a run's budget (10%), before the `min_fraction`
that extrapolations wait for: a run on 8 seconds of speech that has stopped
improving is not kept to a quarter of its budget. `twins: false` switches this
off.

Every call of `decide` returns a `Decision` carrying the numbers it was taken
on (fraction of budget, best loss so far, envelope now and at the end,
predicted loss at the end with its band, the smallest gap between the lower
bound and the envelope and where it occurs), so a log of decisions can be read
and audited, and `apcscale.sweep.replay` can re-run the policy over the curves
of a finished sweep.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from apcscale.utils.schema import check

Action = Literal["continue", "stop"]


@dataclass
class PolicyConfig:
    """Knobs of the frontier policy (the `pruning:` section of a sweep recipe).

    min_fraction: no run is stopped before it has spent this fraction of its planned compute.
    min_points: evaluations (after the untrained start) needed before its curve is extrapolated
        (the extrapolation itself asks for 6).
    level: confidence level of the extrapolation band; its lower edge is what must stay above
        the envelope (0.8: the 10% lower quantile of a two-sided 80% band).
    margin: relative safety margin: stop only if lower bound > envelope x (1 + margin).
    grid: compute points (log-spaced over the rest of the budget, plus every step of the
        envelope there) at which the lower bound is compared with the envelope.
    cooldown_gain: the relative loss drop a run's learning-rate cooldown may bring beyond the
        trend of its stable phase (see the module notes); finished runs raise it to the largest
        bonus they show.
    overfit_points, overfit_tol: a run whose last `overfit_points` evaluations all sit more than
        `overfit_tol` (relative) above its best so far is past its best (overfitting its data):
        its lower bound is its best so far (less the cooldown gain) instead of an extrapolation,
        which a power law cannot give for a rising curve. 0 points switches this off.
    envelope: "arch": a run is compared with the runs of its own group (its architecture), so
        that each architecture's frontier is measured; "all": with every run (only the overall
        frontier is measured: a whole architecture may be pruned where another is better).
    calibrate: scale the extrapolation band by the split-conformal quantile of the scores of the
        sweep's finished runs (see the module notes); off: the model band as it is.
    calibrate_min: finished runs (of the same kind) needed before their calibration is used; the
        conformal quantile itself needs at least 2 / (1 - level) - 1 of them.
    calibrate_floor: the calibrated band is never narrower than this power of the model band
        (u_hat >= floor). The runs that finish first are the cheap ones; the large runs, where the
        compute is, can improve for longer than they did (seen on FSDD: a floor of 0 stopped the
        largest Transformer, which ended 0.8% below the envelope; 0.3 stopped nothing wrongly).
    twins: stop a run once it is confirmed behind one of its larger twins (see the module notes):
        a run of the same recipe on a strict superset of its data.
    twin_tol, twin_points: confirmed = its best so far above the twin's best at no more compute by
        more than `twin_tol` (relative; raised by what finished runs show) at each of its last
        `twin_points` evaluations.
    twin_min_fraction: the fraction of its budget from which a run may be stopped as dominated by a
        twin (the test needs no curve fit, so it may come before `min_fraction`); the reversals that
        raise the tolerance are measured from there too.
    """

    min_fraction: float = 0.25
    min_points: int = 6
    level: float = 0.8
    margin: float = 0.0
    grid: int = 24
    cooldown_gain: float = 0.02
    overfit_points: int = 2
    overfit_tol: float = 0.01
    envelope: Literal["arch", "all"] = "arch"
    calibrate: bool = True
    calibrate_min: int = 10
    calibrate_floor: float = 0.3
    twins: bool = True
    twin_tol: float = 0.03
    twin_points: int = 2
    twin_min_fraction: float = 0.1

    def validate(self) -> None:
        check(0.0 < self.min_fraction < 1.0, "min_fraction", f"must be in (0, 1), got {self.min_fraction}")
        check(self.min_points >= 3, "min_points", f"must be at least 3 (a curve fit needs them), got {self.min_points}")
        check(0.0 < self.level < 1.0, "level", f"must be in (0, 1), got {self.level}")
        check(self.margin >= 0.0, "margin", f"must be >= 0, got {self.margin}")
        check(self.grid >= 2, "grid", f"must be at least 2, got {self.grid}")
        check(0.0 <= self.cooldown_gain < 1.0, "cooldown_gain", f"must be in [0, 1), got {self.cooldown_gain}")
        check(self.overfit_points >= 0, "overfit_points", f"must be >= 0, got {self.overfit_points}")
        check(self.overfit_tol >= 0, "overfit_tol", f"must be >= 0, got {self.overfit_tol}")
        check(self.calibrate_min >= 1, "calibrate_min", f"must be positive, got {self.calibrate_min}")
        check(self.twin_tol >= 0, "twin_tol", f"must be >= 0, got {self.twin_tol}")
        check(self.twin_points >= 1, "twin_points", f"must be at least 1, got {self.twin_points}")
        check(
            0.0 < self.twin_min_fraction < 1.0, "twin_min_fraction", f"must be in (0, 1), got {self.twin_min_fraction}"
        )
        check(0.0 <= self.calibrate_floor <= 1.0, "calibrate_floor", f"must be in [0, 1], got {self.calibrate_floor}")

    def earliest_stop(self, has_twins: bool) -> float:
        """The fraction of its budget before which a run is never stopped: `min_fraction`, or
        `twin_min_fraction` if that is sooner and the twin rule applies to it (it has twins)."""
        return min(self.min_fraction, self.twin_min_fraction) if self.twins and has_twins else self.min_fraction

    @property
    def tail(self) -> float:
        """a: the probability mass below the band's lower edge."""
        return (1.0 - self.level) / 2.0


@dataclass
class Band:
    """An extrapolated curve at target compute values: mean and a band [lo, hi]."""

    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    flag: str | None = None  # set when the fit is not to be trusted (the policy then never stops)


#: a finished run's score counts for a decision at fraction f if it was taken at a prefix within this
#: factor of f (runs with the same evaluation settings are evaluated at the same fractions)
SCORE_SPAN = 1.3

#: flags of the extrapolation under which its *lower* bound is still safe to act on: without a
#: visible bend the band's lower edge is the pure power law (no floor), the most optimistic case
TRUSTED_LOWER_BOUND = ("no_bend",)

Extrapolator = Callable[[np.ndarray, np.ndarray, np.ndarray, float], Band]


@dataclass
class Decision:
    run_id: str
    action: Action
    reason: str
    compute: float = math.nan  # C now
    planned: float = math.nan  # C at the end of the run's budget
    fraction: float = math.nan
    loss: float = math.nan  # latest dev loss
    best: float = math.nan  # best dev loss so far
    points: int = 0
    envelope_now: float = math.nan  # E(C now), over the other runs
    envelope_end: float = math.nan  # E(C end) as known now (it can only get lower)
    cooldown_gain: float = 0.0  # relative drop allowed for the LR cooldown at the end
    band_scale: float = 1.0  # u_hat: 1 = the model band; else calibrated on finished runs ...
    calibrated_on: int = 0  # ... of which this many had scores
    predicted_end: float = math.nan  # extrapolated best loss at C end ...
    predicted_lo: float = math.nan  # ... and its band
    predicted_hi: float = math.nan
    bound_end: float = math.nan  # the lower bound at the end after the cooldown allowance
    min_gap: float = math.nan  # min over [C now, C end] of lower bound - envelope x (1 + margin)
    gap_at: float = math.nan  # the compute where that minimum occurs
    twin: str | None = None  # a stop as dominated: the larger twin it is behind ...
    twin_gap: float = math.nan  # ... and by how much at least (relative, over the confirming evaluations)
    twin_tol: float = math.nan  # the tolerance that gap had to beat
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Decision:
        known = {f for f in cls.__dataclass_fields__}
        return cls(
            **{
                k: (math.nan if v is None and k not in ("run_id", "action", "reason", "twin") else v)
                for k, v in data.items()
                if k in known
            }
        )


class Envelope:
    """E(C) = min loss over points with compute <= C: a non-increasing step function."""

    def __init__(self, compute: np.ndarray, loss: np.ndarray):
        order = np.argsort(compute, kind="stable")
        c, l = np.asarray(compute, float)[order], np.asarray(loss, float)[order]
        best = np.minimum.accumulate(l) if len(l) else l
        # keep only the steps (where the running minimum strictly improves)
        keep = np.ones(len(best), bool)
        keep[1:] = best[1:] < best[:-1]
        self.steps_c, self.steps_l = c[keep], best[keep]

    def __call__(self, c: np.ndarray | float) -> np.ndarray:
        c = np.atleast_1d(np.asarray(c, float))
        idx = np.searchsorted(self.steps_c, c, side="right") - 1
        out = np.full(c.shape, np.inf)
        ok = idx >= 0
        out[ok] = self.steps_l[idx[ok]]
        return out

    @property
    def empty(self) -> bool:
        return len(self.steps_c) == 0

    def breakpoints(self, lo: float, hi: float) -> np.ndarray:
        """Compute values in (lo, hi] where the envelope steps down."""
        return self.steps_c[(self.steps_c > lo) & (self.steps_c <= hi)]


def default_extrapolator(x: np.ndarray, y: np.ndarray, targets: np.ndarray, level: float) -> Band:
    """The fitting package's learning-curve extrapolation (power law + constant, with a band)."""
    try:
        from apcscale.scaling import extrapolate_curve
    except ImportError:  # older layout of the fitting package
        from apcscale.scaling.extrapolate import extrapolate_curve

    pred = extrapolate_curve(x, y, targets, level=level)
    mean, lo, hi = (np.atleast_1d(np.asarray(getattr(pred, k), float)) for k in ("mean", "lo", "hi"))
    flag = getattr(pred, "flag", None)
    return Band(mean=mean, lo=lo, hi=hi, flag=flag or None)


class FrontierPolicy:
    """Holds the learning curves of a sweep and decides, run by run, whether to stop.

    policy = FrontierPolicy(PolicyConfig(min_fraction=0.25))
    policy.register("lstm-w32-d2-d7-s0", planned=4.2e12)
    policy.observe("lstm-w32-d2-d7-s0", compute=1.1e12, loss=0.61)
    decision = policy.decide("lstm-w32-d2-d7-s0")   # Decision(action="continue", reason=..., ...)
    """

    def __init__(self, config: PolicyConfig | None = None, extrapolate: Extrapolator | None = None):
        self.config = config or PolicyConfig()
        self.extrapolate = extrapolate or default_extrapolator
        self.planned: dict[str, float] = {}
        self.cooldown_start: dict[str, float | None] = {}
        self.groups: dict[str, str | None] = {}
        self.twins: dict[str, tuple[str, ...]] = {}
        self.twin_reversals: dict[str, float] = {}  # finished run -> largest confirmed gap it later closed
        self.curves: dict[str, list[tuple[float, float]]] = {}
        self.stopped: dict[str, Decision] = {}
        self.cooldown_drops: dict[str, float] = {}  # measured on finished runs
        self.scores: dict[str, dict[str, list[tuple[float, float]]]] = {}  # finished run -> pool -> (fraction, u)

    # ----- state ---------------------------------------------------------------------------
    def register(
        self,
        run_id: str,
        planned: float,
        cooldown_start: float | None = None,
        group: str | None = None,
        twins: tuple[str, ...] | list[str] = (),
    ) -> None:
        """planned: the run's planned compute; cooldown_start: fraction of it where its learning
        rate starts to decay for good (wsd: 1 - decay; cosine: its warmup; None: no cooldown);
        group: its architecture (with envelope "arch", runs are compared within their group);
        twins: the runs of the same recipe on strict supersets of its data (see the module notes)."""
        if not (planned > 0 and math.isfinite(planned)):
            raise ValueError(f"{run_id}: planned compute must be positive, got {planned}")
        self.planned[run_id] = float(planned)
        self.cooldown_start[run_id] = cooldown_start
        self.groups[run_id] = group
        self.twins[run_id] = tuple(twins)
        self.curves.setdefault(run_id, [])

    def observe(self, run_id: str, compute: float, loss: float) -> bool:
        """Add one evaluation; points at or before the run's latest compute are ignored
        (a resumed run re-reporting). Returns whether the point was new."""
        curve = self.curves.setdefault(run_id, [])
        compute, loss = float(compute), float(loss)
        if curve and compute <= curve[-1][0]:
            return False
        if not math.isfinite(compute) or compute < 0:
            return False
        curve.append((compute, loss))
        self._measure_cooldown(run_id)
        self._measure_scores(run_id)
        self._measure_twin_reversal(run_id)
        return True

    def _measure_cooldown(self, run_id: str) -> None:
        """When a run with a cooldown has reached its end: how much lower it ended than its
        stable phase, extrapolated to the end, predicted (the bonus the cooldown brought)."""
        start, planned = self.cooldown_start.get(run_id), self.planned.get(run_id)
        curve = self.curves[run_id]
        if start is None or not self._finished(run_id):
            return
        pre = [(c, l) for c, l in curve if 0 < c <= start * planned and math.isfinite(l)]
        if len(pre) < self.config.min_points:
            return
        x = np.array([c for c, _ in pre]) / planned
        y = np.minimum.accumulate(np.array([l for _, l in pre]))
        try:
            band = self.extrapolate(x, y, np.array([1.0]), self.config.level)
        except Exception:
            return
        mean = float(np.asarray(band.mean, float).ravel()[-1])
        if (not band.flag or band.flag in TRUSTED_LOWER_BOUND) and math.isfinite(mean) and mean > 0:
            self.cooldown_drops[run_id] = max(0.0, 1.0 - curve[-1][1] / mean)

    def _finished(self, run_id: str) -> bool:
        planned, curve = self.planned.get(run_id), self.curves.get(run_id)
        return bool(planned and curve and curve[-1][0] >= planned * (1 - 1e-6) and math.isfinite(curve[-1][1]))

    def _pool(self, run_id: str, flag: str | None) -> str:
        """Calibration pool of a band: the kind of extrapolation and where the run's cooldown starts."""
        start = self.cooldown_start.get(run_id)
        return f"{flag or 'trusted'}|cooldown {'none' if start is None else f'{start:.3f}'}"

    def _measure_scores(self, run_id: str) -> None:
        """When a run has reached its end: from every prefix a decision could have been taken on,
        the band scale its real end needed (see the module notes), by pool and prefix fraction."""
        if not self.config.calibrate or not self._finished(run_id):
            return
        cfg, planned = self.config, self.planned[run_id]
        c, l = self._trained(*self.curve(run_id))
        best = np.minimum.accumulate(l)
        factor = float(self._cooldown_factor(run_id, np.array([1.0]))[0][0])  # the allowance at the end
        scores: dict[str, list[tuple[float, float]]] = {}
        for j in range(cfg.min_points - 1, len(c) - 1):
            if c[j] < cfg.min_fraction * planned or self._rising(l[: j + 1], best[: j + 1]):
                continue
            try:
                band = self.extrapolate(c[: j + 1] / planned, best[: j + 1], np.array([c[-1] / planned]), cfg.level)
            except Exception:
                continue
            if band.flag and band.flag not in TRUSTED_LOWER_BOUND:
                continue
            mean, lo = (float(np.asarray(a, float).ravel()[-1]) for a in (band.mean, band.lo))
            if not (mean > lo > 0):
                continue
            u = math.log(mean * factor / best[-1]) / math.log(mean / lo)
            scores.setdefault(self._pool(run_id, band.flag), []).append((float(c[j] / planned), u))
        self.scores[run_id] = scores

    def band_scale(self, run_id: str, flag: str | None, fraction: float) -> tuple[float | None, int]:
        """(u_hat, n): the split-conformal band scale for a band of this run and kind at `fraction`
        of its budget, from the n finished runs of its pool that have a score at a prefix within
        SCORE_SPAN of that fraction (their nearest); (None, n) while there are too few to calibrate."""
        if not self.config.calibrate:
            return None, 0
        pool = self._pool(run_id, flag)
        values = []
        for rid, s in self.scores.items():
            if rid != run_id and s.get(pool):
                f, u = min(s[pool], key=lambda fu: abs(math.log(fu[0] / fraction)))
                if abs(math.log(f / fraction)) <= math.log(SCORE_SPAN):
                    values.append(u)
        values.sort()
        n = len(values)
        k = math.ceil((n + 1) * (1.0 - self.config.tail))
        if n < self.config.calibrate_min or k > n:
            return None, n
        return max(self.config.calibrate_floor, values[k - 1]), n

    def _rising(self, losses: np.ndarray, best_so_far: np.ndarray) -> int:
        """Evaluations since the minimum, if the last `overfit_points` all sit more than
        `overfit_tol` above it (the run is overfitting its data); else 0."""
        k = self.config.overfit_points
        if k <= 0 or len(losses) < k + 1:
            return 0
        i_best = int(np.argmin(np.where(np.isfinite(losses), losses, np.inf)))
        since = len(losses) - 1 - i_best
        if since < k:
            return 0
        tail = losses[-k:]
        return since if bool(np.all(tail > best_so_far[-1] * (1.0 + self.config.overfit_tol))) else 0

    @staticmethod
    def _trained(c_all: np.ndarray, l_all: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The evaluations a fit can use: finite losses after the untrained start."""
        ok = np.isfinite(l_all) & (c_all > 0)
        return c_all[ok], l_all[ok]

    def _twin_gaps(self, twin: str, c: np.ndarray, best_so_far: np.ndarray) -> np.ndarray | None:
        """best so far / the twin's best at no more compute - 1, at each of the computes `c`."""
        tc, tl = self.curve(twin)
        ok = np.isfinite(tl)
        if not ok.any():
            return None
        return best_so_far / Envelope(tc[ok], tl[ok])(c) - 1.0  # -1 before the twin's first evaluation

    def _measure_twin_reversal(self, run_id: str) -> None:
        """When a run with twins has reached its end: the largest gap, confirmed as a stop would
        confirm it (past `twin_min_fraction`), after which it still got level with or ahead of a twin."""
        if not (self.config.twins and self.twins.get(run_id) and self._finished(run_id)):
            return
        k, planned = self.config.twin_points, self.planned[run_id]
        c, l = self._trained(*self.curve(run_id))
        best = np.minimum.accumulate(l)
        worst = 0.0
        for twin in self.twins[run_id]:
            gaps = self._twin_gaps(twin, c, best)
            if gaps is None:
                continue
            for j in range(k - 1, len(c) - 1):
                if c[j] >= self.config.twin_min_fraction * planned and np.any(gaps[j + 1 :] <= 0):
                    worst = max(worst, float(np.min(gaps[j - k + 1 : j + 1])))
        self.twin_reversals[run_id] = worst

    def twin_tol(self) -> float:
        return max([self.config.twin_tol, *self.twin_reversals.values()])

    def behind_twin(self, run_id: str, c: np.ndarray, best_so_far: np.ndarray) -> tuple[str, float, float] | None:
        """(twin, smallest gap, tolerance) if the run's best so far sat more than the twin tolerance
        above a larger twin's best at no more compute at each of its last `twin_points` evaluations."""
        k = self.config.twin_points
        if not self.config.twins or len(c) < k:
            return None
        found, tol = None, self.twin_tol()
        for twin in self.twins.get(run_id, ()):
            gaps = self._twin_gaps(twin, c[-k:], best_so_far[-k:])
            gap = float(np.min(gaps)) if gaps is not None else -1.0
            if gap > tol and (found is None or gap > found[1]):
                found = (twin, gap, tol)
        return found

    def cooldown_gain(self) -> float:
        return max([self.config.cooldown_gain, *self.cooldown_drops.values()])

    def _cooldown_factor(self, run_id: str, fractions: np.ndarray) -> tuple[np.ndarray, float]:
        start = self.cooldown_start.get(run_id)
        if start is None:
            return np.ones_like(fractions), 0.0
        gain = self.cooldown_gain()
        ramp = np.clip((fractions - start) / max(1.0 - start, 1e-9), 0.0, 1.0)
        return 1.0 - gain * ramp, gain

    def curve(self, run_id: str) -> tuple[np.ndarray, np.ndarray]:
        pts = self.curves.get(run_id, [])
        return np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float)

    def envelope(self, exclude: str | None = None, group: str | None = None) -> Envelope:
        """The envelope of every run but `exclude` (of group `group` only, when given)."""
        cs, ls = [], []
        for rid, pts in self.curves.items():
            if rid == exclude or (group is not None and self.groups.get(rid) != group):
                continue
            for c, l in pts:
                if math.isfinite(l):
                    cs.append(c)
                    ls.append(l)
        return Envelope(np.array(cs, float), np.array(ls, float))

    # ----- the decision --------------------------------------------------------------------
    def decide(self, run_id: str) -> Decision:
        cfg = self.config
        if run_id in self.stopped:
            return self.stopped[run_id]
        c_all, l_all = self.curve(run_id)
        planned = self.planned.get(run_id, math.nan)
        d = Decision(run_id=run_id, action="continue", reason="", planned=planned)
        if len(c_all) == 0:
            d.reason = "no evaluation yet"
            return d
        c, l = self._trained(c_all, l_all)
        d.compute, d.loss = float(c_all[-1]), float(l_all[-1])
        d.fraction = d.compute / planned if planned > 0 else math.nan
        d.points = int(len(c))
        if len(c) == 0:
            d.reason = "no finite evaluation after the start yet"
            return d
        best_so_far = np.minimum.accumulate(l)
        d.best = float(best_so_far[-1])
        env = self.envelope(exclude=run_id, group=self.groups.get(run_id) if cfg.envelope == "arch" else None)
        d.envelope_now = float(env(d.compute)[0])
        d.envelope_end = float(env(planned)[0]) if math.isfinite(planned) else math.nan
        if not math.isfinite(planned):
            d.reason = "no planned budget registered"
            return d
        has_twins = cfg.twins and bool(self.twins.get(run_id))
        early = f"at {d.fraction:.0%} of its budget, before the minimum {cfg.min_fraction:.0%}" + (
            f" ({cfg.twin_min_fraction:.0%} for its twins)" if has_twins else ""
        )
        if d.fraction < cfg.earliest_stop(has_twins):
            d.reason = early
            return d
        if env.empty:
            d.reason = (
                "no other run of its architecture has reported yet: no envelope"
                if cfg.envelope == "arch"
                else "no other run has reported yet: no envelope"
            )
            return d
        if d.best <= d.envelope_now * (1.0 + cfg.margin):
            d.reason = "on the frontier now (best so far <= envelope)"
            return d
        if d.compute >= planned:
            d.reason = "budget spent"
            return d
        twin_time = has_twins and d.fraction >= cfg.twin_min_fraction
        dominated = self.behind_twin(run_id, c, best_so_far) if twin_time else None
        if dominated:
            d.action, (d.twin, d.twin_gap, d.twin_tol) = "stop", dominated
            d.reason = (
                f"behind its larger twin {d.twin} by {d.twin_gap:.1%}+ at equal compute: the same recipe "
                f"on more data, at its last {cfg.twin_points} evaluations (tolerance {d.twin_tol:.1%}); "
                f"it stays at or above that run"
            )
            self.stopped[run_id] = d
            return d
        if d.fraction < cfg.min_fraction:
            d.reason = early
            return d
        if d.points < cfg.min_points:
            d.reason = f"{d.points} evaluations, fewer than the {cfg.min_points} a fit needs"
            return d

        # the rest of the budget: a log grid plus every point where the envelope steps down
        targets = np.unique(
            np.concatenate(
                [
                    np.geomspace(d.compute, planned, cfg.grid),
                    env.breakpoints(d.compute, planned),
                ]
            )
        )
        rising = self._rising(l, best_so_far)
        if rising:
            # past its best: more training has made it worse; what it can still reach is what it
            # reached (less what the cooldown may bring, below)
            flat = np.full(targets.shape, d.best)
            band = Band(mean=flat, lo=flat, hi=np.full(targets.shape, d.loss))
        else:
            # extrapolate the best-so-far curve in units of the planned budget (well-scaled for the fit)
            try:
                band = self.extrapolate(c / planned, best_so_far, targets / planned, cfg.level)
            except Exception as exc:  # a fit that fails is never a reason to stop
                d.reason = f"curve fit failed ({type(exc).__name__}: {exc})"
                return d
        mean, lo, hi = (np.broadcast_to(np.asarray(a, float), targets.shape) for a in (band.mean, band.lo, band.hi))
        d.predicted_end, d.predicted_lo, d.predicted_hi = float(mean[-1]), float(lo[-1]), float(hi[-1])
        if band.flag and band.flag not in TRUSTED_LOWER_BOUND:
            d.reason = f"extrapolation not trusted ({band.flag})"
            return d
        if not np.all(np.isfinite(lo)):
            d.reason = "extrapolation produced non-finite bounds"
            return d
        scale, d.calibrated_on = (None, 0) if rising else self.band_scale(run_id, band.flag, d.fraction)
        if scale is not None:  # the band scaled as the finished runs' real paths needed
            d.band_scale = scale
            with np.errstate(divide="ignore", invalid="ignore"):
                lo = np.where(lo > 0, mean * (lo / mean) ** scale, lo)
        # the learning-rate cooldown may still bring the loss down by up to the cooldown gain
        factor, d.cooldown_gain = self._cooldown_factor(run_id, targets / planned)
        lo = lo * factor
        # the best loss it can have reached by C is at most what it has reached already
        bound = np.minimum(np.minimum.accumulate(lo), d.best)
        d.bound_end = float(bound[-1])
        gap = bound - env(targets) * (1.0 + cfg.margin)
        i = int(np.argmin(gap))
        d.min_gap, d.gap_at = float(gap[i]), float(targets[i])
        if np.all(gap > 0):
            d.action = "stop"
            d.reason = (
                (
                    f"past its best (dev loss {cfg.overfit_tol:.0%}+ above its minimum for the last {rising} "
                    f"evaluations) and "
                    if rising
                    else ""
                )
                + f"predicted to stay above the frontier: at the end lower bound {d.bound_end:.4f} "
                f"vs envelope {d.envelope_end:.4f}; closest at {d.gap_at / planned:.0%} of budget "
                f"(gap {d.min_gap:+.4f})"
            )
            self.stopped[run_id] = d
        else:
            cross = targets[gap <= 0][0]
            d.reason = (
                f"may reach the frontier by {cross / planned:.0%} of its budget "
                f"(lower bound {float(bound[gap <= 0][0]):.4f} <= envelope {float(env(cross)[0]):.4f})"
            )
        return d


def running_min(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, float)
    return np.minimum.accumulate(np.where(np.isfinite(values), values, np.inf)) if len(values) else values


__all__ = ["PolicyConfig", "FrontierPolicy", "Decision", "Envelope", "Band", "default_extrapolator", "running_min"]
