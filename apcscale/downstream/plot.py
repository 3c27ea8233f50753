"""The probe figure: accuracy against model size N and against the pretraining dev loss, one row per task,
one line per architecture, the log-Mel probe and the majority baseline as horizontal lines
(the project's figure style, apcscale.scaling.style)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from apcscale.downstream.labels import TASKS
from apcscale.scaling import style


@style.styled
def plot_probe(table: pd.DataFrame, stem: str | Path, title: str | None = None) -> list[Path]:
    """Write stem.png and stem.pdf; returns the paths."""
    tasks = list(dict.fromkeys(table["task"]))
    fig, axes = style.figure(ncols=2, nrows=len(tasks), width=style.DOUBLE, height=0.4 + 2.0 * len(tasks))
    models = table[table["model"] != "log-mel"]
    archs = sorted(models["arch"].dropna().unique())
    for row, task in enumerate(tasks):
        t = table[table["task"] == task]
        ref = t[t["model"] == "log-mel"]
        enc = t[t["model"] != "log-mel"]
        majority = float(t["majority"].iloc[0]) if len(t) else np.nan
        held = TASKS[task].held_out if task in TASKS else ""
        for col, (xcol, xlabel) in enumerate(
            (("N", style.axis_label("N")), ("dev_loss", "pretraining dev loss (L1, min of the run)"))
        ):
            ax = axes[row * 2 + col]
            values, points = [majority], []
            for i, arch in enumerate(archs):
                a = enc[enc["arch"] == arch].sort_values(xcol)
                if a.empty:
                    continue
                ax.plot(
                    a[xcol],
                    100 * a["accuracy"],
                    marker=style.MARKERS[i % len(style.MARKERS)],
                    color=style.categorical(i),
                    label=arch,
                )
                values += list(a["accuracy"])
                points += list(zip(a[xcol], 100 * a["accuracy"]))
            if xcol == "N" and len(enc):
                style.log_axis(ax, "x")
            finite = [v for v in values + list(ref["accuracy"]) if np.isfinite(v)]
            if finite:
                lo, hi = min(finite), max(finite)
                pad = max(0.04, 0.08 * (hi - lo))
                ax.set_ylim(100 * max(0.0, lo - pad), 100 * min(1.0, hi + pad) + 2)
            y0, y1 = ax.get_ylim()

            def near_top(v: float) -> bool:  # a label above the line would run into the title
                return 100 * v > y1 - 0.12 * (y1 - y0)

            if len(ref):
                acc = float(ref["accuracy"].iloc[0])
                where, below = _label_place(ax, points, 100 * acc, must_be_below=acc < majority or near_top(acc))
                style.hline(ax, 100 * acc, f"log-Mel {100 * acc:.1f}%", color=style.ENVELOPE, below=below, where=where)
            if np.isfinite(majority):
                style.hline(
                    ax,
                    100 * majority,
                    f"majority {100 * majority:.1f}%",
                    ls=(0, (1, 1.5)),
                    where="right",
                    below=(len(ref) > 0 and majority < float(ref["accuracy"].iloc[0])) or near_top(majority),
                )
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{TASKS[task].title if task in TASKS else task} accuracy (%)")
            ax.set_title(f"{TASKS[task].title if task in TASKS else task}: held-out {held}", loc="left")
    if archs:
        from matplotlib.lines import Line2D

        handles, labels = axes[0].get_legend_handles_labels()
        handles += [
            Line2D([], [], color=style.ENVELOPE, lw=0.9, ls=(0, (4, 2))),
            Line2D([], [], color=style.BASELINE, lw=0.9, ls=(0, (1, 1.5))),
        ]
        labels += ["log-Mel input (same probe)", "majority class"]
        fig.legend(handles, labels, loc="outside upper right", ncol=len(labels))
    if title:
        fig.suptitle(title, x=0.02, ha="left")
    return style.save(fig, stem)


def _label_place(ax, points: list[tuple[float, float]], y: float, *, must_be_below: bool) -> tuple[str, bool]:
    """(where, below) for the label of a line at y: the end of the axes (its outer 30%) and the side of the
    line where it covers the fewest data points (axes fractions, after the limits and scales are set)."""
    to_axes = ax.transAxes.inverted()
    frac = [to_axes.transform(ax.transData.transform((px, py))) for px, py in points]
    line = to_axes.transform(ax.transData.transform((points[0][0] if points else 1.0, y)))[1] if points else 0.0
    options = [(w, b) for b in ((True,) if must_be_below else (False, True)) for w in ("left", "right")]

    def covered(where: str, below: bool) -> int:
        lo, hi = (line - 0.08, line + 0.02) if below else (line - 0.02, line + 0.08)
        return sum(1 for fx, fy in frac if (fx < 0.32 if where == "left" else fx > 0.68) and lo <= fy <= hi)

    return min(options, key=lambda o: covered(*o))  # the first of the least covered: left, above by preference
