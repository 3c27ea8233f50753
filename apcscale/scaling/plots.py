"""Plots of scaling fits, in the project's style (:mod:`apcscale.scaling.style`): PNG and PDF.

* :func:`plot_frontier`: loss against compute, one curve per run coloured by
  model size, the lower envelope, the fitted L(C) with its band: solid where it
  was fitted, dashed where it extrapolates (Droppo & Elibol's Figure 5 view);
* :func:`plot_law`: one covariate: the points fitted, the other runs in grey,
  outliers circled, the law and its band;
* :func:`plot_joint`: L(N, D): loss against N with D in colour, and against D
  with N in colour; every point drawn (a continuous covariate is binned, the
  law drawn at each bin's typical value);
* :func:`plot_residuals`: log(observed / fitted) of every fit against the fitted
  loss, the Huber delta shaded, outliers circled.

Axes carry units; log axes are labelled 1k, 10k, 1M or 0.3, 0.5, 2, 3; a floor
that is not identifiable is not drawn (it would only squash the data).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from . import style
from .fitting import FitResult
from .frontier import Frontier

FORMULAS = {
    "hoffmann": r"$L = E + A/N^{\alpha} + B/D^{\beta}$",
    "droppo": r"$L = L_\infty + [(N_c/N)^{\alpha_N/\alpha_D} + D_c/D]^{\alpha_D}$",
}
_TEX = {
    "alpha": r"\alpha",
    "beta": r"\beta",
    "L_inf": r"L_\infty",
    "alpha_N": r"\alpha_N",
    "alpha_D": r"\alpha_D",
    "N_c": "N_c",
    "D_c": "D_c",
    "E": "E",
    "A": "A",
    "B": "B",
    "L_final": r"L_{final}",
}


def _tex_num(x: float) -> str:
    if not math.isfinite(x):
        return str(x)
    if x != 0 and (abs(x) >= 1e5 or abs(x) < 1e-3):
        e = int(math.floor(math.log10(abs(x))))
        return rf"{x / 10**e:.3g}\times10^{{{e}}}"
    if abs(x) >= 1e3:
        return f"{x:.0f}"
    return f"{x:.4g}"


def _wrap(text: str, width: int = 50) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width)) if "$" not in text else text


def formula(fit: FitResult) -> str:
    """The law in mathtext: Hoffmann's and Droppo's forms, or L = L_inf + (x_c/x)^alpha for one covariate."""
    if fit.law in FORMULAS:
        return FORMULAS[fit.law]
    v = fit.variables[0] if fit.variables else "x"
    return rf"$L = L_\infty + ({v}_c/{v})^{{\alpha_{v}}}$"


def param_text(fit: FitResult, keys: Sequence[str] | None = None, compact: bool = False) -> str:
    """ "E = 1.82, A = 478, alpha = 0.347" in mathtext; a parameter that is not identifiable shows its interval
    (``compact``: "not identifiable" only, and 3 significant digits)."""
    v = fit.variables[0] if len(fit.variables) == 1 else None
    parts = []
    for k in keys or list(fit.params):
        name = _TEX.get(k, k)
        if v and k == "x_c":
            name = f"{v}_c"
        if v and k == "alpha":
            name = rf"\alpha_{v}"
        if fit.identifiable.get(k, True):
            value = fit.params[k]
            parts.append(rf"${name} = {_tex_num(value) if not compact else f'{value:.3g}'}$")
        elif compact:
            parts.append(rf"${name}$ not identifiable")
        else:
            lo, hi = fit.intervals[k]
            parts.append(rf"${name} \in [{_tex_num(lo)}, {_tex_num(hi)}]$ (not identifiable)")
    return ", ".join(parts)


def _draw_law(
    ax,
    x: np.ndarray,
    pred: np.ndarray,
    band: tuple[np.ndarray, np.ndarray] | None,
    inside: tuple[float, float],
    color: str,
    label: str | None,
    band_label: str | None,
) -> list:
    """The law: solid over ``inside`` (where it was fitted), dashed beyond (extrapolation); its band."""
    handles = []
    ins = (x >= inside[0] * (1 - 1e-9)) & (x <= inside[1] * (1 + 1e-9))
    if band is not None:
        ax.fill_between(x, band[0], band[1], color=color, alpha=0.18, lw=0, zorder=2)
        if band_label:
            handles.append(_patch(color, band_label))
    ax.plot(x[ins], pred[ins], "-", color=color, lw=1.4, zorder=4)
    outside = False
    for part in (x <= inside[0] * (1 + 1e-9), x >= inside[1] * (1 - 1e-9)):
        if part.sum() > 1:
            ax.plot(x[part], pred[part], "--", color=color, lw=1.2, zorder=4)
            outside = True
    if label:
        handles.append(Line2D([], [], color=color, lw=1.4, label=label))
    if outside:
        handles.append(Line2D([], [], color=color, lw=1.2, ls="--", label="extrapolated"))
    return handles


def extrapolation_grid(
    fit_range: tuple[float, float], data_lo: float, data_hi: float, factor: float = 3.0, n: int = 300
) -> np.ndarray:
    """Where to draw a law of compute: from a factor below its fitted range (not below the data) to a factor
    beyond the data, so that the extrapolation shows without swamping the plot."""
    lo = max(data_lo, fit_range[0] / factor)
    hi = max(data_hi, fit_range[1]) * factor
    return np.geomspace(lo, hi, n)


def _patch(color: str, label: str):
    from matplotlib.patches import Patch

    return Patch(facecolor=color, alpha=0.25, lw=0, label=label)


def _band_label(fit: FitResult) -> str | None:
    if fit.theta_samples is None or len(fit.theta_samples) < 2:
        return None
    return f"{int(round(fit.level * 100))}% band ({fit.interval_method})"


def _baselines(ax, baselines: Mapping[str, float] | None) -> list[float]:
    return style.baseline_lines(ax, baselines)


def _floor(ax, fit: FitResult, ylim: tuple[float, float]) -> None:
    """The fitted floor, labelled, only if it is identifiable and lies within the plotted range."""
    v = fit.irreducible
    if fit.identifiable.get(fit.law_obj.floor, False) and ylim[0] < v < ylim[1]:
        name = {"L_inf": r"$L_\infty$", "E": "E", "L_final": r"$L_{final}$"}.get(fit.law_obj.floor, fit.law_obj.floor)
        style.hline(ax, v, f"{name} = {v:.3g}", color=style.OKABE_ITO["green"], ls=(0, (1, 1.5)), where="left")


# --------------------------------------------------------------------------------------
# the figures
# --------------------------------------------------------------------------------------
@style.styled
def frontier_figure(
    frontier: Frontier,
    *,
    sizes: Mapping[Hashable, float] | None = None,
    fit: FitResult | None = None,
    xlabel: str = "training compute C (FLOPs)",
    ylabel: str = "dev loss",
    title: str | None = None,
    baselines: Mapping[str, float] | None = None,
    size_label: str = "model size N (parameters)",
) -> Figure | None:
    """Loss against compute, every run (coloured by model size), the envelope and L(C) (Figure 5 view)."""
    fig, (ax,) = style.figure(width=style.SINGLE * 1.25, height=3.0)
    norm, colour = style.sequential(list((sizes or {}).values()))
    single = all(C.size == 1 for C, _ in frontier.curves.values())
    ys = []
    for run, (C, L) in frontier.curves.items():
        c = colour(sizes[run]) if sizes and run in sizes and norm is not None else style.DATA
        if single:
            ax.plot(C, L, "o", color=c, ms=2.5, alpha=0.8, mew=0)
        else:
            ax.plot(C, L, "-", color=c, lw=0.8, alpha=0.85, marker="." if C.size < 30 else None, ms=2)
        ys.append(L)
    handles = []
    env = np.array([(c, l) for c, l, _ in frontier.envelope])
    ax.step(env[:, 0], env[:, 1], where="post", color=style.ENVELOPE, lw=0.9, zorder=3)
    handles.append(Line2D([], [], color=style.ENVELOPE, lw=0.9, label="frontier (lower envelope)"))
    allC = np.concatenate([C for C, _ in frontier.curves.values()])
    if fit is not None:
        rng = fit.diagnostics.get("fit_range", (allC.min(), allC.max()))
        grid = extrapolation_grid(rng, allC.min(), allC.max())
        band = fit.predict_interval(grid) if _band_label(fit) else None
        handles += _draw_law(
            ax,
            grid,
            fit.predict(grid),
            band,
            rng,
            style.FIT,
            "L(C) fit: " + param_text(fit, [k for k in ("alpha",) if k in fit.params]),
            _band_label(fit),
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    style.loss_limits(ax, np.concatenate(ys))
    _baselines(ax, baselines)
    style.log_axis(ax, "x", "si")
    style.log_axis(ax, "y", "plain")
    ax.set_title(title or f"{len(frontier.curves)} runs, {len(frontier.runs_on_envelope)} on the frontier")
    if norm is not None:
        style.size_colorbar(fig, ax, norm, size_label)
    ax.legend(handles=handles + style.baseline_handles(baselines), loc="upper right")
    return fig


def plot_frontier(frontier: Frontier, stem: str | Path, **options) -> list[Path]:
    """:func:`frontier_figure` written as stem.png and stem.pdf (none when there is nothing to draw)."""
    fig = frontier_figure(frontier, **options)
    return [] if fig is None else style.save(fig, stem)


def _si_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _p: style.si(v))


@style.styled
def law_figure(
    fit: FitResult,
    x: np.ndarray,
    y: np.ndarray,
    *,
    xlabel: str,
    ylabel: str = "dev loss",
    title: str | None = None,
    context: tuple[np.ndarray, np.ndarray] | None = None,
    context_label: str = "other runs",
    baselines: Mapping[str, float] | None = None,
) -> Figure | None:
    """One covariate: the points fitted (and ``context``, the other runs, in grey), the law and its band."""
    fig, (ax,) = style.figure(height=2.8)
    x, y = np.asarray(x, float), np.asarray(y, float)
    handles = []
    ys = [y]
    if context is not None and len(context[0]):
        cx, cy = (np.asarray(a, float) for a in context)
        ax.plot(cx, cy, "o", color=style.OKABE_ITO["grey"], ms=2, alpha=0.5, mew=0, zorder=1)
        handles.append(Line2D([], [], color=style.OKABE_ITO["grey"], marker="o", ls="none", ms=2, label=context_label))
        ys.append(cy)
    ax.plot(x, y, "o", color=style.DATA, ms=3.5, zorder=5, gid="points")
    handles.append(Line2D([], [], color=style.DATA, marker="o", ls="none", ms=3.5, label=f"fitted points ({x.size})"))
    rows = [o.row for o in fit.outliers]
    if rows:
        ax.plot(x[rows], y[rows], "o", mfc="none", mec=style.OKABE_ITO["vermillion"], ms=8, mew=1, zorder=6)
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                mfc="none",
                mec=style.OKABE_ITO["vermillion"],
                ls="none",
                ms=8,
                label=f"flagged outlier{'s' if len(rows) > 1 else ''} ({len(rows)})",
            )
        )
    allx = np.concatenate([x] + ([np.asarray(context[0], float)] if context is not None and len(context[0]) else []))
    span = math.log10(allx.max() / allx.min())
    grid = np.geomspace(allx.min() / 10 ** (0.05 * span), allx.max() * 10 ** (0.05 * span), 300)
    pred = fit.predict(grid)
    band = fit.predict_interval(grid) if _band_label(fit) else None
    handles += _draw_law(
        ax, grid, pred, band, (x.min(), x.max()), style.FIT, "fit: " + param_text(fit), _band_label(fit)
    )
    inside = (grid >= x.min()) & (grid <= x.max())
    style.loss_limits(ax, np.concatenate(ys + [pred[inside]]))
    ylim = ax.get_ylim()
    _floor(ax, fit, ylim)
    _baselines(ax, baselines)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    style.log_axis(ax, "x", "si")
    style.log_axis(ax, "y", "plain")
    ax.set_title(_wrap(title) if title else formula(fit))
    ax.legend(handles=handles + style.baseline_handles(baselines), loc="best")
    return fig


def plot_law(fit: FitResult, x: np.ndarray, y: np.ndarray, stem: str | Path, **options) -> list[Path]:
    """:func:`law_figure` written as stem.png and stem.pdf (none when there is nothing to draw)."""
    fig = law_figure(fit, x, y, **options)
    return [] if fig is None else style.save(fig, stem)


def levels(values: np.ndarray, max_levels: int = 5) -> list[tuple[float, np.ndarray, str]]:
    """Groups of a covariate for colouring: each distinct value when there are few (a grid), else
    ``max_levels`` bins of equal count in log space. Returns (typical value, row mask, label) per group."""
    v = np.asarray(values, float)
    u = np.unique(v)
    if u.size <= max_levels + 1:
        return [(float(val), v == val, style.si(val)) for val in u]
    lv = np.log(v)
    edges = np.quantile(lv, np.linspace(0, 1, max_levels + 1))
    idx = np.clip(np.searchsorted(edges, lv, side="right") - 1, 0, max_levels - 1)
    out = []
    for b in range(max_levels):
        sel = idx == b
        if sel.any():
            rep = float(np.exp(lv[sel].mean()))
            out.append((rep, sel, f"{style.si(v[sel].min(), 2)}-{style.si(v[sel].max(), 2)}"))
    return out


@style.styled
def joint_figure(
    fit: FitResult,
    N: np.ndarray,
    D: np.ndarray,
    y: np.ndarray,
    *,
    ylabel: str = "dev loss",
    n_label: str = "model size N (parameters)",
    d_label: str = "training data D (training-set size)",
    baselines: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Figure | None:
    """L(N, D): (a) loss against N, D in colour; (b) loss against D, N in colour; the law at each colour's value."""
    fig, axes = style.figure(ncols=2, width=style.DOUBLE, height=3.0, sharey=True)
    N, D, y = (np.asarray(a, float) for a in (N, D, y))
    out_rows = np.array([o.row for o in fit.outliers], dtype=int)
    preds = []
    for ax, (a, b, a_label, b_label, tag) in zip(axes, ((N, D, n_label, d_label, "N"), (D, N, d_label, n_label, "D"))):
        lv = levels(b)
        _, colour = style.sequential([t for t, _, _ in lv])
        grid = np.geomspace(a.min(), a.max(), 200)
        handles = []
        for typical, sel, label in lv:
            c = colour(typical)
            ax.plot(a[sel], y[sel], "o", color=c, ms=2.8, mew=0, alpha=0.85, zorder=3, gid="points")
            pred = (
                fit.predict(grid, np.full_like(grid, typical))
                if tag == "N"
                else fit.predict(np.full_like(grid, typical), grid)
            )
            ax.plot(grid, pred, "-", color=c, lw=1.1, zorder=4)
            preds.append(pred)
            handles.append(Line2D([], [], color=c, marker="o", ms=2.8, lw=1.1, label=f"{label} ({int(sel.sum())})"))
        if out_rows.size:
            ax.plot(
                a[out_rows], y[out_rows], "o", mfc="none", mec=style.OKABE_ITO["vermillion"], ms=7, mew=0.9, zorder=5
            )
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    mfc="none",
                    mec=style.OKABE_ITO["vermillion"],
                    ls="none",
                    ms=7,
                    label=f"flagged outlier{'s' if out_rows.size > 1 else ''} ({out_rows.size})",
                )
            )
        ax.set_xlabel(a_label)
        other = "D" if tag == "N" else "N"
        unit = b_label[b_label.find("(") + 1 : b_label.rfind(")")] if "(" in b_label else ""
        ax.legend(
            handles=handles + style.baseline_handles(baselines),
            title=f"{other} ({unit}) of the points; the law at their typical {other}",
            loc="upper center",
            bbox_to_anchor=(0.5, -0.2),
            ncol=3,
            title_fontsize=6.5,
        )
        ax.set_title(f"({'a' if tag == 'N' else 'b'}) against {tag}, {other} in colour")
    axes[0].set_ylabel(ylabel)
    style.loss_limits(axes[0], np.concatenate([y] + [p for p in preds]))
    ylim = axes[0].get_ylim()
    for ax in axes:
        _floor(ax, fit, ylim)
        _baselines(ax, baselines)
        style.log_axis(ax, "x", "si")
    style.log_axis(axes[0], "y", "plain")
    fig.suptitle((title + ": " if title else "") + formula(fit) + "\n" + param_text(fit))
    return fig


def plot_joint(fit: FitResult, N: np.ndarray, D: np.ndarray, y: np.ndarray, stem: str | Path, **options) -> list[Path]:
    """:func:`joint_figure` written as stem.png and stem.pdf (none when there is nothing to draw)."""
    fig = joint_figure(fit, N, D, y, **options)
    return [] if fig is None else style.save(fig, stem)


NAMES = {"frontier": "L(C) on the frontier", "joint": "L(N, D)", "L_N": "L(N)", "L_D": "L(D)"}


@style.styled
def residuals_figure(fits: Mapping[str, FitResult], *, ylabel_loss: str = "fitted loss") -> Figure | None:
    """log(observed / fitted) against the fitted loss for every fit; the Huber delta shaded; outliers circled."""
    items = [(k, f) for k, f in fits.items() if f is not None]
    ncols = min(max(len(items), 1), 2)
    nrows = max(math.ceil(len(items) / ncols), 1)
    fig, axes = style.figure(
        ncols=ncols, nrows=nrows, width=style.SINGLE if ncols == 1 else style.DOUBLE, height=2.4 * nrows
    )
    for ax, (name, fit) in zip(axes, items):
        r = -fit.residuals  # log(observed / fitted): positive above the fit
        ok = np.isfinite(r)
        fitted = fit.fitted
        d = fit.stats["huber_delta"]
        ax.axhspan(-d, d, color=style.OKABE_ITO["green"], alpha=0.15, lw=0)
        ax.axhline(0, color="black", lw=0.6)
        ax.plot(fitted[ok], r[ok], "o", ms=2.5, mew=0, color=style.DATA, alpha=0.85)
        handles = [
            Line2D([], [], color=style.DATA, marker="o", ls="none", ms=2.5, label=f"points ({int(ok.sum())})"),
            _patch(style.OKABE_ITO["green"], f"Huber delta = {d:.3g}"),
        ]
        if fit.outliers:
            rows = [o.row for o in fit.outliers]
            ax.plot(fitted[rows], r[rows], "o", mfc="none", mec=style.OKABE_ITO["vermillion"], ms=7, mew=0.9)
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    mfc="none",
                    mec=style.OKABE_ITO["vermillion"],
                    ls="none",
                    ms=7,
                    label=f"flagged outlier{'s' if len(rows) > 1 else ''} ({len(rows)})",
                )
            )
        law = {"power_law": "power law", "hoffmann": "Hoffmann", "droppo": "Droppo"}.get(fit.law, fit.law)
        ax.set_title(f"{NAMES.get(name, name)}, {law}: rms log residual {fit.stats['rmse_log']:.4f}")
        ax.set_xlabel(ylabel_loss)
        ax.set_ylabel("log(observed / fitted)")
        lo, hi = np.nanmin(fitted[ok]), np.nanmax(fitted[ok])
        pad = (hi / lo) ** 0.05 if hi > lo else 1.02
        ax.set_xlim(lo / pad, hi * pad)
        style.log_axis(ax, "x", "plain", max_labels=5)
        ax.legend(handles=handles, loc="best")
    for ax in axes[len(items) :]:
        ax.set_visible(False)
    return fig


def plot_residuals(fits: Mapping[str, FitResult], stem: str | Path, **options) -> list[Path]:
    """:func:`residuals_figure` written as stem.png and stem.pdf (none when there is nothing to draw)."""
    fig = residuals_figure(fits, **options)
    return [] if fig is None else style.save(fig, stem)


@style.styled
def frontiers_figure(
    frontiers: Mapping[str, tuple[Frontier, FitResult | None]],
    *,
    xlabel: str = "training compute C (FLOPs)",
    ylabel: str = "dev loss",
    baselines: Mapping[str, float] | None = None,
    title: str | None = None,
) -> Figure | None:
    """Several frontiers on one plot (one per architecture): each envelope, its L(C) and band, in its colour."""
    fig, (ax,) = style.figure(width=style.SINGLE * 1.25, height=3.0)
    handles, ys, allC = [], [], []
    for i, (name, (fr, fit)) in enumerate(frontiers.items()):
        c = style.categorical(i)
        env = np.array([(cc, l) for cc, l, _ in fr.envelope])
        ax.step(env[:, 0], env[:, 1], where="post", color=c, lw=0.9, alpha=0.9)
        handles.append(Line2D([], [], color=c, lw=0.9, label=f"{name}: envelope of {len(fr.curves)} runs"))
        ys.append(env[:, 1])
        allC.append(env[:, 0])
    lo, hi = min(a.min() for a in allC), max(a.max() for a in allC)
    dashed, level = False, None
    for i, (name, (fr, fit)) in enumerate(frontiers.items()):
        if fit is None:
            continue
        rng = fit.diagnostics.get("fit_range", (lo, hi))
        grid = extrapolation_grid(rng, lo, hi)
        band = fit.predict_interval(grid) if _band_label(fit) else None
        level = level or (fit.level if band is not None else None)
        h = _draw_law(
            ax,
            grid,
            fit.predict(grid),
            band,
            rng,
            style.categorical(i),
            f"{name}: L(C), " + param_text(fit, ["alpha"]),
            None,
        )
        dashed |= any(x.get_label() == "extrapolated" for x in h)
        handles += [x for x in h if x.get_label() != "extrapolated"]
    if dashed:
        handles.append(Line2D([], [], color="grey", ls="--", lw=1.2, label="L(C) extrapolated beyond its fit"))
    if level:
        handles.append(_patch("grey", f"{int(round(level * 100))}% bands of L(C)"))
    style.loss_limits(ax, np.concatenate(ys))
    _baselines(ax, baselines)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    style.log_axis(ax, "x", "si")
    style.log_axis(ax, "y", "plain")
    ax.set_title(title or "compute frontiers")
    ax.legend(handles=handles + style.baseline_handles(baselines), loc="upper right")
    return fig


def plot_frontiers(
    frontiers: Mapping[str, tuple[Frontier, FitResult | None]], stem: str | Path, **options
) -> list[Path]:
    """:func:`frontiers_figure` written as stem.png and stem.pdf (none when there is nothing to draw)."""
    fig = frontiers_figure(frontiers, **options)
    return [] if fig is None else style.save(fig, stem)


__all__ = [
    "plot_frontier",
    "plot_frontiers",
    "plot_law",
    "plot_joint",
    "plot_residuals",
    "frontier_figure",
    "frontiers_figure",
    "law_figure",
    "joint_figure",
    "residuals_figure",
    "formula",
    "param_text",
    "levels",
    "extrapolation_grid",
]
