"""Plots of scaling fits, written as PNG and SVG.

Uses matplotlib's object API with the Agg canvas (no pyplot, no global backend
change), so it runs headless and inside other programs.

* :func:`plot_frontier`: loss against compute, one line per run (coloured by
  model size when known), the envelope dashed, the fitted L(C) dotted with its
  band (Kaplan et al.'s and Droppo & Elibol's Figure 5 style);
* :func:`plot_law`: one covariate, points, fit and band (L(N), L(D), L(C));
* :func:`plot_joint`: L(N, D): loss against N for each D and against D for each
  N, with the joint fit's curves;
* :func:`plot_residuals`: log residuals of every fit against the fitted value,
  outliers circled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Hashable, Mapping, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from .fitting import FitResult
from .frontier import Frontier


def _figure(ncols: int = 1, size: tuple[float, float] = (6.0, 4.5)) -> tuple[Figure, list]:
    fig = Figure(figsize=(size[0] * ncols, size[1]), layout="constrained")
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def save(fig: Figure, stem: str | Path) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg``; returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=150)
    fig.savefig(paths[1])
    return paths


def _band(ax, fit: FitResult, grid: np.ndarray, color: str, label: str) -> None:
    ax.plot(grid, fit.predict(grid), color=color, lw=1.6, label=label)
    if fit.theta_samples is not None and len(fit.theta_samples) > 1:
        lo, hi = fit.predict_interval(grid)
        ax.fill_between(grid, lo, hi, color=color, alpha=0.18, lw=0,
                        label=f"{int(round(fit.level * 100))}% band ({fit.interval_method})")


def _fmt_params(fit: FitResult, keys: Sequence[str] | None = None) -> str:
    from .statements import display_names

    names = display_names(fit)
    keys = keys or list(fit.params)
    return ", ".join(f"{names[k]}={fit.params[k]:.3g}" + ("" if fit.identifiable[k] else "?") for k in keys)


def plot_frontier(frontier: Frontier, stem: str | Path, *, sizes: Mapping[Hashable, float] | None = None,
                  fit: FitResult | None = None, xlabel: str = "training compute C (FLOPs)",
                  ylabel: str = "dev loss", title: str | None = None) -> list[Path]:
    fig, (ax,) = _figure(size=(7.0, 5.0))
    cmap = colormaps["viridis"]
    norm = None
    if sizes:
        vals = [v for v in sizes.values() if v and v > 0]
        if vals and min(vals) < max(vals):
            norm = LogNorm(min(vals), max(vals))
    for i, (run, (C, L)) in enumerate(frontier.curves.items()):
        color = cmap(norm(sizes[run])) if norm is not None and sizes and run in sizes else cmap((i % 10) / 10)
        ax.plot(C, L, "-", color=color, lw=1.0, alpha=0.85, marker="." if C.size < 30 else None, ms=3)
    env = np.array([(c, l) for c, l, _ in frontier.envelope])
    ax.step(env[:, 0], env[:, 1], where="post", color="black", ls="--", lw=1.4, label="frontier (lower envelope)")
    if fit is not None:
        grid = np.geomspace(env[:, 0].min(), env[:, 0].max(), 200)
        _band(ax, fit, grid, "tab:red", f"L(C) = {fit.params['L_inf']:.3g} + ({fit.params['x_c']:.3g}/C)^{fit.params['alpha']:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{len(frontier.curves)} runs, {len(frontier.runs_on_envelope)} on the frontier")
    if norm is not None:
        fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="model size N")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(True, which="both", alpha=0.2)
    return save(fig, stem)


def plot_law(fit: FitResult, x: np.ndarray, y: np.ndarray, stem: str | Path, *, xlabel: str, ylabel: str = "dev loss",
             title: str | None = None) -> list[Path]:
    fig, (ax,) = _figure()
    x, y = np.asarray(x, float), np.asarray(y, float)
    ax.plot(x, y, "o", color="tab:blue", ms=4, label="data")
    out_rows = [o.row for o in fit.outliers]
    if out_rows:
        ax.plot(x[out_rows], y[out_rows], "o", mfc="none", mec="tab:red", ms=10, label="outlier")
    span = np.log10(x.max() / x.min())
    grid = np.geomspace(x.min() / 10 ** (0.1 * span), x.max() * 10 ** (0.1 * span), 200)
    _band(ax, fit, grid, "tab:orange", "fit: " + _fmt_params(fit))
    ax.axhline(fit.irreducible, color="gray", ls=":", lw=1, label=f"{fit.law_obj.floor} = {fit.irreducible:.3g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or fit.formula)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.2)
    return save(fig, stem)


def plot_joint(fit: FitResult, N: np.ndarray, D: np.ndarray, y: np.ndarray, stem: str | Path, *,
               ylabel: str = "dev loss") -> list[Path]:
    fig, axes = _figure(ncols=2)
    N, D, y = (np.asarray(a, float) for a in (N, D, y))
    cmap = colormaps["viridis"]
    for ax, (a, b, aname, bname) in zip(axes, ((N, D, "N", "D"), (D, N, "D", "N"))):
        levels = np.unique(b)
        show = levels if levels.size <= 12 else levels[np.unique(np.linspace(0, levels.size - 1, 12).astype(int))]
        grid = np.geomspace(a.min(), a.max(), 100)
        for i, v in enumerate(show):
            color = cmap(i / max(len(show) - 1, 1))
            sel = b == v
            ax.plot(a[sel], y[sel], "o", color=color, ms=4)
            pred = fit.predict(grid, np.full_like(grid, v)) if aname == "N" else fit.predict(np.full_like(grid, v), grid)
            ax.plot(grid, pred, "-", color=color, lw=1.2, label=f"{bname} = {v:.3g}")
        ax.axhline(fit.irreducible, color="gray", ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(aname)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7, ncol=2)
        ax.grid(True, which="both", alpha=0.2)
    fig.suptitle(f"{fit.law}: {fit.formula}\n{_fmt_params(fit)}", fontsize=9)
    return save(fig, stem)


def plot_residuals(fits: Mapping[str, FitResult], stem: str | Path) -> list[Path]:
    items = [(k, f) for k, f in fits.items() if f is not None]
    fig, axes = _figure(ncols=max(len(items), 1), size=(4.5, 3.8))
    for ax, (name, fit) in zip(axes, items):
        r = fit.residuals
        ok = np.isfinite(r)
        fitted = fit.fitted
        ax.axhline(0, color="black", lw=0.8)
        ax.plot(fitted[ok], r[ok], "o", ms=3, color="tab:blue")
        if fit.outliers:
            rows = [o.row for o in fit.outliers]
            ax.plot(fitted[rows], r[rows], "o", mfc="none", mec="tab:red", ms=9, label="outlier")
            ax.legend(fontsize=8)
        d = fit.stats["huber_delta"]
        ax.axhspan(-d, d, color="tab:green", alpha=0.1, lw=0)
        ax.set_title(f"{name} ({fit.law}): rms {fit.stats['rmse_log']:.4f}", fontsize=9)
        ax.set_xscale("log")
        ax.set_xlabel("fitted loss")
        ax.set_ylabel("log(fit / observed)")
        ax.grid(True, alpha=0.2)
    return save(fig, stem)
