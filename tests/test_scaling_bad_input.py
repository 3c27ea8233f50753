"""Bad input never gives a silent fit: a clear FitError, or a warning that names the rows."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from apcscale.scaling import FitError, compute_frontier, extrapolate_curve, fit_joint, fit_power_law, fit_table
from apcscale.scaling.synthetic import joint_grid


def _curve(n=20, seed=0):
    rng = np.random.default_rng(seed)
    x = np.geomspace(1e6, 1e9, n)
    return x, (0.4 + (3e6 / x) ** 0.35) * np.exp(0.005 * rng.standard_normal(n))


@pytest.mark.parametrize(
    "value, word", [(np.nan, "NaN"), (np.inf, "infinite"), (-0.2, "zero or negative"), (0.0, "zero or negative")]
)
def test_bad_loss_values_raise_naming_the_rows(value, word):
    x, y = _curve()
    y[[3, 11]] = value
    with pytest.raises(FitError, match=rf"loss: 2 {word} values at rows 3 .*, 11"):
        fit_power_law(x, y)


def test_bad_rows_dropped_on_request_with_a_warning():
    x, y = _curve()
    y[4] = np.nan
    x[7] = -1.0
    fit = fit_power_law(x, y, on_bad="drop", bootstrap=20)
    assert fit.n_points == 18
    text = " ".join(fit.warnings)
    assert "row 4" in text and "row 7" in text and "dropped" in text
    assert np.isnan(fit.residuals[[4, 7]]).all() and np.isfinite(np.delete(fit.residuals, [4, 7])).all()


def test_bad_covariates_raise():
    N, D, y = joint_grid(6, 6)
    D = D.copy()
    D[2] = 0.0
    with pytest.raises(FitError, match="D: 1 zero or negative value at row 2"):
        fit_joint(N, D, y)


def test_labels_name_rows_in_messages():
    x, y = _curve(8)
    y[2] = np.nan
    with pytest.raises(FitError, match="run-c"):
        fit_power_law(x, y, labels=[f"run-{c}" for c in "abcdefgh"])


def test_too_few_points():
    with pytest.raises(FitError, match="too few points: 4 usable rows for a law with 3 parameters"):
        fit_power_law([1, 2, 3, 4], [1.0, 0.8, 0.7, 0.65])
    N, D, y = joint_grid(2, 3)
    with pytest.raises(FitError, match="too few points: 6 usable rows for a law with 5 parameters"):
        fit_joint(N, D, y)


def test_constant_columns():
    x, y = _curve()
    with pytest.raises(FitError, match="column x is constant"):
        fit_power_law(np.full(20, 1e6), y)
    with pytest.raises(FitError, match="the loss is constant"):
        fit_power_law(x, np.full(20, 0.5))
    N, D, y = joint_grid(6, 6)
    with pytest.raises(FitError, match="column N is constant"):
        fit_joint(np.full_like(N, 1e6), D, y)


def test_shape_and_type_errors():
    with pytest.raises(FitError, match="different lengths"):
        fit_power_law(np.arange(1, 10), np.ones(8))
    with pytest.raises(FitError, match="not numeric"):
        fit_power_law(["a", "b", "c", "d", "e", "f"], np.linspace(1, 0.5, 6))
    x, y = _curve()
    with pytest.raises(FitError, match="groups: 3 labels for 20 rows"):
        fit_power_law(x, y, groups=["a", "b", "c"])
    with pytest.raises(ValueError, match="law must be one of"):
        fit_joint([1, 2], [1, 2], [1, 2], law="kaplan")


def test_narrow_range_warns():
    x = np.linspace(1e6, 3e6, 12)
    y = 0.4 + (3e5 / x) ** 0.35
    fit = fit_power_law(x, y, bootstrap=20)
    assert any("less than one order of magnitude" in w for w in fit.warnings)


def test_table_checks_name_rows_and_columns():
    df = pd.DataFrame(
        {
            "run": list("abcdef"),
            "params": [1e5, 2e5, 4e5, 8e5, 1.6e6, 3.2e6],
            "val_loss": [1.0, 0.9, "oops", 0.7, -1, 0.6],
        }
    )
    with pytest.raises(
        FitError, match=r"column 'val_loss' \(loss\): 2 row\(s\) not a finite number > 0: rows 2 \('oops'\), 4 \(-1\)"
    ):
        fit_table(df, None, None)
    with pytest.raises(FitError, match="no loss column"):
        fit_table(df.rename(columns={"val_loss": "zzz"}), None, None)
    with pytest.raises(FitError, match="--n 'nope': no such column"):
        fit_table(df, {"N": "nope"}, None)


def test_frontier_and_extrapolation_inputs():
    with pytest.raises(FitError, match="no run has a usable"):
        compute_frontier({"a": ([np.nan], [1.0])})
    with pytest.raises(FitError, match="different lengths"):
        compute_frontier({"a": ([1, 2, 3], [1.0, 0.9])})
    p = extrapolate_curve([1, 2, np.nan, 4], [1.0, 0.9, 0.8, np.inf], 10)
    assert p.flag == "too_few_points" and p.lo == 0.0 and p.details["ignored"] == 2
    with pytest.raises(ValueError, match="x_target"):
        extrapolate_curve(np.arange(1, 20), np.linspace(1, 0.5, 19), -5)


def test_cli_reports_bad_input_and_exits_2(tmp_path):
    table = tmp_path / "runs.csv"
    pd.DataFrame({"N": [1e5, 2e5, 4e5, 8e5, 1.6e6, 3.2e6], "loss": [1.0, 0.9, np.nan, 0.7, 0.65, 0.6]}).to_csv(
        table, index=False
    )
    res = subprocess.run(
        [sys.executable, "-m", "apcscale.recipes.fit", str(table), "--out", str(tmp_path / "o"), "--no-plots"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2
    assert "row(s) not a finite number > 0: rows 2 (nan)" in res.stderr and "--drop-bad" in res.stderr
