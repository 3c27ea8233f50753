"""What each run says about L(N, D), on scripted curves: converged runs give their minimum, a run at
its cap still improving and a stopped run give an interval that holds their converged loss, never
nothing; the selection takes the median over seeds."""

import numpy as np
import pandas as pd
import pytest

from apcscale.sweep.points import run_point, run_points, select


def curve(run_id, frames, losses, fpf=1e4):
    return pd.DataFrame(
        {"run_id": run_id, "frames": frames, "flops": np.asarray(frames, float) * fpf, "dev_loss": losses}
    )


def power(frames, floor=0.3, a=2.0, alpha=0.35):
    return floor + a * np.asarray(frames, float) ** -alpha


def row(run_id, status, converged, planned_frames, cooldown_frames=np.nan, fpf=1e4, N=1e4, D=1e5, seed=0):
    return pd.Series(
        {
            "run_id": run_id,
            "status": status,
            "converged": converged,
            "planned_frames": planned_frames,
            "planned_flops": planned_frames * fpf,
            "cooldown_frames": cooldown_frames,
            "arch": "lstm",
            "label": f"lstm-{N}",
            "N": N,
            "subset": "d5",
            "D": D,
            "hours": D / 360000,
            "seed": seed,
        }
    )


FRAMES = np.geomspace(1e3, 1e6, 24).round()


def test_a_converged_run_gives_its_minimum():
    losses = power(FRAMES)
    losses[-6:] = losses[-7] * np.array([1.0, 1.001, 1.002, 0.99, 0.995, 0.997])  # plateau then cooldown
    p = run_point(row("a", "finished", True, 1e6), curve("a", FRAMES, losses), gain=0.02)
    assert p["kind"] == "converged" and p["loss"] == p["lo"] == p["hi"] == pytest.approx(losses.min())


def test_a_run_at_its_cap_still_improving_enters_as_an_interval():
    losses = power(FRAMES)
    p = run_point(row("b", "finished", False, 1e6, cooldown_frames=8e5), curve("b", FRAMES, losses), gain=0.03)
    assert p["kind"] == "not converged"
    assert p["hi"] == pytest.approx(losses.min())  # it is at most its minimum ...
    assert 0.3 * 0.95 < p["lo"] < p["hi"]  # ... and at least the extrapolated stable phase, less the cooldown gain
    assert p["lo"] <= p["loss"] <= p["hi"]


def test_a_run_at_its_cap_whose_curve_had_turned_up_has_converged():
    """The rule's test passed only inside the scheduled cooldown (too late to act): its minimum is settled."""
    losses = power(FRAMES)
    losses[-5:] = losses[-6] * np.array([1.01, 1.004, 1.02, 1.015, 1.03])  # overfitting: 5 evaluations, none better
    p = run_point(row("o", "finished", False, 1e6, cooldown_frames=8e5), curve("o", FRAMES, losses), gain=0.03)
    assert p["kind"] == "converged" and p["loss"] == p["lo"] == p["hi"] == pytest.approx(losses[-6])
    losses[-1] = losses[-6] * 0.99  # ... but one that still improved at its end has not
    p = run_point(row("o", "finished", False, 1e6, cooldown_frames=8e5), curve("o", FRAMES, losses), gain=0.03)
    assert p["kind"] != "converged"


def test_a_pruned_run_keeps_its_point():
    losses = power(FRAMES)
    stopped_at = 10  # the scheduler stopped it at its 10th evaluation
    c = curve("c", FRAMES[:stopped_at], losses[:stopped_at])
    p = run_point(row("c", "stopped", None, 1e6), c, gain=0.0)
    assert p is not None and p["kind"] in ("stopped", "censored")
    assert p["hi"] == pytest.approx(losses[:stopped_at].min())  # its minimum so far bounds it
    assert p["lo"] < p["hi"]
    if p["kind"] == "stopped":  # an extrapolation to its planned end: close to where the curve was going
        assert p["lo"] <= power(1e6) * 1.02
    # the same run stopped after its curve had turned up for 3 evaluations has converged
    turned = np.concatenate([losses[:8], losses[7] * np.array([1.01, 1.02, 1.03])])
    q = run_point(row("d", "stopped", None, 1e6), curve("d", FRAMES[:11], turned), gain=0.0)
    assert q["kind"] == "converged" and q["loss"] == pytest.approx(losses[7])


def test_no_point_from_a_failed_or_empty_run():
    losses = power(FRAMES)
    assert run_point(row("e", "failed", None, 1e6), curve("e", FRAMES, losses), gain=0.0) is None
    assert run_point(row("f", "finished", True, 1e6), curve("f", [], []), gain=0.0) is None


def test_selection_is_the_median_over_seeds_with_the_weakest_kind():
    runs = pd.DataFrame(
        [row(f"r{s}", "finished", True, 1e6, seed=s) for s in range(3)]
        + [row("x", "finished", False, 1e6, cooldown_frames=8e5, N=2e4)]
    )
    finals = [0.40, 0.42, 0.41]
    pts = []
    for s, f in enumerate(finals):
        l = power(FRAMES)
        l = l / l.min() * f
        pts.append(curve(f"r{s}", FRAMES, l))
    pts.append(curve("x", FRAMES, power(FRAMES)))
    points = pd.concat(pts, ignore_index=True)
    rp = run_points(runs, points)
    sel = select(rp)
    one = sel[sel["N"] == 1e4].iloc[0]
    assert one["seeds"] == 3 and one["loss"] == pytest.approx(0.41) and one["spread"] == pytest.approx(0.02)
    assert one["kind"] == "converged" and one["lo"] == one["hi"] == pytest.approx(0.41)
    two = sel[sel["N"] == 2e4].iloc[0]
    assert two["kind"] == "not converged" and two["lo"] < two["hi"] and np.isnan(two["spread"])
