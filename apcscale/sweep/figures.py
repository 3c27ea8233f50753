"""The plots of a sweep: every run's curve against compute with the frontier (curves.png), and the
selected losses with the fitted L(N, D) (law_nd.png)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from apcscale.sweep.plan import _si



def arch_styles(archs: list[str]) -> dict[str, str]:
    """A line style per architecture, the same in every plot (lstm solid, gru dash-dot, transformer dashed;
    dotted is the frontier fit's)."""
    from apcscale.models.config import ARCHITECTURES

    styles = ["-", "-.", "--", ":"]
    order = [*ARCHITECTURES, *sorted(set(archs) - set(ARCHITECTURES))]
    return {a: styles[order.index(a) % len(styles)] for a in archs}


def plot_curves(points: pd.DataFrame, runs: pd.DataFrame, fits: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    pts = points[(points["flops"] > 0) & np.isfinite(points["dev_loss"])]
    if pts.empty:
        plt.close(fig)
        return
    norm = colors.LogNorm(vmin=max(1.0, pts["N"].min()), vmax=max(pts["N"].max(), pts["N"].min() * 1.01))
    cmap = cm.viridis
    dashes = arch_styles(sorted(set(runs["arch"])))
    for run_id, df in pts.groupby("run_id", sort=False):
        row = runs[runs["run_id"] == run_id].iloc[0]
        ax.plot(df["flops"], df["dev_loss"], dashes.get(row["arch"], "-"), color=cmap(norm(row["N"])),
                lw=1.0, alpha=0.85 if row["status"] == "finished" else 0.6)
        if row["status"] == "pruned":
            ax.plot(df["flops"].iloc[-1], df["dev_loss"].iloc[-1], "x", color="tab:red", ms=6)
        if row["status"] == "failed":
            ax.plot(df["flops"].iloc[-1], df["dev_loss"].iloc[-1], "o", mfc="none", color="tab:red", ms=6)
    fr = fits.get("frontier", {}).get("all", {})
    c = np.sort(pts["flops"].to_numpy(float))
    env = np.minimum.accumulate(pts.sort_values("flops")["dev_loss"].to_numpy(float))
    ax.step(c, env, where="post", color="black", lw=1.6, label="envelope (best loss reached with <= C)")
    if "fit" in fr and fr.get("fit") is not None:
        lo, hi = fr["fit"].diagnostics.get("fit_range", (c[0], c[-1]))
        grid = np.geomspace(lo, hi, 200)  # drawn where it was fitted, not extrapolated
        ax.plot(grid, fr["fit"].predict(grid), color="tab:red", lw=1.8, ls=":",
                label=f"frontier fit: L_inf {fr['L_inf']:.3f} + (C_c/C)^{fr['alpha']:.3f}")
    finite = pts["dev_loss"].to_numpy(float)
    ax.set_ylim(finite.min() * 0.95, finite.max() * 1.05)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training compute C (FLOPs)")
    ax.set_ylabel("dev L1 loss")
    ax.set_title(title)
    sm = cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, label="N (context parameters)")
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="gray", ls=dashes[a], label=a) for a in sorted(set(pts["arch"])) if a in dashes]
    handles += [Line2D([], [], color="tab:red", marker="x", ls="none", label="pruned here")]
    ax.legend(handles=handles, fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_law(selection: pd.DataFrame, fits: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    archs = sorted(set(selection["arch"]))
    if not archs:
        return
    fig, axes = plt.subplots(1, len(archs), figsize=(5.5 * len(archs), 4.2), squeeze=False)
    for ax, arch in zip(axes[0], archs):
        sel = selection[selection["arch"] == arch]
        ds = sorted(set(sel["D"]))
        cmap = plt.get_cmap("plasma")
        fit = fits.get("joint", {}).get(arch, {}).get("fit")
        for i, D in enumerate(ds):
            s = sel[sel["D"] == D].sort_values("N")
            color = cmap(i / max(1, len(ds) - 1) * 0.85)
            ax.plot(s["N"], s["median_min_dev_loss"], "o", color=color, label=f"D = {_si(D)} frames")
            if fit is not None:
                grid = np.geomspace(sel["N"].min() / 1.5, sel["N"].max() * 1.5, 100)
                ax.plot(grid, fit.predict(grid, np.full_like(grid, D)), "-", color=color, lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N (context parameters)")
        ax.set_ylabel("median over seeds of min dev loss")
        ax.set_title(f"{arch}" + ("" if fit is not None else " (no L(N, D) fit)"))
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


__all__ = ["plot_curves", "plot_law"]
