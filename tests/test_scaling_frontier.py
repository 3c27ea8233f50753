"""The compute frontier (lower envelope over runs), its L(C) fit, and compute-optimal allocation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from apcscale.scaling import Frontier, compute_frontier, compute_optimal, fit_joint
from apcscale.scaling.frontier import compute_optimal_numeric
from apcscale.scaling.synthetic import TRUTH, joint_grid, synthetic_sweep


def test_envelope_segments_and_lookup():
    # a small model is on the envelope early and leaves it; a large one joins later
    curves = {
        "small": (np.array([1.0, 2.0, 4.0, 8.0]), np.array([3.0, 2.0, 1.6, 1.5])),
        "large": (np.array([4.0, 8.0, 16.0, 32.0]), np.array([2.5, 1.4, 1.0, 0.8])),
    }
    fr = compute_frontier(curves)
    assert isinstance(fr, Frontier)
    assert fr.envelope == [
        (1.0, 3.0, "small"),
        (2.0, 2.0, "small"),
        (4.0, 1.6, "small"),
        (8.0, 1.4, "large"),
        (16.0, 1.0, "large"),
        (32.0, 0.8, "large"),
    ]
    segs = fr.segments
    assert [(s.run_id, s.C_start, s.C_end) for s in segs] == [("small", 1.0, 8.0), ("large", 8.0, 32.0)]
    assert fr.runs_on_envelope == ["small", "large"]
    # step: best loss reached with at most C; inf before anything was reached
    np.testing.assert_allclose(fr.envelope_at([0.5, 1.0, 3.0, 8.0, 100.0]), [np.inf, 3.0, 2.0, 1.4, 0.8])
    assert fr.envelope_at(5.0) == 1.6
    # interp: min over runs of log-log interpolation inside each run's range; NaN outside all ranges
    v = fr.envelope_at([0.5, 4.0, 6.0, 40.0], kind="interp")
    assert math.isnan(v[0]) and math.isnan(v[3]) and v[1] == 1.6
    small6 = math.exp(np.interp(math.log(6), np.log([4, 8]), np.log([1.6, 1.5])))
    large6 = math.exp(np.interp(math.log(6), np.log([4, 8]), np.log([2.5, 1.4])))
    assert v[2] == pytest.approx(min(small6, large6))
    np.testing.assert_allclose(fr.gap("large"), np.log([2.5 / 1.6, 1.0, 1.0, 1.0]))
    with pytest.raises(ValueError):
        fr.envelope_at(1.0, kind="cubic")


def test_frontier_fit_on_a_synthetic_sweep():
    """For Kaplan's form the frontier is exactly L_inf + K C^-(a_D p/(p+1)), p = a_N/a_D, where the optimal N lies
    inside the swept sizes; the fit on the envelope recovers it."""
    df = synthetic_sweep(n_N=7, n_D=4, evals=30, noise=0.003, seed=1)
    curves = {r: (g["flops"].to_numpy(), g["dev/loss"].to_numpy()) for r, g in df.groupby("run")}
    sizes = df.groupby("run")["n_params"].first().to_dict()
    fr = compute_frontier(curves, sizes=sizes)
    fit = fr.fit_law(bootstrap=100)
    p = TRUTH["alpha_N"] / TRUTH["alpha_D"]
    alpha_C = TRUTH["alpha_D"] * p / (p + 1)
    assert fit.params["alpha"] == pytest.approx(alpha_C, rel=0.1)
    assert fit.params["L_inf"] == pytest.approx(TRUTH["L_inf"], rel=0.05)
    assert fit.intervals["alpha"][0] <= alpha_C <= fit.intervals["alpha"][1]
    assert fit.n_groups >= 5 and fr.fit is fit
    smallest, largest = min(sizes.values()), max(sizes.values())
    C, L, R = fr.fit_points()
    assert all(smallest < sizes[r] < largest for r in R)
    d = fr.to_dict()
    assert d["segments"] and d["fit"]["law"] == "power_law"


@pytest.mark.parametrize("law", ["droppo", "hoffmann"])
def test_compute_optimal_closed_form_matches_numeric(law):
    N, D, y = joint_grid(8, 8, noise=0.005, seed=3)
    fit = fit_joint(N, D, y, law=law, bootstrap=0)
    C = np.geomspace(1e12, 1e16, 5)
    Nopt, Dopt = compute_optimal(fit, C)
    np.testing.assert_allclose(6.0 * Nopt * Dopt, C, rtol=1e-10)
    Nn, _ = compute_optimal_numeric(fit, C)
    np.testing.assert_allclose(Nopt, Nn, rtol=1e-3)
    # optimal: any other split of the same compute is worse
    for f in (0.5, 2.0):
        assert np.all(fit.predict(Nopt, Dopt) <= fit.predict(Nopt * f, Dopt / f))
    n1, d1 = compute_optimal(fit, 1e14, flops_per_param_frame=12.0)
    assert float(12.0 * n1 * d1) == pytest.approx(1e14)
