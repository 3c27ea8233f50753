"""Frontier pruning on scripted learning curves: what is stopped, what is kept, and why.

The curves are L(C) = L_inf + A ((C + C0) / C0)^-alpha with a little noise,
evaluated at the sweep's log-spaced points (2% .. 100% of each run's budget):
- "small": cheap, on the envelope early, plateaus high;
- "big": 16x the compute, *above* the envelope for its first quarter, then the best;
- "limited": a mid-size model on too little data: plateaus above what the others reach.
"""

import math

import numpy as np
import pytest

from apcscale.sweep.policy import Band, Envelope, FrontierPolicy, PolicyConfig

FRACTIONS = np.concatenate([[0.0], np.geomspace(0.02, 1.0, 16)])


def curve(planned, L_inf, A, alpha, seed=0, noise=0.002):
    rng = np.random.default_rng(seed)
    C = FRACTIONS * planned
    c0 = 0.01 * planned
    L = L_inf + A * ((C + c0) / c0) ** -alpha
    return C, L * np.exp(rng.normal(0.0, noise, len(C)))


RUNS = {
    "small": (1e10, curve(1e10, 0.50, 0.6, 0.7, seed=1)),
    "mid": (4e10, curve(4e10, 0.42, 0.7, 0.6, seed=2)),
    "big": (1.6e11, curve(1.6e11, 0.30, 0.9, 0.5, seed=3)),
    "limited": (4e10, curve(4e10, 0.56, 0.7, 0.8, seed=4)),
}


def feed(policy, order):
    """Feed evaluations in the given (run, index) order; returns every decision taken."""
    decisions = []
    for run_id, i in order:
        C, L = RUNS[run_id][1]
        if run_id in policy.stopped:
            continue
        if policy.observe(run_id, C[i], L[i]) and C[i] > 0:
            decisions.append(policy.decide(run_id))
    return decisions


def make_policy(**kw):
    policy = FrontierPolicy(PolicyConfig(**kw))
    for run_id, (planned, _) in RUNS.items():
        policy.register(run_id, planned)
    return policy


def lockstep(*run_ids):
    return [(r, i) for i in range(len(FRACTIONS)) for r in run_ids]


def complete(*run_ids):
    return [(r, i) for r in run_ids for i in range(len(FRACTIONS))]


def test_envelope_is_best_loss_reached_with_at_most_that_compute():
    env = Envelope(np.array([1.0, 2.0, 3.0, 4.0]), np.array([5.0, 3.0, 4.0, 1.0]))
    assert env(0.5)[0] == math.inf  # nobody had spent that little
    assert list(env([1.0, 2.5, 3.5, 10.0])) == [5.0, 3.0, 3.0, 1.0]
    assert list(env.breakpoints(1.0, 10.0)) == [2.0, 4.0]


def test_model_leaving_the_frontier_is_stopped_and_one_joining_it_is_kept():
    policy = make_policy(min_fraction=0.25)
    decisions = feed(policy, complete("small", "mid") + lockstep("big", "limited"))
    by_run = {}
    for d in decisions:
        by_run.setdefault(d.run_id, []).append(d)

    # the data-limited run plateaus above the envelope: stopped, early, with its numbers
    stop = policy.stopped["limited"]
    assert stop.action == "stop" and 0.25 <= stop.fraction < 0.6
    assert stop.predicted_lo > stop.envelope_end and stop.min_gap > 0
    assert "above the frontier" in stop.reason
    assert by_run["limited"][-1] is stop  # no decision after the stop

    # the big model is behind the envelope early (it costs 16x per step) but is never stopped ...
    big = by_run["big"]
    assert "big" not in policy.stopped
    behind = [d for d in big if d.fraction >= 0.25 and d.best > d.envelope_now]
    assert behind, "the big run should have been behind the envelope after the minimum fraction"
    assert all(d.action == "continue" for d in big)
    # ... because its extrapolation says it will reach the frontier, or it already has
    assert any("may reach the frontier" in d.reason for d in behind)
    assert "on the frontier now" in big[-1].reason


def test_nothing_is_stopped_before_the_minimum_fraction():
    policy = make_policy(min_fraction=0.6)
    decisions = feed(policy, complete("small", "mid") + lockstep("big", "limited"))
    for d in decisions:
        if d.fraction < 0.6:
            assert d.action == "continue" and "before the minimum" in d.reason
    # the limited run is still stopped, just later
    assert policy.stopped["limited"].fraction >= 0.6


def test_being_behind_at_equal_compute_is_not_a_reason_to_stop():
    """A run that improves steeply is kept even though every other run is ahead of it right now."""
    policy = FrontierPolicy(PolicyConfig(min_fraction=0.25))
    policy.register("leader", 1e10)
    policy.register("steep", 1e10)
    C, L = curve(1e10, 0.40, 0.2, 0.7, seed=5)
    for c, l in zip(C, L):
        policy.observe("leader", c, l)
    C2, L2 = curve(1e10, 0.30, 3.0, 0.9, seed=6)  # far behind early, best at the end
    for i in range(len(C2)):
        policy.observe("steep", C2[i], L2[i])
        if C2[i] > 0:
            d = policy.decide("steep")
            assert d.action == "continue", d.reason
    assert L2[6] > L[6]  # it really was behind at equal compute


def test_a_single_run_or_an_untrusted_fit_never_stops():
    policy = FrontierPolicy(PolicyConfig(min_fraction=0.25))
    policy.register("alone", 1e10)
    C, L = curve(1e10, 0.5, 0.5, 0.7)
    for c, l in zip(C, L):
        policy.observe("alone", c, l)
        d = policy.decide("alone")
        assert d.action == "continue"
    assert "no other run" in d.reason

    def untrusted(x, y, t, level):
        return Band(mean=np.full(len(t), 9.0), lo=np.full(len(t), 9.0), hi=np.full(len(t), 9.0), flag="bad_fit")

    policy = FrontierPolicy(PolicyConfig(min_fraction=0.25), extrapolate=untrusted)
    for run_id, (planned, _) in RUNS.items():
        policy.register(run_id, planned)
    feed(policy, complete("small", "mid") + lockstep("big", "limited"))
    assert not policy.stopped  # a lower bound of 9.0 is far above everything, but the fit is flagged


def test_stop_requires_the_lower_bound_above_the_envelope_over_the_whole_rest():
    """A band whose lower edge dips below the envelope near the end keeps the run."""
    policy = make_policy(min_fraction=0.25)
    feed(policy, complete("small", "mid", "big"))

    def dips_at_the_end(x, y, t, level):
        lo = np.where(t >= 0.99, 0.1, 5.0)  # far above the envelope ... except at its very end
        return Band(mean=lo, lo=lo, hi=lo + 1)

    policy.extrapolate = dips_at_the_end
    d = feed(policy, complete("limited"))[-1]
    assert "limited" not in policy.stopped and d.action == "continue"
    assert "may reach the frontier by 100%" in d.reason or "budget spent" in d.reason


def test_decisions_carry_their_numbers():
    policy = make_policy(min_fraction=0.25)
    feed(policy, complete("small", "mid") + lockstep("big", "limited"))
    d = policy.stopped["limited"].to_dict()
    for key in (
        "run_id",
        "action",
        "reason",
        "compute",
        "planned",
        "fraction",
        "best",
        "envelope_now",
        "envelope_end",
        "predicted_end",
        "predicted_lo",
        "predicted_hi",
        "min_gap",
        "gap_at",
        "points",
    ):
        assert d[key] is not None, key
    assert d["compute"] == pytest.approx(d["fraction"] * d["planned"])


def test_config_is_validated():
    from apcscale.utils.schema import RecipeError, from_dict

    with pytest.raises(RecipeError, match="min_fraction: must be in"):
        from_dict(PolicyConfig, {"min_fraction": 1.5})
    with pytest.raises(RecipeError, match="level: must be in"):
        from_dict(PolicyConfig, {"level": 0})


def constant_band(value):
    def extrapolate(x, y, t, level):
        v = np.full(len(t), value)
        return Band(mean=v, lo=v, hi=v)

    return extrapolate


def test_learning_rate_cooldown_can_still_bring_a_run_to_the_frontier():
    """A stable-phase extrapolation 1% above the envelope: kept when a cooldown is ahead, stopped without."""

    def run_with(cooldown_start):
        policy = FrontierPolicy(PolicyConfig(min_fraction=0.25, cooldown_gain=0.02), extrapolate=constant_band(0.505))
        policy.register("other", 1e10)
        policy.register("r", 1e10, cooldown_start=cooldown_start)
        policy.observe("other", 1e9, 0.50)
        for frac, loss in [(0.05, 0.9), (0.08, 0.8), (0.12, 0.7), (0.16, 0.65), (0.2, 0.6), (0.25, 0.56), (0.3, 0.53)]:
            policy.observe("r", frac * 1e10, loss)
        return policy.decide("r")

    assert run_with(None).action == "stop"
    kept = run_with(0.8)
    assert kept.action == "continue" and kept.cooldown_gain == pytest.approx(0.02)
    assert kept.bound_end == pytest.approx(0.505 * 0.98)


def test_cooldown_bonus_is_learned_from_finished_runs():
    policy = FrontierPolicy(PolicyConfig(cooldown_gain=0.01))
    policy.register("done", 1e10, cooldown_start=0.8)
    C, L = curve(1e10, 0.40, 0.6, 0.7, seed=7, noise=0.0)
    for c, l in zip(C[:-1], L[:-1]):
        policy.observe("done", c, l)
    assert policy.cooldown_gain() == pytest.approx(0.01)  # not finished yet: the configured prior
    stable_end = policy.extrapolate(
        C[1:-1][C[1:-1] <= 0.8e10] / 1e10, np.minimum.accumulate(L[1:-1][C[1:-1] <= 0.8e10]), np.array([1.0]), 0.8
    ).mean[-1]
    policy.observe("done", C[-1], 0.95 * stable_end)  # the cooldown took it 5% below its trend
    assert policy.cooldown_gain() == pytest.approx(0.05, abs=2e-3)


def test_a_run_past_its_best_is_judged_on_its_best():
    """Overfitting (the loss rises after its minimum): an extrapolation that still promises the
    frontier is not believed; the run is stopped on its best so far."""
    policy = FrontierPolicy(PolicyConfig(min_fraction=0.25, cooldown_gain=0.02), extrapolate=constant_band(0.1))
    policy.register("other", 1e10)
    policy.register("r", 1e10, cooldown_start=0.8)
    policy.observe("other", 1e9, 0.40)
    curve_r = [
        (0.05, 0.9),
        (0.08, 0.7),
        (0.12, 0.55),
        (0.16, 0.47),
        (0.2, 0.45),
        (0.25, 0.452),
        (0.3, 0.47),
        (0.4, 0.5),
    ]
    decisions = []
    for frac, loss in curve_r:
        policy.observe("r", frac * 1e10, loss)
        decisions.append(policy.decide("r"))
    # at 30% only one evaluation is clearly above the minimum: the (optimistic) extrapolation still rules
    assert decisions[-2].action == "continue"
    stop = decisions[-1]
    assert stop.action == "stop" and "past its best" in stop.reason
    assert stop.bound_end == pytest.approx(0.45 * 0.98)


def finished_family(policy, n, end_ratio, planned=1e10, seed=10):
    """n finished runs whose curves end at `end_ratio` x their own (fake) extrapolated mean."""
    for k in range(n):
        run_id = f"done{k}"
        policy.register(run_id, planned)
        C, L = curve(planned, 0.45, 0.5, 0.7, seed=seed + k)
        for c, l in zip(C[:-1], L[:-1]):
            policy.observe(run_id, c, l)
        policy.observe(run_id, C[-1], min(L[:-1]) * end_ratio[k])


def ratio_band(x, y, t, level):
    """A fake extrapolation: mean 10% below the best so far, lower edge 20% below, everywhere."""
    best = float(np.min(y))
    return Band(mean=np.full(len(t), 0.9 * best), lo=np.full(len(t), 0.8 * best), hi=np.full(len(t), best))


def test_band_scale_is_the_conformal_quantile_of_the_finished_runs_scores():
    """Each finished run scores, per prefix, the band scale its real end needed; a decision uses the
    ceil((n + 1)(1 - a))-th smallest of the n scores at its fraction (a = (1 - level) / 2)."""
    ends = np.linspace(0.97, 1.02, 12)  # ends relative to the best before the last point
    policy = FrontierPolicy(
        PolicyConfig(min_fraction=0.25, level=0.8, calibrate_min=10, calibrate_floor=0.0), extrapolate=ratio_band
    )
    finished_family(policy, 12, ends)
    assert len(policy.scores) == 12
    # by hand, for the prefix ending at the last evaluation before the end (fraction FRACTIONS[-2]):
    # mean = 0.9 b, lo = 0.8 b with b the best of that prefix; the end is ends[k] * b
    # (the last point's best is min(b, ends[k] b); no cooldown registered: factor 1)
    expected = sorted(math.log(0.9 / min(1.0, e)) / math.log(0.9 / 0.8) for e in ends)
    policy.register("r", 1e10)
    scale, n = policy.band_scale("r", None, FRACTIONS[-2])
    assert n == 12
    k = math.ceil(13 * 0.9)  # 12th smallest of 12
    assert scale == pytest.approx(max(0.0, expected[k - 1]))
    # the floor: never narrower than floor x the model band
    policy.config.calibrate_floor = 0.9
    assert policy.band_scale("r", None, FRACTIONS[-2])[0] == pytest.approx(max(0.9, expected[k - 1]))
    # fewer finished runs than calibrate_min: the model band as it is
    few = FrontierPolicy(PolicyConfig(calibrate_min=10), extrapolate=ratio_band)
    finished_family(few, 9, ends[:9])
    few.register("r", 1e10)
    assert few.band_scale("r", None, FRACTIONS[-2]) == (None, 9)
    # and never with calibrate: false
    off = FrontierPolicy(PolicyConfig(calibrate=False), extrapolate=ratio_band)
    finished_family(off, 12, ends)
    assert not off.scores


def test_calibrated_band_stops_earlier_when_real_curves_are_more_predictable_than_the_band():
    """Finished runs that all ended near their extrapolated mean shrink the band: a run whose model
    band still dips below the envelope is stopped on the calibrated one; without calibration it is kept."""

    def decide_with(calibrate):
        policy = FrontierPolicy(PolicyConfig(min_fraction=0.25, calibrate=calibrate), extrapolate=ratio_band)
        # runs 100x larger (so that their curves lie far above r's at r's compute) that all ended above
        # their mean prediction: scores u < 0
        finished_family(policy, 12, np.full(12, 1.0 / 0.9), planned=1e12)
        policy.register("r", 1e10)
        policy.register("front", 1e10)
        policy.observe("front", 1e9, 0.37)  # the envelope: 0.37 from 10% of r's budget on
        for frac in FRACTIONS[1:13]:  # up to 35% of the budget, best so far 0.45
            policy.observe("r", frac * 1e10, 0.46 + 0.2 * (0.3 - frac))
        return policy.decide("r")

    kept, stopped = decide_with(False), decide_with(True)
    # model band: lower edge 0.8 x 0.45 = 0.36, below the envelope 0.37: kept
    assert kept.action == "continue" and kept.calibrated_on == 0 and kept.band_scale == 1.0
    # calibrated: the scores say the runs never went below their mean (u < 0), so the band shrinks to its
    # floor: bound = mean x (lo / mean)^0.3 = 0.9 x 0.45 x 0.889^0.3 = 0.39 > 0.37
    assert stopped.action == "stop" and stopped.calibrated_on == 12 and stopped.band_scale == 0.3
    assert stopped.bound_end == pytest.approx(0.9 * stopped.best * (0.8 / 0.9) ** 0.3)


def test_calibration_keeps_the_run_that_joins_the_frontier_on_real_shaped_curves():
    """The scripted sweep with a dozen finished runs of the family beside it: the extrapolation band is
    calibrated (they are the same family), and still the big model that is behind early is kept."""
    policy = make_policy(min_fraction=0.25)
    for k in range(12):
        run_id = f"family{k}"
        planned = 1e10 * 2 ** (k % 4)
        policy.register(run_id, planned, group=None)
        C, L = curve(planned, 0.45 + 0.01 * k, 0.6, 0.6 + 0.02 * k, seed=20 + k)
        for c, l in zip(C, L):
            policy.observe(run_id, c, l)
    assert len(policy.scores) == 12
    decisions = feed(policy, complete("small", "mid") + lockstep("big", "limited"))
    big = [d for d in decisions if d.run_id == "big"]
    assert "big" not in policy.stopped and all(d.action == "continue" for d in big)
    assert any(d.calibrated_on >= 10 for d in big if d.fraction >= 0.25)
    assert "limited" in policy.stopped


def twin_curves(gap_end, seed=7, planned=4e10):
    """A full-data run and its data-limited twin: the same curve until its subset starts to be
    repeated (at 10% of the budget), then a gap that grows to `gap_end` (relative) at the end."""
    C, full = curve(planned, 0.30, 0.9, 0.5, seed=seed, noise=0.0)
    f = C / planned
    limited = full * (1.0 + gap_end * np.clip((f - 0.1) / 0.9, 0.0, 1.0) ** 0.5)
    return C, full, limited


def twin_policy(**kw):
    policy = FrontierPolicy(PolicyConfig(min_fraction=0.25, **kw))
    policy.register("full", 4e10)
    policy.register("limited", 4e10, twins=["full"])
    return policy


def test_a_run_behind_its_larger_twin_is_stopped_as_dominated():
    """Its own extrapolation alone cannot tell (it keeps improving like its twin); that it stays
    behind the same recipe on more data can: stopped at the first evaluation past the minimum
    fraction where it is confirmed behind, and the decision names the twin and the gap."""
    C, full, limited = twin_curves(0.08)
    policy = twin_policy()
    for i in range(len(C)):  # lockstep, the full-data run reporting first
        policy.observe("full", C[i], full[i])
        policy.observe("limited", C[i], limited[i])
        if C[i] > 0 and policy.decide("limited").action == "stop":
            break
    d = policy.stopped["limited"]
    assert d.twin == "full" and "larger twin full" in d.reason
    assert 0.25 <= d.fraction < 0.5
    gaps = limited[i - 1 : i + 1] / full[i - 1 : i + 1] - 1
    assert d.twin_gap == pytest.approx(gaps.min()) and d.twin_gap > 0.02
    assert d.twin_tol == pytest.approx(0.03)
    # without the twin rule the same run is not stopped there
    plain = twin_policy(twins=False)
    for j in range(i + 1):
        plain.observe("full", C[j], full[j])
        plain.observe("limited", C[j], limited[j])
    assert plain.decide("limited").action == "continue"


def run_pair(policy, C, full, limited):
    """Feed a pair in lockstep (the full-data run first); the decisions on the limited run."""
    out = []
    for i in range(len(C)):
        policy.observe("full", C[i], full[i])
        policy.observe("limited", C[i], limited[i])
        if C[i] > 0:
            out.append(policy.decide("limited"))
            if out[-1].action == "stop":
                break
    return out


def test_the_twin_rule_acts_from_its_own_minimum_fraction_before_any_extrapolation():
    """A run on a tiny subset falls clearly behind its twin soon after its data starts to repeat:
    the twin test needs no curve fit, so it may stop it from `twin_min_fraction` (10%) on, before
    the 25% that extrapolations wait for; never before, and with the twin rule off not at all early."""
    C, full, limited = twin_curves(0.4)
    decisions = run_pair(twin_policy(), C, full, limited)
    d = decisions[-1]
    assert d.action == "stop" and d.twin == "full"
    assert 0.1 <= d.fraction < 0.25
    waited = [e for e in decisions if e.fraction < 0.1]
    assert waited and all("before the minimum 25% (10% for its twins)" in e.reason for e in waited)
    later = run_pair(twin_policy(twin_min_fraction=0.25), C, full, limited)[-1]
    assert later.action == "stop" and later.twin == "full" and later.fraction >= 0.25
    plain = run_pair(twin_policy(twins=False), C, full, limited)
    assert all(e.action == "continue" for e in plain if e.fraction < 0.25)


def test_a_twin_within_the_tolerance_or_ahead_is_not_stopped_by_the_twin_rule():
    for gap_end in (0.025, -0.05):  # 2.5% behind at the end (at most), or ahead
        C, full, limited = twin_curves(gap_end)
        policy = twin_policy()
        for i in range(len(C) - 1):
            policy.observe("full", C[i], full[i])
            policy.observe("limited", C[i], limited[i])
            if C[i] > 0:
                d = policy.decide("limited")
                assert d.twin is None, d.reason
    # and a twin that has not reported yet gives no grounds
    policy = twin_policy()
    C, full, limited = twin_curves(0.08)
    for i in range(len(C) - 1):
        policy.observe("limited", C[i], limited[i])
        assert policy.decide("limited").twin is None


def test_a_finished_run_that_closed_a_confirmed_gap_raises_the_twin_tolerance():
    """A finished pair whose smaller run sat ~4.5% behind (best so far against best so far) at two
    evaluations past the minimum fraction and then got level with its twin: that gap is the
    tolerance from then on, and a new pair 3-4% apart is no longer stopped by the twin rule."""
    C, full, _ = twin_curves(0.0)
    f = C / C[-1]
    bump = np.where((f > 0.3) & (f < 0.5), 0.06, 0.0)  # behind for a while, then level again
    C2, full2, limited2 = twin_curves(0.045, seed=8)  # a new pair, 4.5% apart at the end

    def run_new_pair(policy):
        policy.register("full", 4e10)
        policy.register("limited", 4e10, twins=["full"])
        for i in range(len(C2) - 1):
            policy.observe("full", C2[i], full2[i])
            policy.observe("limited", C2[i], limited2[i])
            if C2[i] > 0 and policy.decide("limited").action == "stop":
                return policy.stopped["limited"]
        return None

    def never(x, y, targets, level):  # extrapolation never acts: only the twin rule can stop
        flat = np.full(len(targets), np.nan)
        return Band(mean=flat, lo=flat, hi=flat, flag="test: no extrapolation")

    fresh = FrontierPolicy(PolicyConfig(min_fraction=0.25), extrapolate=never)
    assert run_new_pair(fresh).twin == "full"  # the configured 3%: stopped
    policy = FrontierPolicy(PolicyConfig(min_fraction=0.25), extrapolate=never)
    policy.register("a-full", C[-1])
    policy.register("a-limited", C[-1], twins=["a-full"])
    for c, l in zip(C, full):
        policy.observe("a-full", c, l)
    for c, l in zip(C, full * (1 + bump) * np.where(f >= 0.5, 0.999, 1.0)):
        policy.observe("a-limited", c, l)
    assert 0.04 < policy.twin_reversals["a-limited"] < 0.06
    assert policy.twin_tol() == pytest.approx(policy.twin_reversals["a-limited"])
    assert run_new_pair(policy) is None  # now kept
