"""The seed's derived figures: frontier slopes -0.167 and -0.197 (Droppo & Elibol 2021)."""

from __future__ import annotations

import pytest

from apcscale.scaling import derived_statements


@pytest.mark.parametrize("alpha, pct, factor", [(0.167, "10.9%", "63.5x"), (0.197, "12.7%", "33.7x")])
def test_paper_figures(alpha, pct, factor):
    d = derived_statements(alpha)
    assert d["reduction_per_doubling"] == pytest.approx(1 - 2**-alpha)
    assert d["compute_to_halve"] == pytest.approx(2 ** (1 / alpha))
    assert round(d["compute_to_halve"], 1) == float(factor[:-1])
    assert abs(d["reduction_per_doubling"] * 100 - float(pct[:-1])) < 0.1
    assert d["doubling"] == f"Doubling compute cuts the reducible loss by {pct}."
    assert d["halving"] == f"Halving the reducible loss needs {factor} the compute."
    assert d["sentences"] == [d["doubling"], d["halving"]]


def test_slope_sign_and_intervals():
    assert derived_statements(-0.167)["doubling"] == derived_statements(0.167)["doubling"]
    d = derived_statements(0.197, interval=(0.167, 0.25))
    lo, hi = d["reduction_per_doubling_interval"]
    assert lo == pytest.approx(1 - 2**-0.167) and hi == pytest.approx(1 - 2**-0.25)
    assert d["compute_to_halve_interval"] == (pytest.approx(2**4), pytest.approx(2 ** (1 / 0.167)))
    assert "interval 10.9% to 15.9%" in d["doubling"] and "interval 16.0x to 63.5x" in d["halving"]
    assert "model size" in derived_statements(0.3, quantity="model size")["halving"]
    with pytest.raises(ValueError):
        derived_statements(0.0)
