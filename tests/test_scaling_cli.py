"""The fit command and fit_table: any table, any domain; JSON, summary and plots; no torch, no ray."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from apcscale.recipes import fit as fit_recipe
from apcscale.scaling import FitError, FitResult, fit_table
from apcscale.scaling.synthetic import joint_grid, synthetic_sweep


def test_fit_command_on_a_sweep_table(tmp_path, capsys):
    table = tmp_path / "sweep.parquet"
    synthetic_sweep(n_N=5, n_D=5, evals=15, seed=2).to_parquet(table)
    out = tmp_path / "fit"
    assert fit_recipe.main([str(table), "--out", str(out), "--bootstrap", "50"]) == 0
    printed = capsys.readouterr().out
    assert "Doubling compute cuts the reducible loss by" in printed and "Joint L(N, D) (droppo)" in printed
    data = json.loads((out / "fit.json").read_text())
    assert set(data["fits"]) == {"frontier", "joint", "L_N", "L_D"}
    assert data["columns"] == {"N": "n_params", "D": "train_frames", "C": "flops", "loss": "dev/loss", "group": "run"}
    joint = data["fits"]["joint"]
    assert set(joint["params"]) == {"L_inf", "N_c", "D_c", "alpha_N", "alpha_D"}
    assert all(len(v) == 2 for v in joint["intervals"].values())
    assert data["fits"]["frontier"]["segments"] and data["fits"]["frontier"]["fit"]["params"]["alpha"] > 0
    assert data["statements"]["frontier"]["doubling"].startswith("Doubling compute")
    assert len(data["compute_optimal"]["N_opt"]) == 5
    summary = (out / "summary.txt").read_text()
    assert "Halving the reducible loss needs" in summary and "compute-optimal" in summary
    for stem in ("frontier", "joint", "loss_vs_N", "loss_vs_D", "residuals"):
        assert (out / f"{stem}.png").stat().st_size > 10_000
        assert (out / f"{stem}.pdf").read_bytes().startswith(b"%PDF")


def test_columns_decide_the_laws_and_flags_map_names(tmp_path):
    N, D, y = joint_grid(6, 6, noise=0.01, seed=1)
    df = pd.DataFrame({"width_params": N, "tokens_seen_total": D, "bpc": y})
    res = fit_table(
        df,
        {"N": "width_params", "D": "tokens_seen_total", "loss": "bpc"},
        tmp_path / "a",
        law="hoffmann",
        bootstrap=30,
        plots=False,
    )
    assert set(res["fits"]) == {"joint", "L_N", "L_D"} and res["fits"]["joint"]["law"] == "hoffmann"
    assert (tmp_path / "a" / "fit.json").is_file() and not list((tmp_path / "a").glob("*.png"))
    # only N and the loss: L(N) alone
    only = pd.DataFrame(
        {"params": np.geomspace(1e5, 1e8, 10), "val_loss": 0.3 + (1e5 / np.geomspace(1e5, 1e8, 10)) ** 0.3}
    )
    res = fit_table(only, None, None, bootstrap=30, return_objects=True)
    assert set(res["fits"]) == {"L_N"} and isinstance(res["objects"]["L_N"], FitResult)
    assert "summary" in res and "L(N) on every row (no D column)" in res["summary"]
    # a role switched off
    df2 = synthetic_sweep(n_N=3, n_D=3, evals=8)
    res = fit_table(df2, {"C": "none"}, None, bootstrap=20)
    assert "frontier" not in res["fits"] and "joint" in res["fits"]


def test_unfittable_law_is_reported_not_fatal():
    N, D, y = joint_grid(6, 2, noise=0.005, seed=5)  # two data sizes: L(D) cannot be fitted, the rest can
    res = fit_table(pd.DataFrame({"N": N, "D": D, "loss": y}), None, None, bootstrap=0, plots=False)
    assert set(res["fits"]) == {"joint", "L_N"}
    assert "too few points: 2 usable rows" in res["errors"]["L_D"]
    assert "Not fitted:" in res["summary"]
    tiny = pd.DataFrame({"N": [1e5, 1e6, 1e7], "loss": [1.2, 0.9, 0.8]})
    with pytest.raises(FitError, match="no law could be fitted: L_N: too few points"):
        fit_table(tiny, None, None)


def test_drop_bad_rows_in_the_cli(tmp_path):
    N, D, y = joint_grid(5, 5, noise=0.01, seed=4)
    y[3] = np.nan
    table = tmp_path / "runs.csv"
    pd.DataFrame({"N": N, "D": D, "loss": y}).to_csv(table, index=False)
    assert (
        fit_recipe.main([str(table), "--out", str(tmp_path / "o"), "--no-plots", "--drop-bad", "--bootstrap", "20"])
        == 0
    )
    data = json.loads((tmp_path / "o" / "fit.json").read_text())
    assert any("rows 3 (nan)" in w and "dropped" in w for w in data["warnings"])
    assert data["n_rows"] == 24


def test_scaling_imports_neither_torch_nor_ray():
    code = (
        "import sys, apcscale.scaling, apcscale.scaling.plots, apcscale.recipes.fit; "
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'ray', 'lightning', 'torchaudio')); "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
