"""Figures a reviewer accepts: the fit command's (from a fit table) and a sweep's (from a real sweep on FSDD).

What can fail is asserted: the files (PNG and vector PDF), every point drawn, units on the axes, SI tick
labels, no floor drawn that is not identifiable, legend entries exactly for what is drawn, the frontier per
architecture with its extrapolation, baselines, and the fit command reading a sweep directory."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from matplotlib.lines import Line2D

from apcscale.recipes import fit as fit_recipe
from apcscale.scaling import fit_joint, fit_table, style
from apcscale.scaling.plots import joint_figure
from apcscale.scaling.synthetic import hoffmann_runs
from apcscale.sweep import figures as F


def _legend(fig) -> list[str]:
    out = []
    for leg in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
        if leg is not None:
            out += [t.get_text() for t in leg.get_texts()]
    return out


def _lines(fig, prefix: str) -> list[Line2D]:
    return [ln for ax in fig.axes for ln in ax.get_lines() if str(ln.get_gid() or "").startswith(prefix)]


def _tick_labels(ax, which: str = "x") -> list[str]:
    ax.figure.canvas.draw()
    ticks = ax.get_xticklabels() if which == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks if t.get_text()]


# --------------------------------------------------------------------------------------
# the style
# --------------------------------------------------------------------------------------
def test_si_labels_and_log_axes_without_scientific_notation():
    assert [style.si(v) for v in (1e3, 1e4, 2.5e6, 1e9, 3e15, 0.3, 12)] == [
        "1k",
        "10k",
        "2.5M",
        "1G",
        "3P",
        "0.3",
        "12",
    ]
    fig, (ax,) = style.figure()
    ax.plot([2.0, 5.0], [2.0, 5.0])
    style.log_axis(ax, "y", "plain")
    labels = _tick_labels(ax, "y")
    assert labels == ["2", "3", "5"]
    fig, (ax,) = style.figure()
    ax.plot([0.31, 0.37], [1e8, 3e11])
    style.log_axis(ax, "x", "plain")
    style.log_axis(ax, "y", "si")
    xl, yl = _tick_labels(ax, "x"), _tick_labels(ax, "y")
    assert 2 <= len(xl) <= 6 and 2 <= len(yl) <= 6
    assert not any("times" in t or "^" in t or "e+" in t for t in xl + yl), xl + yl
    assert yl[0] in ("100M", "1G") and yl[-1] in ("100G", "1T")
    assert style.axis_label("D", "train_tokens") == "training data D (tokens)"
    assert (
        style.axis_label("N") == "model size N (parameters)" and style.axis_label("C") == "training compute C (FLOPs)"
    )


# --------------------------------------------------------------------------------------
# the fit command's figures
# --------------------------------------------------------------------------------------
def test_joint_figure_draws_every_point_of_a_continuous_table_and_no_unidentifiable_floor(tmp_path):
    table = hoffmann_runs(240, noise=0.01, seed=11)
    fit = fit_joint(table["N"], table["D"], table["loss"], law="hoffmann", bootstrap=0)
    fig = joint_figure(fit, table["N"], table["D"], table["loss"], d_label=style.axis_label("D", "tokens"))
    for ax in fig.axes[:2]:  # each panel shows all 240 runs, whatever their other covariate
        assert sum(len(ln.get_xdata()) for ln in ax.get_lines() if ln.get_gid() == "points") == 240
    assert fig.axes[0].get_xlabel() == "model size N (parameters)"
    assert fig.axes[1].get_xlabel() == "training data D (tokens)"
    title = fig._suptitle.get_text()  # mathtext: Greek letters, not "alpha/beta"
    assert r"N^{\alpha}" in title and r"\beta = " in title and "alpha/" not in title
    # a pure power law in N and D: the floor is not identifiable; it is not drawn and does not set the limits
    pure = table.assign(loss=(482.0 / table["N"] ** 0.35 + 2085.0 / table["D"] ** 0.37) * 10)
    fit = fit_joint(pure["N"], pure["D"], pure["loss"], law="hoffmann", bootstrap=0)
    assert not fit.identifiable["E"]
    fig = joint_figure(fit, pure["N"], pure["D"], pure["loss"])
    lo, hi = fig.axes[0].get_ylim()
    assert lo > 0.8 * pure["loss"].min() and hi < 1.25 * pure["loss"].max()
    assert not any("E =" in t.get_text() for ax in fig.axes for t in ax.texts)
    for label in _tick_labels(fig.axes[0], "y"):
        assert "times" not in label and "^" not in label


def test_fit_command_figures_are_png_and_pdf_with_units(tmp_path):
    table = tmp_path / "chinchilla_like.csv"
    df = hoffmann_runs(80, noise=0.01, seed=12)
    df.loc[[3, 50], "loss"] *= [1.3, 0.8]  # two outliers to circle
    df.rename(columns={"D": "train_tokens"}).to_csv(table, index=False)
    out = tmp_path / "fit"
    assert fit_recipe.main([str(table), "--law", "hoffmann", "--bootstrap", "0", "--out", str(out)]) == 0
    for stem in ("joint", "loss_vs_N", "loss_vs_D", "residuals"):
        assert (out / f"{stem}.png").stat().st_size > 20_000
        assert (out / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-"
        assert not (out / f"{stem}.svg").exists()
    res = fit_table(pd.read_csv(table), None, None, law="hoffmann", bootstrap=0, return_objects=True, influence=False)
    fit = res["objects"]["joint"]
    assert {3, 50} <= {o.row for o in fit.outliers}
    fig = joint_figure(fit, df["N"], df["D"], df["loss"], d_label=style.axis_label("D", "train_tokens"))
    assert f"flagged outliers ({len(fit.outliers)})" in _legend(fig)
    assert fig.axes[1].get_xlabel() == "training data D (tokens)"
    # a fit without outliers has no outlier legend entry
    clean = hoffmann_runs(120, noise=0.0, seed=13)
    fit = fit_joint(clean["N"], clean["D"], clean["loss"], law="hoffmann", bootstrap=0)
    assert not fit.outliers
    assert not any("outlier" in t for t in _legend(joint_figure(fit, clean["N"], clean["D"], clean["loss"])))


# --------------------------------------------------------------------------------------
# a real sweep's figures (the shared sweep of conftest.py: no pruning, one diverged run)
# --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep_tables(diverged_sweep):
    """The sweep's tables as collect() wrote them (its selection has the kinds of its L(N, D) points), and its
    fits redone with a small bootstrap."""
    sweep, _ = diverged_sweep
    from apcscale.sweep.fits import frontier_fit, joint_fit
    from apcscale.sweep.tables import curves_of

    points = pd.read_csv(sweep / "results" / "points.csv")
    runs = pd.read_csv(sweep / "results" / "runs.csv")
    selection = pd.read_csv(sweep / "results" / "selection.csv")
    curves = curves_of(points)
    sizes = dict(zip(runs["run_id"], runs["N"].astype(float)))
    fits = {"frontier": {}, "joint": {}}
    for arch in sorted(set(runs["arch"])):
        ids = set(runs.loc[runs["arch"] == arch, "run_id"])
        fits["frontier"][arch] = frontier_fit({k: v for k, v in curves.items() if k in ids}, sizes=sizes, bootstrap=50)
        fits["joint"][arch] = joint_fit(selection, arch, bootstrap=50)
    return sweep, points, runs, fits, selection


def test_the_sweep_writes_every_figure_as_png_and_pdf(sweep_tables):
    sweep = sweep_tables[0]
    for stem in ("curves", "compute", "isoflop", "law_nd"):
        assert (sweep / "results" / f"{stem}.png").stat().st_size > 20_000, stem
        assert (sweep / "results" / f"{stem}.pdf").read_bytes()[:5] == b"%PDF-", stem


def test_curves_figure_shows_every_point_D_status_frontiers_and_baselines(sweep_tables):
    sweep, points, runs, fits, selection = sweep_tables
    usable = points[(points["flops"] > 0) & np.isfinite(points["dev_loss"])]
    baselines = F.baselines_from_points(points)
    assert baselines["copy last frame"] == pytest.approx(points["copy_baseline"].median())
    fig = F.curves_figure(points, runs, fits, "my-sweep on fsdd", baselines=baselines)
    assert fig._suptitle.get_text().startswith("my-sweep on fsdd")
    drawn = _lines(fig, "run:")
    assert sum(len(ln.get_xdata()) for ln in drawn) == len(usable)  # every evaluation, none twice
    assert {ln.get_gid()[4:] for ln in drawn} == set(usable["run_id"])
    archs = sorted(set(usable["arch"]))
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split(":")[0] for ax in panels] == archs
    copy = baselines["copy last frame"]
    for ax in panels:
        assert ax.get_xlabel() == "training compute C (FLOPs)"
        assert any(list(ln.get_ydata()) == [copy, copy] for ln in ax.get_lines())  # the baseline, across the panel
    labels = _legend(fig)
    assert f"copy last frame: {copy:.3g}" in labels
    for D in sorted(usable["D"].unique()):
        assert any(t.startswith(f"D = {style.si(D)} frames") for t in labels), (D, labels)
    assert any(t.startswith("failed there") for t in labels)  # lstm-w32-d2-d7-s0 diverged
    lo, hi = fig.axes[0].get_ylim()  # its diverged loss does not set the limits
    finished = usable[usable["status"] == "finished"]["dev_loss"]
    assert hi < 1.5 * finished.max() and lo > 0.5 * finished.min()
    assert not any(t.startswith("large open marker") for t in labels)  # nothing was pruned: no such entry
    with_fit = [a for a in archs if fits["frontier"][a].get("fit") is not None]
    if with_fit:
        assert "frontier L(C) where fitted" in labels and "L(C) extrapolated" in labels
    # a run stopped by the policy gets its marker and its legend entry
    stopped = runs.copy()
    stopped.loc[stopped["run_id"] == "transformer-w16-d2-d1-s0", "status"] = "stopped"
    labels = _legend(F.curves_figure(points, stopped, fits, "x", baselines=baselines))
    assert "large open marker: stopped there (pruned)" in labels
    # no frontier fit: said in the panel's title, no fit entry in the legend
    fig = F.curves_figure(points, runs, {"frontier": {a: {"error": "too few"} for a in archs}}, "x")
    assert "frontier L(C) where fitted" not in _legend(fig)
    assert all("no L(C) fit" in ax.get_title() for ax in fig.axes if ax.get_title())


def test_compute_figure_is_one_curve_per_model_size(sweep_tables):
    sweep, points, runs, fits, selection = sweep_tables
    usable = points[(points["flops"] > 0) & np.isfinite(points["dev_loss"])]
    fig = F.compute_figure(points, runs, fits, "s")
    drawn = _lines(fig, "size:")
    assert len(drawn) == usable.groupby(["arch", "N"]).ngroups
    chosen = F.largest_data_runs(points)
    for _, r in chosen.iterrows():  # each size's curve is its run on the most data
        assert r["D"] == usable.loc[(usable["arch"] == r["arch"]) & (usable["N"] == r["N"]), "D"].max()


def test_isoflop_slices_interpolate_each_curve_and_mark_the_minimum(sweep_tables):
    sweep, points, runs, fits, selection = sweep_tables
    table = F.isoflop_table(points, n_levels=3, min_sizes=2)
    assert not table.empty
    row = table.iloc[0]
    run = points[(points["run_id"] == row["run_id"]) & (points["flops"] > 0)].sort_values("flops")
    expect = np.exp(np.interp(np.log(row["C"]), np.log(run["flops"]), np.log(run["dev_loss"])))
    assert row["loss"] == pytest.approx(expect, rel=1e-9)
    fig = F.isoflop_figure(points, "s", n_levels=3)
    levels = _lines(fig, "level:")
    assert len(levels) == table.groupby(["arch", "C"]).ngroups == len(_lines(fig, "minimum:"))
    # the parabola's vertex (Chinchilla's Approach 2) when it lies inside the sizes
    N = np.array([1e3, 1e4, 1e5])
    n_opt, l_opt, how = F.isoflop_minimum(N, 0.4 + 0.02 * (np.log10(N) - 4.3) ** 2)
    assert how == "parabola" and n_opt == pytest.approx(10**4.3, rel=1e-6) and l_opt == pytest.approx(0.4)
    assert F.isoflop_minimum(N, np.array([0.5, 0.45, 0.4]))[2] == "lowest"


def test_law_figure_draws_each_kind_of_point_and_only_what_is_drawn(sweep_tables):
    sweep, points, runs, fits, selection = sweep_tables
    sel = selection.copy()  # the sweep's own L(N, D) points: a fixed budget, so every point is "at budget"
    assert len(sel) >= 4 and set(sel["kind"]) == {"at budget"}
    fig = F.law_figure(sel, fits, "s")
    labels = _legend(fig)
    assert "at its budget (fixed budget, no stopping rule)" in labels
    assert not any(
        t.startswith(("censored", "extrapolated to", "not converged", "stopped", "not in the fit", "converged"))
        for t in labels
    )
    assert sum(len(ln.get_xdata()) for ln in _lines(fig, "point:")) == len(sel)
    assert not any(
        len(ax.collections) and any(type(c).__name__ == "LineCollection" for c in ax.collections) for ax in fig.axes
    )  # exact points (lo == hi): no error bars
    # one point of each kind, two of them left out of the fit, an interval from an extrapolation
    sel.loc[0, ["kind", "lo", "hi", "in_fit"]] = ["censored", 0.0, sel.loc[0, "loss"], False]
    sel.loc[1, ["kind", "lo"]] = ["not converged", sel.loc[1, "loss"] * 0.95]
    sel.loc[2, ["kind", "lo", "hi"]] = ["extrapolated", sel.loc[2, "loss"] * 0.95, sel.loc[2, "loss"] * 1.05]
    sel.loc[3, ["kind", "in_fit"]] = ["converged", False]
    fig = F.law_figure(sel, fits, "s", baselines={"copy last frame": 0.35})
    labels = _legend(fig)
    for text in (
        "censored: an upper bound of the converged loss",
        "not converged: bar from its extrapolation to its minimum",
        "extrapolated to convergence (with its band)",
        "converged (the minimum of its curve)",
        "not in the fit",
    ):
        assert text in labels, (text, labels)
    assert [ln.get_marker() for ln in _lines(fig, "point:censored")] == [r"$\downarrow$"]
    out = _lines(fig, "point:")
    assert sum(len(ln.get_xdata()) for ln in out if ln.get_gid().endswith(":out")) == 2
    assert sum(len(ln.get_xdata()) for ln in out) == len(sel)
    assert all(ax.get_xlabel() == "model size N (parameters)" for ax in fig.axes if ax.get_title())
    # an older selection (median_min_dev_loss, no kinds) is drawn as converged points in the fit
    old = selection.rename(columns={"loss": "median_min_dev_loss"}).drop(columns=["kind", "lo", "hi", "in_fit"])
    assert sum(len(ln.get_xdata()) for ln in _lines(F.law_figure(old, fits, "s"), "point:converged:in")) == len(old)


def test_fit_command_reads_a_sweep_directory_per_architecture(sweep_tables, tmp_path, capsys):
    sweep, points, runs, fits, selection = sweep_tables
    out = tmp_path / "fit"
    assert fit_recipe.main([str(sweep), "--out", str(out), "--bootstrap", "20"]) == 0
    printed = capsys.readouterr().out
    data = json.loads((out / "fit.json").read_text())
    assert data["by"] == "arch" and set(data["groups"]) | set(data["errors"]) == set(runs["arch"])
    lstm = data["groups"]["lstm"]
    starts = int(((points["flops"] == 0) & (points["arch"] == "lstm")).sum())
    assert starts > 0 and any(f"dropped {starts} evaluation(s) at zero compute" in w for w in lstm["warnings"])
    assert "Joint L(N, D)" in printed or "joint" in lstm["errors"]
    # the diverged run has no L(N, D) point: left out of the joint law, its NaN losses dropped with a note
    assert any("runs left out of L(N, D)" in w and "without an L(N, D) point" in w for w in lstm["warnings"])
    # when the NaN evaluation itself is recorded, it is dropped with a note (not an error)
    copy = tmp_path / "copy" / "results"
    copy.mkdir(parents=True)
    nan = points.copy()
    last = nan.index[nan["run_id"] == "lstm-w32-d2-d7-s0"][-1]
    nan.loc[last, "dev_loss"] = np.nan
    nan.to_csv(copy / "points.csv", index=False)
    runs.to_csv(copy / "runs.csv", index=False)
    assert fit_recipe.main([str(copy.parent), "--out", str(tmp_path / "nan"), "--bootstrap", "0", "--no-plots"]) == 0
    notes = json.loads((tmp_path / "nan" / "fit.json").read_text())["notes"]
    assert any("dropped 1 non-finite dev losses of 1 failed run(s): lstm-w32-d2-d7-s0" in n for n in notes)
    exact = runs["point"].isin(["converged", "at budget"])  # the sweep's own verdict on each run's point
    assert lstm["n_fit_runs"] == int(((runs["arch"] == "lstm") & exact).sum())
    assert lstm["columns"] == {"N": "N", "D": "D", "C": "flops", "loss": "dev_loss", "group": "run_id"}
    assert (out / "lstm" / "frontier.png").is_file() and (out / "transformer" / "frontier.pdf").is_file()
    if all("frontier" in g["fits"] for g in data["groups"].values()):
        assert (out / "frontiers.png").is_file()
    # its own FLOPs per frame: the plan's counts, per architecture
    from apcscale.scaling.sweep_input import read_sweep

    table = read_sweep(sweep)
    plan = json.loads((sweep / "plan.json").read_text())
    for r in plan["runs"]:  # (a Transformer's attention term varies a little with the subset's utterance lengths)
        cost = table.costs[r["arch"]]
        assert cost.per_frame(r["N"]) == pytest.approx(r["flops_per_frame"], rel=0.01)
        assert cost.per_frame(r["N"]) / r["N"] > 6.0  # more than 6 N: the layers outside N and attention
    assert table.baselines["copy last frame"] == pytest.approx(points["copy_baseline"].median())
    baselines = json.loads((sweep / "baselines.json").read_text())
    drawn = F.figure_baselines(baselines, points)
    assert drawn["copy last frame"] == pytest.approx(baselines["copy_last_frame"])
    assert any(k.startswith("linear predictor (k=") for k in drawn)
    # its points.csv directly gives the same groups; --by none pools them
    assert (
        fit_recipe.main(
            [str(sweep / "results" / "points.csv"), "--out", str(tmp_path / "p"), "--bootstrap", "0", "--no-plots"]
        )
        == 0
    )
    assert set(json.loads((tmp_path / "p" / "fit.json").read_text())["groups"]) == set(data["groups"])
    assert (
        fit_recipe.main(
            [str(sweep), "--by", "none", "--out", str(tmp_path / "pooled"), "--bootstrap", "0", "--no-plots"]
        )
        == 0
    )
    pooled = json.loads((tmp_path / "pooled" / "fit.json").read_text())
    usable = points[(points["flops"] > 0) & np.isfinite(points["dev_loss"])]  # the diverged run has no usable row
    assert "groups" not in pooled and pooled["n_runs"] == usable["run_id"].nunique() == points["run_id"].nunique() - 1
