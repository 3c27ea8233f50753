"""fit_table and the fit command on tables that used to mislead: a fixed Huber delta reproduces known parameters,
outliers report how far they move the fit, continuous covariates are not read as 'best per value', a named
law needs its columns, repeated rows are warned, and the compute-optimal table uses the cost it is given."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from apcscale.recipes import fit as fit_recipe
from apcscale.scaling import FitError, fit_joint, fit_table
from apcscale.scaling.frontier import TrainingCost, compute_optimal, compute_optimal_numeric
from apcscale.scaling.synthetic import EPOCH_HOFFMANN, hoffmann_runs, joint_grid


def test_fixed_delta_reproduces_known_parameters_to_3_decimals(tmp_path, capsys):
    """Epoch AI's Chinchilla fit through the command line: --law hoffmann --delta 1e-3 on 240 runs of a
    table shaped like theirs, generated from their parameters."""
    table = tmp_path / "chinchilla_like.csv"
    hoffmann_runs(240, noise=0.0, seed=1).to_csv(table, index=False)
    out = tmp_path / "fit"
    assert (
        fit_recipe.main(
            [str(table), "--law", "hoffmann", "--delta", "1e-3", "--bootstrap", "0", "--no-plots", "--out", str(out)]
        )
        == 0
    )
    printed = capsys.readouterr().out
    data = json.loads((out / "fit.json").read_text())
    joint = data["fits"]["joint"]
    for k in ("E", "alpha", "beta"):
        assert abs(joint["params"][k] - EPOCH_HOFFMANN[k]) < 5e-4, (k, joint["params"][k])
    assert joint["stats"]["huber_delta"] == 1e-3 and data["delta"] == 1e-3
    assert "Huber delta 0.001 (fixed); objective" in printed
    # with noise, the command gives exactly what the library gives with the same delta
    noisy = hoffmann_runs(240, noise=0.01, seed=2)
    noisy.to_csv(table, index=False)
    assert (
        fit_recipe.main(
            [str(table), "--law", "hoffmann", "--delta", "0.001", "--bootstrap", "0", "--no-plots", "--out", str(out)]
        )
        == 0
    )
    cli = json.loads((out / "fit.json").read_text())["fits"]["joint"]["params"]
    lib = fit_joint(noisy["N"], noisy["D"], noisy["loss"], law="hoffmann", delta=1e-3, bootstrap=0).params
    assert cli == pytest.approx(lib, rel=1e-9)
    # the automatic delta is another fit, and says so
    assert fit_recipe.main([str(table), "--law", "hoffmann", "--bootstrap", "0", "--no-plots", "--out", str(out)]) == 0
    auto = json.loads((out / "fit.json").read_text())["fits"]["joint"]
    assert auto["stats"]["huber_delta"] != 1e-3 and "auto: 1.345 x the MAD" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # argparse: "--delta must be > 0"
        fit_recipe.main([str(table), "--delta", "-1"])
    assert "--delta must be > 0" in capsys.readouterr().err


def test_flagged_outliers_report_their_influence_and_when_the_conclusion_depends_on_them():
    """Five runs at 0.04-0.4 tokens per parameter with inflated losses (as the five Epoch AI excluded from
    Chinchilla's table) pull the exponents of a 120-run table well away from the truth."""
    clean = hoffmann_runs(120, noise=0.007, seed=3, tokens_per_param=(5, 30))
    bad = hoffmann_runs(5, noise=0.0, seed=4, N_range=(2e9, 7e9), tokens_per_param=(0.04, 0.4))
    bad["loss"] *= [1.2, 1.3, 1.45, 1.6, 1.1]
    table = pd.concat([clean, bad], ignore_index=True)
    res = fit_table(table, None, None, law="hoffmann", bootstrap=100)
    flagged = {o["row"] for o in res["fits"]["joint"]["outliers"]}
    assert set(range(120, 124)) <= flagged  # the four worst (the +10% run hides behind them)
    for o in res["fits"]["joint"]["outliers"]:
        assert (o["z"] > 0) == ("above the fit" in o["reason"])  # the sign of z matches the words
    info = res["influence"]["joint"]
    assert info["depends"] and "beta" in info["moved"]
    assert len(info["each"]) == len(flagged) and all(e["largest_moves"] for e in info["each"])
    full_beta, without_beta = res["fits"]["joint"]["params"]["beta"], info["all"]["beta"]
    assert abs(full_beta - EPOCH_HOFFMANN["beta"]) > 0.05  # the outliers moved it...
    assert abs(without_beta - EPOCH_HOFFMANN["beta"]) < 0.03  # ...and the refit without them recovers it
    assert "The conclusion depends on" in res["summary"] and "Check those runs" in res["summary"]
    # without the bad runs, nothing depends on a handful of points
    res = fit_table(clean, None, None, law="hoffmann", bootstrap=100)
    info = res["influence"].get("joint")
    assert info is None or (not info["depends"] and "every exponent agrees" in info["statement"])
    assert "The conclusion depends on" not in res["summary"]


def test_continuous_covariates_are_binned_or_refused():
    # Chinchilla-like: no two runs share a D. The best loss at each D would be every run.
    table = hoffmann_runs(240, noise=0.005, seed=5)
    res = fit_table(table, None, None, law="hoffmann", bootstrap=20, plots=False, influence=False)
    assert "L_D" in res["fits"] and res["fits"]["L_D"]["n_points"] < 40
    assert "1/10-decade bin of D holding runs at 3+ values of N" in res["summary"]
    # the same D values with one model size per D bin: refused, with the reason, and no statement about data
    one = table.copy()
    one["N"] = 1e9 * (1 + (np.arange(len(one)) % 2))  # two model sizes only
    res = fit_table(one, None, None, law="hoffmann", bootstrap=0, plots=False, influence=False)
    assert "L_D" not in res["fits"]
    assert "D is continuous (240 distinct values in 240 rows)" in res["errors"]["L_D"]
    assert "0 bin(s) hold runs at 3 or more values of N" in res["errors"]["L_D"]
    assert "the data." not in res["summary"].split("Not fitted")[0].split("L(D)")[-1]
    # a grid is read per value, as before
    N, D, y = joint_grid(6, 6, noise=0.005, seed=6)
    res = fit_table(pd.DataFrame({"N": N, "D": D, "loss": y}), None, None, bootstrap=0, plots=False, influence=False)
    assert res["fits"]["L_D"]["n_points"] == 6 and "L(D) on the best loss at each D\n" in res["summary"]


def test_a_named_law_needs_its_columns(tmp_path, capsys):
    table = tmp_path / "runs.csv"
    pd.DataFrame({"N": np.geomspace(1e5, 1e8, 10), "loss": 0.3 + (1e5 / np.geomspace(1e5, 1e8, 10)) ** 0.3}).to_csv(
        table, index=False
    )
    assert fit_recipe.main([str(table), "--law", "hoffmann", "--no-plots", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--law hoffmann fits L(N, D) and needs a D column (training-set size: --d COL)" in err
    assert not (tmp_path / "o" / "fit.json").exists()
    # without --law the same table gives L(N) alone, as before
    assert fit_recipe.main([str(table), "--no-plots", "--out", str(tmp_path / "o")]) == 0


def test_repeated_rows_without_a_run_column_are_warned():
    N, D, y = joint_grid(5, 5, noise=0.01, seed=7)
    df = pd.DataFrame({"N": N, "D": D, "loss": y})
    doubled = pd.concat([df, df.iloc[[3, 8]]], ignore_index=True)
    res = fit_table(doubled, None, None, bootstrap=0, plots=False, influence=False)
    w = [x for x in res["warnings"] if "repeat an earlier row exactly" in x]
    assert len(w) == 1 and "rows 25 (= row 3), 26 (= row 8)" in w[0] and "--group" in w[0]
    res = fit_table(df, None, None, bootstrap=0, plots=False, influence=False)
    assert not any("repeat" in x for x in res["warnings"])
    # with a run column, rows of one run are expected to share values
    runs = doubled.assign(run=[f"r{i}" for i in range(25)] + ["r3", "r8"])
    res = fit_table(runs, None, None, bootstrap=0, plots=False, influence=False)
    assert not any("repeat" in x for x in res["warnings"])


def test_compute_optimal_follows_the_cost_it_is_given():
    N, D, y = joint_grid(8, 8, noise=0.005, seed=8)
    fit = fit_joint(N, D, y, bootstrap=0)
    C = np.geomspace(1e13, 1e17, 4)
    # 6 N per frame, 3 passes: the closed form with k = 18
    n3, d3 = compute_optimal(fit, C, cost=TrainingCost(passes=3.0))
    n18, d18 = compute_optimal(fit, C, flops_per_param_frame=18.0)
    np.testing.assert_allclose(n3, n18)
    np.testing.assert_allclose(d3, d18)
    # measured FLOPs per frame that are exactly 6 N: the numeric search finds the closed form
    sizes = np.geomspace(1e5, 1e7, 5)
    measured = TrainingCost(sizes=tuple(sizes), flops_per_frame=tuple(6 * sizes))
    nm, dm = compute_optimal(fit, C, cost=measured)
    n6, d6 = compute_optimal(fit, C)
    np.testing.assert_allclose(nm, n6, rtol=1e-3)
    # FLOPs per frame with a fixed overhead (layers outside N): the minimum along that cost, checked by brute force
    overhead = TrainingCost(sizes=tuple(sizes), flops_per_frame=tuple(6 * sizes + 2e5), passes=2.0)
    no, do = compute_optimal(fit, C, cost=overhead)
    np.testing.assert_allclose(overhead(no, do), C, rtol=1e-9)
    for c, n in zip(C, no):
        grid = np.geomspace(1e3, 1e9, 20001)
        losses = fit.predict(grid, c / (overhead.per_frame(grid) * 2.0))
        assert n == pytest.approx(grid[np.argmin(losses)], rel=2e-3)
    assert not np.allclose(no, n6, rtol=0.05)  # the overhead and the passes do change the answer
    # the numeric cross-check of the closed form still agrees
    np.testing.assert_allclose(compute_optimal_numeric(fit, C)[0], n6, rtol=1e-4)
    with pytest.raises(ValueError):
        TrainingCost(passes=0.0)


def test_a_bad_delta_or_law_is_a_clear_error():
    N, D, y = joint_grid(5, 5, noise=0.01, seed=9)
    df = pd.DataFrame({"N": N, "D": D, "loss": y})
    with pytest.raises(FitError, match="delta must be 'auto' or a number > 0"):
        fit_table(df, None, None, delta=0.0)
    with pytest.raises(FitError, match="law must be one of droppo, hoffmann"):
        fit_table(df, None, None, law="kaplan")


def test_by_fits_each_group_of_any_table_on_its_own(tmp_path):
    a = hoffmann_runs(60, noise=0.002, seed=20).assign(family="a")
    b = hoffmann_runs(60, noise=0.002, seed=21, truth={**EPOCH_HOFFMANN, "beta": 0.5}).assign(family="b")
    table = tmp_path / "two.csv"
    pd.concat([a, b], ignore_index=True).to_csv(table, index=False)
    out = tmp_path / "by"
    assert (
        fit_recipe.main(
            [
                str(table),
                "--by",
                "family",
                "--law",
                "hoffmann",
                "--bootstrap",
                "0",
                "--no-plots",
                "--passes",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads((out / "fit.json").read_text())
    assert set(data["groups"]) == {"a", "b"} and (out / "a" / "fit.json").is_file()
    beta = {g: data["groups"][g]["fits"]["joint"]["params"]["beta"] for g in ("a", "b")}
    assert beta["a"] == pytest.approx(EPOCH_HOFFMANN["beta"], abs=0.03) and beta["b"] == pytest.approx(0.5, abs=0.05)
    assert data["groups"]["a"]["compute_optimal"]["passes"] == 2.0
    with pytest.raises(FitError, match="--by 'nope': no such column"):
        from apcscale.scaling import fit_by

        fit_by(pd.read_csv(table), "nope")
