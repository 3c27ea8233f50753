"""The report's answer (apcscale.sweep.answer): which model for this compute and this much audio, and how
good, on a study whose truth is known; and from the frontier alone when no L(N, D) law could be fitted."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from apcscale.sweep.answer import answer_table
from apcscale.sweep.fits import frontier_fit, joint_fit

E, A, B, a, b = 0.30, 2.0, 30.0, 0.30, 0.35  # L(N, F) = E + A N^-a + B F^-b: F frames trained, C = 6 N F
SIZES = [1e3, 4e3, 1.6e4, 6.4e4]
D_SUBSETS = [1e4, 4e4, 1.6e5, 6.4e5]


def truth(N, F):
    return E + A * np.asarray(N, float) ** -a + B * np.asarray(F, float) ** -b


def study():
    """Each size trained on the largest subset with 16 evaluations over 1e4..1e7 frames (its curve in C), and
    its converged loss on every subset (a law in N and D: D bounds the frames that help)."""
    curves, runs, sel = {}, [], []
    F = np.geomspace(1e4, 1e7, 16)
    for N in SIZES:
        rid = f"lstm-{int(N)}"
        curves[rid] = (6 * N * F, truth(N, F))
        runs.append(
            {
                "run_id": rid,
                "arch": "lstm",
                "N": N,
                "D": D_SUBSETS[-1],
                "planned_flops": 6 * N * 1e7,
                "planned_frames": 1e7,
            }
        )
        for D in D_SUBSETS:
            loss = float(truth(N, 3 * D))  # converged: as if the useful frames were 3 passes of D
            sel.append(
                {
                    "arch": "lstm",
                    "N": N,
                    "D": D,
                    "loss": loss,
                    "lo": loss,
                    "hi": loss,
                    "in_fit": True,
                    "kind": "converged",
                }
            )
    return curves, pd.DataFrame(runs), pd.DataFrame(sel)


@pytest.fixture(scope="module")
def fitted():
    curves, runs, sel = study()
    sizes = dict(zip(runs["run_id"], runs["N"]))
    fr = frontier_fit(curves, sizes=sizes, bootstrap=30)
    jf = joint_fit(sel, "lstm", bootstrap=30)
    assert "fit" in fr and fr.get("fit") is not None and "fit" in jf, (fr.get("error"), jf.get("error"))
    return curves, runs, fr, jf


def test_the_answer_follows_the_envelope_and_the_data_law(fitted):
    curves, runs, fr, jf = fitted
    rows, notes = answer_table({"frontier": {"lstm": fr}, "joint": {"lstm": jf}}, runs)
    d_max = runs["D"].max()
    assert sorted({r["D"] for r in rows}) == [d_max, 10 * d_max] and len(rows) == 8
    inside = [r for r in rows if r["inside"]]
    assert inside, rows
    for r in inside:
        # the best loss any trained size reaches with C: the envelope the frontier was fitted to
        best = min(float(truth(N, r["C"] / (6 * N))) for N in SIZES if r["C"] / (6 * N) >= 1e4)
        expected = max(best, float(jf["fit"].predict(r["N"], r["D"])))
        assert r["loss"] == pytest.approx(expected, rel=0.03), r
        assert r["lo"] <= r["loss"] <= r["hi"] and SIZES[0] <= r["N"] <= SIZES[-1]
    by_c = sorted((r["C"], r["N"]) for r in rows if r["D"] == d_max)
    assert [n for _, n in by_c] == sorted(n for _, n in by_c)  # a larger budget, a larger model
    far = [r for r in rows if r["C"] > 5 * fr["fit"].diagnostics["fit_range"][1]]  # the 10x budget
    assert far and all(not r["inside"] and any("frontier's data" in w for w in r["beyond"]) for r in far)
    more_data = [r for r in rows if r["D"] > d_max]
    assert all(any("x the corpus" in w for w in r["beyond"]) for r in more_data)


def test_without_an_L_N_D_law_the_answer_comes_from_the_frontier_on_this_corpus_only(fitted):
    curves, runs, fr, _ = fitted
    failed = {"error": "lstm: only 0 converged points (at least 6 needed; 16 more are intervals ...)"}
    rows, notes = answer_table({"frontier": {"lstm": fr}, "joint": {"lstm": failed}}, runs)
    assert rows and {r["D"] for r in rows} == {runs["D"].max()}  # no row for more data than the corpus
    assert all(r["binds"] == "compute*" and math.isfinite(r["loss"]) for r in rows)
    for r in rows:
        assert r["loss"] == pytest.approx(float(fr["fit"].predict(r["C"])))
        beyond_compute = r["C"] > fr["fit"].diagnostics["fit_range"][1] * 1.0001
        assert beyond_compute == any("may limit" in w for w in r["beyond"])
    assert any("no L(N, D) fitted" in n and "frontier alone" in n for n in notes)
    # and with no frontier either, the study says it cannot answer
    rows, notes = answer_table({"frontier": {"lstm": {"error": "1 curve(s)"}}, "joint": {}}, runs)
    assert rows == [] and "cannot answer" in notes[-1]
