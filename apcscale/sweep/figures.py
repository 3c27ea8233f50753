"""The figures of a sweep, in the project's style (apcscale.scaling.style): PNG and PDF, one panel per
architecture, colours safe for colour-blind readers, units on every axis.

* ``curves``: every run's dev loss against training compute; colour = model size N, marker = data size D
  (along the curve and, larger, at its end: filled if the run finished its budget, open if it was stopped,
  a cross if it failed); the architecture's envelope and its frontier L(C) with its band, solid where
  fitted and dashed beyond; baselines as labelled horizontal lines.
* ``compute``: Droppo & Elibol's Figure 5 view: one curve per model size (its largest-data run), coloured
  by N, the frontier L(C) dashed.
* ``isoflop``: loss against N at a few fixed compute levels (each run's curve interpolated log-log at that
  compute; the best run of each size), the minimum marked: the picture of Chinchilla's Approach 2.
* ``law_nd``: the selected losses against N for each D (colour), their kind as the marker (converged,
  not converged, extrapolated with its band, censored: an upper bound, drawn as a down-arrow), open when
  left out of the fit; the fitted L(N, D) per D with its band, dashed beyond the data's N.

Inputs: the sweep's ``points`` (results/points.csv) and ``runs`` (runs.csv) tables, ``fits`` as
collect() builds them ({"frontier": {arch: {"fit": FitResult, ...}}, "joint": {arch: {...}}}),
``baselines`` ({label: dev loss}) and, for law_nd, a ``selection`` with columns arch, N, D, loss, lo, hi,
kind, in_fit (a selection with median_min_dev_loss instead of loss is read as converged points in the fit).
Every function returns the paths it wrote (none when there is nothing to draw).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from apcscale.scaling import style
from apcscale.scaling.plots import extrapolation_grid, param_text

STOPPED = ("stopped", "pruned")
FAILED = ("failed",)
KINDS = {  # kind -> (marker, label); the kinds of apcscale.sweep.points, and "extrapolated"
    "converged": ("o", "converged (the minimum of its curve)"),
    "at budget": ("h", "at its budget (fixed budget, no stopping rule)"),
    "not converged": ("s", "not converged: bar from its extrapolation to its minimum"),
    "stopped": ("D", "stopped by the scheduler: bar from its extrapolation to its minimum"),
    "extrapolated": ("D", "extrapolated to convergence (with its band)"),
    "censored": (r"$\downarrow$", "censored: an upper bound of the converged loss"),
}
FRAMES_PER_SECOND = 100.0


def _frames(D: float) -> str:
    seconds = D / FRAMES_PER_SECOND
    t = (
        f"{seconds / 3600:.2g} h"
        if seconds >= 3600
        else f"{seconds / 60:.2g} min"
        if seconds >= 60
        else f"{seconds:.2g} s"
    )
    return f"{style.si(D)} frames ({t})"


def baselines_from_points(points: pd.DataFrame) -> dict[str, float]:
    """{"copy last frame": its dev loss} from the points' copy_baseline column (empty if absent)."""
    if "copy_baseline" not in points.columns:
        return {}
    v = pd.to_numeric(points["copy_baseline"], errors="coerce")
    v = v[np.isfinite(v) & (v > 0)]
    return {"copy last frame": float(v.median())} if len(v) else {}


def figure_baselines(baselines: Mapping[str, Any] | None, points: pd.DataFrame | None = None) -> dict[str, float]:
    """{label: dev loss} to draw, from a sweep's baselines.json (copy-last-frame; the linear predictor fitted
    on the largest subset, the strongest of them) or, without it, from the points' copy_baseline column."""
    out: dict[str, float] = {}
    b = dict(baselines or {})
    copy = b.get("copy_last_frame")
    if copy is not None and np.isfinite(copy) and copy > 0:
        out["copy last frame"] = float(copy)
    elif points is not None:
        out.update(baselines_from_points(points))
    lin = b.get("linear") or {}
    by_subset = lin.get("by_subset") or {}
    if by_subset:
        last = list(by_subset)[-1]  # subsets are listed smallest first
        v = by_subset[last]
        if v is not None and np.isfinite(v) and v > 0:
            k = lin.get("k")
            out[f"linear predictor ({f'k={k}, ' if k else ''}fitted on {last})"] = float(v)
    return out


def _usable(points: pd.DataFrame) -> pd.DataFrame:
    loss = pd.to_numeric(points["dev_loss"], errors="coerce")
    return points[(points["flops"] > 0) & np.isfinite(loss) & (loss > 0)]


def _archs(df: pd.DataFrame) -> list[str]:
    return sorted(set(df["arch"].astype(str)))


def _si_fmt():
    return FuncFormatter(lambda v, _p: style.si(v))


def _draw_baselines(ax, baselines: Mapping[str, float] | None) -> list[float]:
    return style.baseline_lines(ax, baselines)


def _frontier_fit(fits: Mapping[str, Any], arch: str):
    entry = (fits or {}).get("frontier", {}).get(arch) or {}
    return entry.get("fit"), entry.get("error")


def _draw_frontier_fit(ax, fit, C_lo: float, C_hi: float, color: str = style.FIT, dashed_only: bool = False) -> list:
    """L(C) with its band: solid over its fitted range, dashed beyond (or dashed throughout)."""
    rng = fit.diagnostics.get("fit_range", (C_lo, C_hi))
    grid = extrapolation_grid(rng, C_lo, C_hi)
    pred = fit.predict(grid)
    handles = []
    if fit.theta_samples is not None and len(fit.theta_samples) > 1:
        lo, hi = fit.predict_interval(grid)
        ax.fill_between(grid, lo, hi, color=color, alpha=0.16, lw=0, zorder=2)
        handles.append(Patch(facecolor=color, alpha=0.25, lw=0, label=f"{int(round(fit.level * 100))}% band of L(C)"))
    inside = (grid >= rng[0]) & (grid <= rng[1])
    label = "frontier L(C)"
    if dashed_only:
        ax.plot(grid, pred, "--", color=color, lw=1.3, zorder=4)
        handles.insert(0, Line2D([], [], color=color, ls="--", lw=1.3, label=label))
        return handles
    ax.plot(grid[inside], pred[inside], "-", color=color, lw=1.4, zorder=4)
    extrap = False
    for part in (grid <= rng[0], grid >= rng[1]):
        if part.sum() > 1:
            ax.plot(grid[part], pred[part], "--", color=color, lw=1.2, zorder=4)
            extrap = True
    handles.insert(0, Line2D([], [], color=color, lw=1.4, label="frontier L(C) where fitted"))
    if extrap:
        handles.insert(1, Line2D([], [], color=color, lw=1.2, ls="--", label="L(C) extrapolated"))
    return handles


def _dedupe(handles: list) -> list:
    seen, out = set(), []
    for h in handles:
        if h.get_label() not in seen:
            seen.add(h.get_label())
            out.append(h)
    return out


def _finish(fig, axes, ys, baselines, xlabel, ylabel, title):
    style.loss_limits(axes[0], np.concatenate([np.asarray(y, float) for y in ys] + [np.asarray(baselines, float)]))
    for ax in axes:
        style.log_axis(ax, "x", "si")
        ax.set_xlabel(xlabel)
    style.log_axis(axes[0], "y", "plain")
    axes[0].set_ylabel(ylabel)
    fig.suptitle(title)


# --------------------------------------------------------------------------------------
# curves.png
# --------------------------------------------------------------------------------------
@style.styled
def curves_figure(
    points: pd.DataFrame,
    runs: pd.DataFrame,
    fits: Mapping[str, Any],
    title: str,
    *,
    baselines: Mapping[str, float] | None = None,
) -> Figure | None:
    """Every run against compute, per architecture: colour N, marker D, end marker by status; the envelope and
    the frontier L(C) with its band; baselines."""
    pts = _usable(points)
    if pts.empty:
        return None
    archs = _archs(pts)
    fig, axes = style.figure(
        ncols=len(archs),
        width=style.DOUBLE if len(archs) > 1 else style.SINGLE * 1.3,
        height=3.3,
        sharey=True,
        sharex=True,
    )
    norm, colour = style.sequential(pts["N"].astype(float).unique())
    d_values = sorted(pts["D"].astype(float).unique())
    d_marker = {d: style.MARKERS[i % len(style.MARKERS)] for i, d in enumerate(d_values)}
    status = runs.set_index("run_id")["status"].astype(str).to_dict() if "status" in runs else {}
    C_all = pts["flops"].to_numpy(float)
    drawn_d, drawn_status, ys = set(), set(), []
    handles, failed_ends = [], []
    for ax, arch in zip(axes, archs):
        sub = pts[pts["arch"].astype(str) == arch]
        for run_id, df in sub.groupby("run_id", sort=False):
            df = df.sort_values("flops")
            N, D = float(df["N"].iloc[0]), float(df["D"].iloc[0])
            st = status.get(run_id, str(df["status"].iloc[0]) if "status" in df else "finished")
            c = colour(N)
            stopped = st in STOPPED
            ax.plot(
                df["flops"],
                df["dev_loss"],
                "-",
                color=c,
                lw=0.9,
                alpha=0.55 if stopped else 0.9,
                marker=d_marker[D],
                ms=2.2,
                markevery=max(len(df) // 5, 1),
                zorder=3,
                gid=f"run:{run_id}",
            )
            end = df.iloc[-1]
            drawn_d.add(D)
            if st in FAILED:  # drawn once the limits are known: a diverged loss must not set them
                failed_ends.append((ax, float(end["flops"]), float(end["dev_loss"])))
                drawn_status.add("failed")
            else:
                ys.append(df["dev_loss"].to_numpy(float))
                ax.plot(
                    end["flops"],
                    end["dev_loss"],
                    d_marker[D],
                    color=c,
                    ms=5,
                    mew=0.9,
                    mfc="white" if stopped else c,
                    zorder=6,
                )
                drawn_status.add("stopped" if stopped else "finished" if st == "finished" else "other")
        # a run that failed before its first evaluation after the start: marked where it stopped, at the top
        if "flops" in runs and "arch" in runs:
            early = runs[
                (runs["arch"].astype(str) == arch)
                & runs["status"].astype(str).isin(FAILED)
                & ~runs["run_id"].isin(sub["run_id"])
                & (pd.to_numeric(runs["flops"], errors="coerce") > 0)
            ]
            for c in early["flops"].astype(float):
                failed_ends.append((ax, c, math.nan))
                drawn_status.add("failed")
        order = sub.sort_values("flops")
        env = np.minimum.accumulate(order["dev_loss"].to_numpy(float))
        ax.step(order["flops"].to_numpy(float), env, where="post", color=style.ENVELOPE, lw=0.9, zorder=5)
        handles.append(Line2D([], [], color=style.ENVELOPE, lw=0.9, label="envelope (best loss with at most C)"))
        fit, err = _frontier_fit(fits, arch)
        n_runs = sub["run_id"].nunique()
        if fit is not None:
            handles += _draw_frontier_fit(ax, fit, C_all.min(), C_all.max())
            ax.set_title(f"{arch}: {n_runs} runs\nfrontier {param_text(fit, ['alpha'], compact=True)}")
        else:
            ax.set_title(f"{arch}: {n_runs} runs\nno L(C) fit{': ' + _short(err, skip=arch) if err else ''}")
    base = []
    for ax in axes:
        base = _draw_baselines(ax, baselines)
    if not ys:
        ys = [pts["dev_loss"].to_numpy(float)]
    _finish(fig, axes, ys, base, style.axis_label("C"), "dev loss (L1)", f"{title}: dev loss against training compute")
    top = axes[0].get_ylim()[1]
    clipped = False
    for ax, c, loss in failed_ends:  # at the top edge when the diverged loss lies above the plot
        clipped |= not loss <= top / 1.02
        ax.plot(
            c,
            min(loss, top / 1.02) if np.isfinite(loss) else top / 1.02,
            "x",
            color=style.OKABE_ITO["vermillion"],
            ms=6,
            mew=1.2,
            zorder=6,
            clip_on=False,
        )
    # one legend for the encodings that were drawn
    enc = [
        Line2D([], [], color="grey", marker=d_marker[d], ls="-", lw=0.6, ms=3, label=f"D = {_frames(d)}")
        for d in d_values
        if d in drawn_d
    ]
    if "finished" in drawn_status:
        enc.append(Line2D([], [], color="grey", marker="o", ls="none", ms=5, label="large filled marker: run finished"))
    if "stopped" in drawn_status:
        enc.append(
            Line2D(
                [],
                [],
                color="grey",
                marker="o",
                mfc="white",
                ls="none",
                ms=5,
                label="large open marker: stopped there (pruned)",
            )
        )
    if "failed" in drawn_status:
        enc.append(
            Line2D(
                [],
                [],
                color=style.OKABE_ITO["vermillion"],
                marker="x",
                ls="none",
                ms=6,
                label="failed there" + (" (at the top edge: its loss left the plot)" if clipped else ""),
            )
        )
    handles = _dedupe(handles + enc + style.baseline_handles(baselines))
    fig.legend(handles=handles, loc="outside lower center", ncol=3)
    if norm is not None:
        style.size_colorbar(fig, list(axes), norm, style.axis_label("N"))
    return fig


def plot_curves(
    points: pd.DataFrame, runs: pd.DataFrame, fits: Mapping[str, Any], stem: str | Path, title: str, **options
) -> list[Path]:
    """:func:`curves_figure` written as stem.png and stem.pdf (none when there is nothing to draw)."""
    fig = curves_figure(points, runs, fits, title, **options)
    return [] if fig is None else style.save(fig, stem)


def _short(text: str, n: int = 44, skip: str = "") -> str:
    """The gist of an error for a panel title: "FitError: too few points: 3 usable rows ..." -> "too few points"
    (parts naming the panel's architecture, ``skip``, are left out)."""
    parts = [p for p in str(text).split(": ") if p and not p.endswith("Error") and p != skip]
    text = parts[0] if parts else str(text)
    if len(text) > n and text.find(" (") >= 15:  # drop a parenthesis before cutting words
        text = text[: text.find(" (")]
    return text if len(text) <= n else text[: n - 3] + "..."


# --------------------------------------------------------------------------------------
# compute.png: Droppo & Elibol's Figure 5
# --------------------------------------------------------------------------------------
def largest_data_runs(points: pd.DataFrame) -> pd.DataFrame:
    """One run per (arch, N): the one on the most data (the lowest seed among equals)."""
    pts = _usable(points)
    cols = ["arch", "N", "D", "seed", "run_id"] if "seed" in pts.columns else ["arch", "N", "D", "run_id"]
    runs = pts[cols].drop_duplicates("run_id")
    runs = runs.sort_values(
        ["arch", "N", "D"] + (["seed"] if "seed" in runs else []),
        ascending=[True, True, False] + ([True] if "seed" in runs else []),
    )
    return runs.drop_duplicates(["arch", "N"], keep="first")


@style.styled
def compute_figure(
    points: pd.DataFrame,
    runs: pd.DataFrame,
    fits: Mapping[str, Any],
    title: str,
    *,
    baselines: Mapping[str, float] | None = None,
) -> Figure | None:
    """Dev loss against compute, one curve per model size (its largest-data run), coloured by N, the frontier
    L(C) dashed: Droppo & Elibol's Figure 5."""
    pts = _usable(points)
    if pts.empty:
        return None
    chosen = largest_data_runs(points)
    archs = _archs(pts)
    fig, axes = style.figure(
        ncols=len(archs),
        width=style.DOUBLE if len(archs) > 1 else style.SINGLE * 1.3,
        height=3.0,
        sharey=True,
        sharex=True,
    )
    norm, colour = style.sequential(chosen["N"].astype(float).unique())
    ys = []
    C_all = pts["flops"].to_numpy(float)
    handles = []
    for ax, arch in zip(axes, archs):
        for _, r in chosen[chosen["arch"].astype(str) == arch].iterrows():
            df = pts[pts["run_id"] == r["run_id"]].sort_values("flops")
            ax.plot(
                df["flops"],
                df["dev_loss"],
                "-o",
                color=colour(float(r["N"])),
                lw=0.9,
                ms=2.2,
                mew=0,
                zorder=3,
                gid=f"size:{arch}:{r['N']:g}",
            )
            ys.append(df["dev_loss"].to_numpy(float))
        handles.append(
            Line2D([], [], color="grey", marker="o", ms=2.2, lw=0.9, label="one model size (its run on the most data)")
        )
        fit, err = _frontier_fit(fits, arch)
        if fit is not None:
            handles += _draw_frontier_fit(ax, fit, C_all.min(), C_all.max(), color=style.ENVELOPE, dashed_only=True)
            ax.set_title(f"{arch}: frontier {param_text(fit, ['alpha'], compact=True)}")
        else:
            ax.set_title(f"{arch}\nno L(C) fit{': ' + _short(err, skip=arch) if err else ''}")
    base = []
    for ax in axes:
        base = _draw_baselines(ax, baselines)
    _finish(fig, axes, ys, base, style.axis_label("C"), "dev loss (L1)", f"{title}: learning curves and the frontier")
    fig.legend(handles=_dedupe(handles + style.baseline_handles(baselines)), loc="outside lower center", ncol=3)
    if norm is not None:
        style.size_colorbar(fig, list(axes), norm, style.axis_label("N"))
    return fig


# --------------------------------------------------------------------------------------
# isoflop.png: Chinchilla's Approach 2
# --------------------------------------------------------------------------------------


def plot_compute(
    points: pd.DataFrame, runs: pd.DataFrame, fits: Mapping[str, Any], stem: str | Path, title: str, **options
) -> list[Path]:
    """:func:`compute_figure` written as stem.png and stem.pdf (none when there is nothing to draw)."""
    fig = compute_figure(points, runs, fits, title, **options)
    return [] if fig is None else style.save(fig, stem)


def isoflop_table(points: pd.DataFrame, n_levels: int = 4, min_sizes: int = 3) -> pd.DataFrame:
    """Loss at fixed compute levels: each run's curve interpolated log-log at C (inside the run's own compute
    range), the best run of each (arch, N). Levels: ``n_levels`` log-spaced values of C where at least
    ``min_sizes`` model sizes of an architecture reach (fewer if no C has that many). Columns arch, C, N,
    loss, run_id."""
    pts = _usable(points)
    rows = []
    for arch in _archs(pts):
        sub = pts[pts["arch"].astype(str) == arch]
        curves = {
            rid: (np.log(df["flops"].to_numpy(float)), np.log(df["dev_loss"].to_numpy(float)), float(df["N"].iloc[0]))
            for rid, df in ((rid, d.sort_values("flops")) for rid, d in sub.groupby("run_id", sort=False))
            if len(df) >= 2
        }
        if not curves:
            continue
        spans: dict[float, list[float]] = {}
        for lc, _, N in curves.values():
            sp = spans.setdefault(N, [math.inf, -math.inf])
            sp[0], sp[1] = min(sp[0], lc[0]), max(sp[1], lc[-1])
        grid = np.linspace(min(s[0] for s in spans.values()), max(s[1] for s in spans.values()), 400)
        count = np.array([sum(lo <= g <= hi for lo, hi in spans.values()) for g in grid])
        need = min(min_sizes, int(count.max()))
        ok = grid[count >= need]
        if need < 2 or ok.size < 2:
            continue
        lo, hi = ok.min(), ok.max()
        pad = 0.1 * (hi - lo)
        for lC in np.linspace(lo + pad, hi - pad, n_levels):
            best: dict[float, tuple[float, str]] = {}
            for rid, (lc, ll, N) in curves.items():
                if lc[0] <= lC <= lc[-1]:
                    v = float(np.exp(np.interp(lC, lc, ll)))
                    if N not in best or v < best[N][0]:
                        best[N] = (v, rid)
            for N, (v, rid) in best.items():
                rows.append({"arch": arch, "C": float(np.exp(lC)), "N": N, "loss": v, "run_id": rid})
    return pd.DataFrame(rows, columns=["arch", "C", "N", "loss", "run_id"])


def isoflop_minimum(N: np.ndarray, loss: np.ndarray) -> tuple[float, float, str]:
    """The compute-optimal N at one compute level: the vertex of a parabola in log N (Chinchilla's Approach 2)
    when there are 3+ sizes and it opens upward with its vertex inside the sizes, else the lowest point."""
    N, loss = np.asarray(N, float), np.asarray(loss, float)
    i = int(np.argmin(loss))
    if N.size >= 3:
        a, b, c = np.polyfit(np.log(N), loss, 2)
        if a > 0:
            x = -b / (2 * a)
            if np.log(N.min()) <= x <= np.log(N.max()):
                return float(np.exp(x)), float(a * x * x + b * x + c), "parabola"
    return float(N[i]), float(loss[i]), "lowest"


@style.styled
def isoflop_figure(
    points: pd.DataFrame, title: str, *, n_levels: int = 4, baselines: Mapping[str, float] | None = None
) -> Figure | None:
    """Loss against N at fixed compute (isoFLOP slices), one curve per compute level, the minimum marked."""
    table = isoflop_table(points, n_levels=n_levels)
    if table.empty:
        return None
    archs = _archs(table)
    fig, axes = style.figure(
        ncols=len(archs), width=style.DOUBLE if len(archs) > 1 else style.SINGLE * 1.2, height=3.6, sharey=True
    )
    ys = [table["loss"].to_numpy(float)]
    kinds_drawn: set[str] = set()
    for ax, arch in zip(axes, archs):
        sub = table[table["arch"] == arch]
        levels = sorted(sub["C"].unique())
        _, colour = style.sequential(levels)
        handles = []
        for C in levels:
            s = sub[sub["C"] == C].sort_values("N")
            c = colour(C)
            ax.plot(s["N"], s["loss"], "-o", color=c, ms=3, lw=1.0, zorder=3, gid=f"level:{arch}:{C:g}")
            n_opt, l_opt, how = isoflop_minimum(s["N"].to_numpy(), s["loss"].to_numpy())
            if how == "parabola":
                lN = np.linspace(np.log(s["N"].min()), np.log(s["N"].max()), 60)
                ax.plot(np.exp(lN), np.polyval(np.polyfit(np.log(s["N"]), s["loss"], 2), lN), ":", color=c, lw=0.9)
                ys.append([l_opt])
            ax.plot(
                [n_opt],
                [l_opt],
                "*" if how == "parabola" else "D",
                color=c,
                mec="black",
                mew=0.5,
                ms=9 if how == "parabola" else 6,
                zorder=5,
                gid=f"minimum:{arch}:{C:g}",
            )
            kinds_drawn.add(how)
            handles.append(Line2D([], [], color=c, marker="o", ms=3, lw=1.0, label=f"C = {style.si(C)} FLOPs"))
        ax.set_title(arch)
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)  # below: off the data
    base = []
    for ax in axes:
        base = _draw_baselines(ax, baselines)
    _finish(
        fig,
        axes,
        ys,
        base,
        style.axis_label("N"),
        "dev loss (L1) at that compute",
        f"{title}: loss at fixed compute (isoFLOP slices)",
    )
    shared = []
    if "parabola" in kinds_drawn:
        shared.append(
            Line2D(
                [],
                [],
                color="grey",
                marker="*",
                mec="black",
                ls=":",
                lw=0.9,
                ms=8,
                label="minimum of a parabola in log N",
            )
        )
    if "lowest" in kinds_drawn:
        shared.append(
            Line2D(
                [],
                [],
                color="grey",
                marker="D",
                mec="black",
                ls="none",
                ms=5,
                label="lowest point (no interior minimum: the optimum may lie beyond the sizes)",
            )
        )
    fig.legend(handles=shared + style.baseline_handles(baselines), loc="outside lower center", ncol=2)
    return fig


# --------------------------------------------------------------------------------------
# law_nd.png
# --------------------------------------------------------------------------------------


def plot_isoflop(points: pd.DataFrame, stem: str | Path, title: str, **options) -> list[Path]:
    """:func:`isoflop_figure` written as stem.png and stem.pdf (none when there is nothing to draw)."""
    fig = isoflop_figure(points, title, **options)
    return [] if fig is None else style.save(fig, stem)


def selection_view(selection: pd.DataFrame) -> pd.DataFrame:
    """The selection with the columns law_nd draws (loss, lo, hi, kind, in_fit); an older selection
    (median_min_dev_loss) is read as converged points, all in the fit."""
    sel = selection.copy()
    if "loss" not in sel.columns and "median_min_dev_loss" in sel.columns:
        sel = sel.rename(columns={"median_min_dev_loss": "loss"})
    for col, default in (("lo", math.nan), ("hi", math.nan), ("kind", "converged"), ("in_fit", True)):
        if col not in sel.columns:
            sel[col] = default
    sel["in_fit"] = sel["in_fit"].astype(bool)
    return sel


@style.styled
def law_figure(
    selection: pd.DataFrame, fits: Mapping[str, Any], title: str, *, baselines: Mapping[str, float] | None = None
) -> Figure | None:
    """The selected losses against N for each D, their kinds, the fitted L(N, D) per D with its band
    (dashed beyond the data's N), baselines."""
    sel = selection_view(selection)
    sel = sel[np.isfinite(pd.to_numeric(sel["loss"], errors="coerce"))]
    if sel.empty:
        return None
    archs = _archs(sel)
    fig, axes = style.figure(
        ncols=len(archs),
        width=style.DOUBLE if len(archs) > 1 else style.SINGLE * 1.3,
        height=3.2,
        sharey=True,
        sharex=True,
    )
    d_values = sorted(sel["D"].astype(float).unique())
    _, colour = style.sequential(d_values)
    ys = [sel["loss"].to_numpy(float)]
    drawn_kinds, drawn_open, drawn_law, drawn_band, drawn_extrap = set(), False, False, False, False
    band_method = "bootstrap"
    N_lo, N_hi = sel["N"].min(), sel["N"].max()
    for ax, arch in zip(axes, archs):
        s_arch = sel[sel["arch"].astype(str) == arch]
        entry = (fits or {}).get("joint", {}).get(arch) or {}
        fit = entry.get("fit")
        for D in d_values:
            s = s_arch[s_arch["D"].astype(float) == D].sort_values("N")
            if s.empty:
                continue
            c = colour(D)
            for kind, g in s.groupby("kind", sort=False):
                marker = KINDS.get(kind, ("o", kind))[0]
                for in_fit, gg in g.groupby("in_fit"):
                    yerr = None
                    lo, hi = gg["lo"].to_numpy(float), gg["hi"].to_numpy(float)
                    has = np.isfinite(lo) & np.isfinite(hi) & (hi > lo) & (lo > 0)  # a censored lo = 0: the arrow
                    if has.any():
                        y = gg["loss"].to_numpy(float)
                        yerr = np.vstack([np.where(has, y - lo, 0.0), np.where(has, hi - y, 0.0)])
                        ys += [lo[has], hi[has]]
                    if yerr is not None:
                        ax.errorbar(
                            gg["N"], gg["loss"], yerr=yerr, fmt="none", ecolor=c, elinewidth=0.8, capsize=1.5, zorder=5
                        )
                    ax.plot(
                        gg["N"],
                        gg["loss"],
                        ls="none",
                        marker=marker,
                        color=c,
                        ms=4.5 if kind != "censored" else 9,
                        mfc=c if in_fit else "white",
                        mew=0.9,
                        zorder=6,
                        gid=f"point:{kind}:{'in' if in_fit else 'out'}",
                    )
                    drawn_kinds.add(kind)
                    drawn_open |= not in_fit
            if fit is not None:
                data = s_arch[s_arch["in_fit"]] if s_arch["in_fit"].any() else s_arch
                lo_n, hi_n = data["N"].min(), data["N"].max()
                grid = np.geomspace(N_lo / 2, N_hi * 3, 200)
                pred = fit.predict(grid, np.full_like(grid, D))
                if fit.theta_samples is not None and len(fit.theta_samples) > 1:
                    blo, bhi = fit.predict_interval(grid, np.full_like(grid, D))
                    ax.fill_between(grid, blo, bhi, color=c, alpha=0.12, lw=0, zorder=2)
                    drawn_band = True
                inside = (grid >= lo_n) & (grid <= hi_n)
                ax.plot(grid[inside], pred[inside], "-", color=c, lw=1.1, zorder=4)
                for part in (grid <= lo_n, grid >= hi_n):
                    if part.sum() > 1:
                        ax.plot(grid[part], pred[part], "--", color=c, lw=1.0, zorder=4)
                        drawn_extrap = True
                ys.append(pred[inside])
                drawn_law = True
        if fit is not None:
            band_method = fit.interval_method
            ax.set_title(
                f"{arch}\n"
                + param_text(
                    fit,
                    [k for k in ("alpha_N", "alpha_D", "alpha", "beta", "L_inf", "E") if k in fit.params],
                    compact=True,
                )
            )
        else:
            ax.set_title(
                f"{arch}\nno L(N, D) fit" + (f": {_short(entry['error'], skip=arch)}" if entry.get("error") else "")
            )
    base = []
    for ax in axes:
        base = _draw_baselines(ax, baselines)
    _finish(fig, axes, ys, base, style.axis_label("N"), "dev loss (L1)", f"{title}: L(N, D)")
    handles = [
        Line2D(
            [],
            [],
            color=colour(D),
            marker="o",
            lw=1.1,
            ls="-" if drawn_law else "none",
            ms=4,
            label=f"D = {_frames(D)}",
        )
        for D in d_values
    ]
    for kind in KINDS:
        if kind in drawn_kinds:
            handles.append(Line2D([], [], color="grey", marker=KINDS[kind][0], ls="none", ms=5, label=KINDS[kind][1]))
    for kind in sorted(drawn_kinds - set(KINDS)):
        handles.append(Line2D([], [], color="grey", marker="o", ls="none", ms=5, label=kind))
    if drawn_open:
        handles.append(Line2D([], [], color="grey", marker="o", mfc="white", ls="none", ms=5, label="not in the fit"))
    if drawn_law:
        handles.append(Line2D([], [], color="grey", lw=1.1, label="fitted L(N, D) at each D"))
    if drawn_extrap:
        handles.append(Line2D([], [], color="grey", lw=1.0, ls="--", label="extrapolated beyond the data's N"))
    if drawn_band:
        handles.append(Patch(facecolor="grey", alpha=0.25, lw=0, label=f"band of the law ({band_method})"))
    fig.legend(handles=handles + style.baseline_handles(baselines), loc="outside lower center", ncol=3)
    return fig


def plot_law(selection: pd.DataFrame, fits: Mapping[str, Any], stem: str | Path, title: str, **options) -> list[Path]:
    """:func:`law_figure` written as stem.png and stem.pdf (none when there is nothing to draw)."""
    fig = law_figure(selection, fits, title, **options)
    return [] if fig is None else style.save(fig, stem)


__all__ = [
    "plot_curves",
    "plot_compute",
    "plot_isoflop",
    "plot_law",
    "curves_figure",
    "compute_figure",
    "isoflop_figure",
    "law_figure",
    "baselines_from_points",
    "figure_baselines",
    "selection_view",
    "isoflop_table",
    "isoflop_minimum",
    "largest_data_runs",
]
