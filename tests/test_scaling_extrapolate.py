"""Learning-curve extrapolation: calibrated predictive intervals, honest flags (speed: benchmarks/)."""

from __future__ import annotations

import numpy as np
import pytest

from apcscale.scaling import Prediction, calibration, extrapolate_curve, synthetic_curves

FRACTIONS = [0.15, 0.3, 0.5, 0.7]


@pytest.mark.parametrize("family", ["shifted", "transient"])
def test_nominal_80_percent_interval_covers_70_to_90_percent(family):
    """Held-out final losses of 250 synthetic runs (noise 0.2-1.5%, AR(1) correlated, spikes, shapes off the
    fitted law), predicted from prefixes of 15-70% of the run. 'transient' curves have a shape outside the
    extrapolator's model family."""
    curves = synthetic_curves(250, seed={"shifted": 101, "transient": 202}[family], family=family)
    res = calibration(curves, FRACTIONS, level=0.8)
    print(
        family,
        {k: res[k] for k in ("coverage", "coverage_reliable", "n_reliable", "flags", "median_log_width")},
        {f: round(v["coverage"], 3) for f, v in res["by_fraction"].items()},
    )
    assert 0.70 <= res["coverage"] <= 0.90
    assert 0.70 <= res["coverage_reliable"] <= 0.90
    for frac, r in res["by_fraction"].items():
        assert 0.65 <= r["coverage"] <= 0.95, (frac, r)


def test_interval_level_and_targets():
    c = synthetic_curves(1, seed=3)[0]
    x, y = c["x"], c["y"]
    k = len(x) // 2
    p80 = extrapolate_curve(x[:k], y[:k], x[-1], level=0.8)
    p95 = extrapolate_curve(x[:k], y[:k], x[-1], level=0.95)
    assert isinstance(p80, Prediction) and isinstance(p80.mean, float)
    assert p95.lo < p80.lo < p80.mean < p80.hi < p95.hi
    arr = extrapolate_curve(x[:k], y[:k], x[k:], level=0.8)
    assert arr.mean.shape == arr.lo.shape == (len(x) - k,)
    assert np.all(np.diff(arr.hi - arr.lo) >= -1e-12)  # wider further out
    assert arr.mean[-1] == pytest.approx(p80.mean)
    assert p80.to_dict()["level"] == 0.8


def test_flags_make_the_interval_wide():
    x = np.arange(1, 41) * 1e6
    # too few points: no decision should rest on it
    p = extrapolate_curve(x[:3], [1.0, 0.9, 0.85], x[-1])
    assert p.flag == "too_few_points" and not p.reliable and p.lo == 0.0 and p.hi == 1.0
    # no bend: a pure power law; the floor is unknown
    rng = np.random.default_rng(0)
    y = (2e5 / x) ** 0.3 * np.exp(0.01 * rng.standard_normal(x.size))
    p = extrapolate_curve(x[:8], y[:8], x[-1])
    assert p.flag == "no_bend"
    pure = y[7] * (x[7] / x[-1]) ** 0.3
    assert p.lo <= pure * 1.01 and p.hi >= 0.98 * y[7]  # from 'no floor' to 'no further progress'
    # a clean curve with a floor is reliable and tight
    y = (0.4 + (3e6 / x) ** 0.5) * np.exp(0.002 * rng.standard_normal(x.size))
    p = extrapolate_curve(x[:20], y[:20], x[-1])
    assert p.reliable and p.lo < 0.4 + (3e6 / x[-1]) ** 0.5 < p.hi and p.hi / p.lo < 1.05


def test_what_every_evaluation_of_a_sweep_gets():
    """The calls the sweep makes at each evaluation (prefixes of 20-90% of a run): an ordered, finite
    interval from the points seen so far, and nothing from later ones. (Its speed, once asserted here,
    is measured by benchmarks/bench_extrapolate.py.)"""
    curves = synthetic_curves(20, seed=9)
    for c in curves:
        for frac in (0.2, 0.5, 0.9):
            k = max(int(len(c["x"]) * frac), 3)
            p = extrapolate_curve(c["x"][:k], c["y"][:k], c["x"][-1])
            assert p.n_points == k and np.isfinite([p.lo, p.mean, p.hi]).all() and p.lo <= p.mean <= p.hi
            later = np.array(c["y"], dtype=float)
            later[k:] *= 10.0  # what the run has not seen yet cannot matter
            q = extrapolate_curve(c["x"][:k], later[:k], c["x"][-1])
            assert (q.lo, q.mean, q.hi) == (p.lo, p.mean, p.hi)
