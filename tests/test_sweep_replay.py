"""Replaying the frontier policy over recorded curves: what it stops, what that saves, what a
stop that was wrong looks like, and the hindsight reference the benchmark prints.

The table is the tidy one a sweep writes (run_id, arch, N, flops, dev_loss, wall_time), built
from the scripted curves of test_sweep_policy: "small" and "mid" on the envelope and leaving it,
"big" above it early and the best at the end, "limited" above it everywhere.
"""

import numpy as np
import pandas as pd
import pytest
from test_sweep_policy import RUNS

from apcscale.sweep.policy import Band, PolicyConfig
from apcscale.sweep.replay import hindsight_spend, replay

SIZES = {"small": 1e3, "mid": 4e3, "big": 1.6e4, "limited": 4e3}


def table(runs=RUNS):
    rows = []
    for run_id, (planned, (C, L)) in runs.items():
        for c, l in zip(C, L):
            rows.append(
                {
                    "run_id": run_id,
                    "arch": "lstm",
                    "N": SIZES.get(run_id, 1e3),
                    "flops": c,
                    "dev_loss": l,
                    "wall_time": c / planned * 10.0,
                }
            )
    return pd.DataFrame(rows), {r: p for r, (p, _) in runs.items()}


def test_replay_stops_the_run_off_the_frontier_and_keeps_the_fit():
    points, planned = table()
    r = replay(points, planned, PolicyConfig(min_fraction=0.25, calibrate=False), timeline="complete", bootstrap=0)
    assert "limited" in r.stops and "big" not in r.stops
    assert not r.wrong_stops
    # what it saved is exactly the limited run's curve after its stop
    C = RUNS["limited"][1][0]
    assert r.spent_full - r.spent == pytest.approx(C[-1] - r.stops["limited"]["compute"])
    assert 0 < r.saved_fraction < 1
    assert r.change("alpha") == pytest.approx(0.0, abs=1e-9) and r.change("L_inf") == pytest.approx(0.0, abs=1e-9)
    assert "runs stopped" in r.summary()


def test_a_stop_that_was_wrong_is_reported_with_how_far_below_the_envelope_it_went():
    """An extrapolation that always promises a high loss stops the big run early, though its real
    curve goes below everything the others reach: a wrong stop, and the frontier fit moves."""

    def pessimist(x, y, targets, level):
        high = np.full(len(targets), 10.0)
        return Band(mean=high, lo=high, hi=high)

    points, planned = table()
    r = replay(
        points,
        planned,
        PolicyConfig(min_fraction=0.25, calibrate=False, twins=False),
        timeline="complete",
        extrapolate=pessimist,
        bootstrap=0,
    )
    wrong = {w["run_id"]: w for w in r.wrong_stops}
    assert "big" in wrong and wrong["big"]["below_by"] > 0
    C, L = RUNS["big"][1]
    assert wrong["big"]["loss"] in L and wrong["big"]["compute"] > r.stops["big"]["compute"]


def test_hindsight_stops_each_run_after_its_last_touch_of_the_envelope():
    """Three runs on one axis; "dip" is on the envelope at half its budget and never after, "top"
    never: with hindsight "dip" stops at that evaluation (its point on the envelope is kept), "top"
    at its first evaluation past the minimum fraction, "best" (the envelope at the end) runs on."""
    f = np.array([0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0])
    runs = {
        "best": (1.0, (f * 1.0, np.array([1.0, 0.80, 0.60, 0.50, 0.40, 0.35, 0.30]))),
        "dip": (1.0, (f * 1.0, np.array([1.0, 0.85, 0.62, 0.55, 0.39, 0.39, 0.39]))),
        "top": (1.0, (f * 1.0, np.array([1.0, 0.90, 0.80, 0.70, 0.60, 0.55, 0.50]))),
    }
    points, _ = table(runs)
    spent = hindsight_spend(points, min_fraction=0.25)
    assert spent == pytest.approx((1.0 + 0.5 + 0.3) / 3.0)
    # a run the policy may stop sooner (one with twins) is stopped sooner with hindsight too
    spent = hindsight_spend(points, min_fraction={"best": 0.25, "dip": 0.25, "top": 0.1})
    assert spent == pytest.approx((1.0 + 0.5 + 0.1) / 3.0)
