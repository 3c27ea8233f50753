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
        for col, (xcol, xlabel) in enumerate((("N", style.axis_label("N")),
                                              ("dev_loss", "pretraining dev loss (L1, min of the run)"))):
            ax = axes[row * 2 + col]
            values = [majority]
            for i, arch in enumerate(archs):
                a = enc[enc["arch"] == arch].sort_values(xcol)
                if a.empty:
                    continue
                ax.plot(a[xcol], 100 * a["accuracy"], marker=style.MARKERS[i % len(style.MARKERS)],
                        color=style.categorical(i), label=arch)
                values += list(a["accuracy"])
            if xcol == "N" and len(enc):
                style.log_axis(ax, "x")
            if len(ref):
                acc = float(ref["accuracy"].iloc[0])
                values.append(acc)
                style.hline(ax, 100 * acc, f"log-Mel {100 * acc:.1f}%", color=style.ENVELOPE,
                            below=acc < majority)
            if np.isfinite(majority):
                style.hline(ax, 100 * majority, f"majority {100 * majority:.1f}%", ls=(0, (1, 1.5)),
                            where="right", below=len(ref) > 0 and majority < float(ref["accuracy"].iloc[0]))
            finite = [v for v in values if np.isfinite(v)]
            if finite:
                lo, hi = min(finite), max(finite)
                pad = max(0.04, 0.08 * (hi - lo))
                ax.set_ylim(100 * max(0.0, lo - pad), 100 * min(1.0, hi + pad))
            ax.set_xlabel(xlabel)
            ax.set_ylabel(f"{TASKS[task].title if task in TASKS else task} accuracy (%)")
            ax.set_title(f"{TASKS[task].title if task in TASKS else task}: held-out {held}", loc="left")
            if row == 0 and col == 0 and archs:
                ax.legend(loc="lower right")
    if title:
        fig.suptitle(title)
    return style.save(fig, stem)
