"""Interval points in the joint fit, held-out predictions and the shared-asymptote test, on data
from known laws."""

import numpy as np
import pytest

from apcscale.scaling import fit_joint
from apcscale.scaling.checks import holdout, shared_floor_test
from apcscale.scaling.laws import Droppo
from apcscale.scaling.synthetic import TRUTH, droppo_loss, joint_grid


def test_interval_points_cost_nothing_inside_and_pull_from_outside():
    N, D, y = joint_grid(6, 6, noise=0.005, seed=1)
    exact = fit_joint(N, D, y, bootstrap=0)
    # replace a third of the points by wide intervals that hold the truth: the fit barely moves
    idx = np.arange(len(y)) % 3 == 0
    truth = droppo_loss(N, D)
    lo, hi = y.copy(), y.copy()
    lo[idx], hi[idx] = truth[idx] * 0.9, truth[idx] * 1.1
    centre = np.where(idx, truth * 1.05, y)  # a point estimate off the truth: only the interval counts
    mixed = fit_joint(N, D, centre, lo=lo, hi=hi, bootstrap=0)
    for k in ("L_inf", "alpha_N", "alpha_D"):
        assert mixed.params[k] == pytest.approx(exact.params[k], rel=0.05)
    assert mixed.stats["n_interval"] == idx.sum() and mixed.stats["n_exact"] == (~idx).sum()
    pred = mixed.predict(N[idx], D[idx])
    assert np.all((pred >= lo[idx]) & (pred <= hi[idx]))
    # a censored point (upper bound only) far below the law pulls the fit down towards it
    lo2, hi2 = y.copy(), y.copy()
    k = int(np.argmax(N * D))  # the largest run, where the law is lowest
    lo2[k], hi2[k] = 0.0, 0.9 * truth[k]
    pulled = fit_joint(N, D, np.where(np.arange(len(y)) == k, hi2, y), lo=lo2, hi=hi2, bootstrap=0)
    assert pulled.predict(N[k], D[k]) < exact.predict(N[k], D[k])


def test_a_law_fitted_without_its_largest_rung_predicts_it():
    N, D, y = joint_grid(6, 6, noise=0.004, seed=2)
    X = np.stack([N, D], axis=1)

    def fit(X, y, *, lo=None, hi=None):
        return fit_joint(X[:, 0], X[:, 1], y, lo=lo, hi=hi, bootstrap=50)

    res = holdout(fit, X, y, y, y, N == N.max(), level=0.9)
    assert res["n_held"] == 6 and res["n_fit"] == 30
    assert res["median_abs_error"] < 0.03 and res["coverage"] >= 0.8
    # a law that does not hold beyond its data: the truth bends at large N (a second, slower power law)
    y_bent = np.where(N >= np.sort(np.unique(N))[-1], y * 1.15, y)
    bad = holdout(fit, X, y_bent, y_bent, y_bent, N == N.max(), level=0.9)
    assert bad["median_abs_error"] > 0.08 and bad["coverage"] < 0.5


def test_shared_floor_is_kept_when_true_and_rejected_when_false():
    N, D, y = joint_grid(5, 5, noise=0.004, seed=3)
    other = dict(TRUTH, N_c=1e5, alpha_N=0.45)
    N2, D2, y2 = joint_grid(5, 5, noise=0.004, seed=4, truth=other)
    X, X2 = np.stack([N, D], 1), np.stack([N2, D2], 1)
    same = shared_floor_test({"a": (Droppo(), X, y, y, y), "b": (Droppo(), X2, y2, y2, y2)})
    assert not same["rejected"] and same["p_value"] > 0.05
    assert same["shared_floor"] == pytest.approx(TRUTH["L_inf"], rel=0.05)
    N3, D3, y3 = joint_grid(5, 5, noise=0.004, seed=5, truth=dict(other, L_inf=0.36))
    diff = shared_floor_test({"a": (Droppo(), X, y, y, y), "b": (Droppo(), np.stack([N3, D3], 1), y3, y3, y3)})
    assert diff["rejected"] and diff["p_value"] < 0.01
    assert diff["floors"]["b"] - diff["floors"]["a"] == pytest.approx(0.054, abs=0.02)
