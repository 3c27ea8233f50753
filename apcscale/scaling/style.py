"""One figure style for every plot of the project (the fit command's and the sweep's).

Matplotlib only (object API, Agg canvas: no pyplot state, no global rcParams
change), so it runs headless and inside other programs.

* sizes for a printed page: :data:`SINGLE` (3.5 in, one column) and
  :data:`DOUBLE` (7.1 in); fonts of 7-8 pt, legible at that size;
* colour-blind-safe colours: the Okabe-Ito palette for categories
  (:data:`PALETTE`, :func:`categorical`), viridis for ordered quantities such as
  model size (:func:`sequential`);
* log axes labelled with SI prefixes (1k, 10k, 1M, 1G, 1P) or plain numbers
  (0.3, 0.5, 2, 3), never "4x10^0", with at most about six labels per axis
  (:func:`log_axis`);
* every axis labelled with its unit (:func:`axis_label`);
* every figure written as PNG (300 dpi) and PDF (vector) side by side (:func:`save`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from cycler import cycler
from matplotlib import colormaps, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, to_hex
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

SINGLE = 3.5  # inches: one column of a two-column page
DOUBLE = 7.1  # inches: the full text width

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour-vision deficiencies
OKABE_ITO = {
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "green": "#009E73",
    "orange": "#E69F00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
    "grey": "#999999",
}
PALETTE = [OKABE_ITO[k] for k in ("blue", "vermillion", "green", "orange", "purple", "sky", "black")]
FIT = OKABE_ITO["vermillion"]  # fitted laws and their bands
DATA = OKABE_ITO["blue"]
ENVELOPE = OKABE_ITO["black"]
BASELINE = OKABE_ITO["grey"]
SEQUENTIAL = "viridis"  # ordered quantities (model size, data size): perceptually uniform, colour-blind safe
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "<", ">"]

RC = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 6.5,
    "legend.frameon": False,
    "legend.handlelength": 1.8,
    "figure.titlesize": 8.5,
    "lines.linewidth": 1.2,
    "lines.markersize": 3.5,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "axes.grid": True,
    "axes.grid.which": "major",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=PALETTE),
    "mathtext.default": "regular",
    "pdf.fonttype": 42,  # TrueType in the PDF: text stays text
    "savefig.dpi": 300,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.02,
}

UNITS = {"N": "parameters", "C": "FLOPs"}
SYMBOLS = {"N": "model size N", "D": "training data D", "C": "training compute C"}
_D_UNITS = (
    ("token", "tokens"),
    ("frame", "frames"),
    ("hour", "hours"),
    ("example", "examples"),
    ("sample", "samples"),
    ("utter", "utterances"),
    ("image", "images"),
    ("byte", "bytes"),
    ("word", "words"),
)


def styled(fn: Callable) -> Callable:
    """Run a plotting function inside the project's rc settings (restored afterwards)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with rc_context(RC):
            return fn(*args, **kwargs)

    return wrapper


def figure(
    ncols: int = 1,
    nrows: int = 1,
    *,
    width: float = SINGLE,
    height: float | None = None,
    sharey: bool = False,
    sharex: bool = False,
) -> tuple[Figure, np.ndarray]:
    """A figure of ``width`` inches (``SINGLE`` or ``DOUBLE``) with constrained layout; axes as a flat array."""
    if height is None:
        height = width / ncols * 0.78 * nrows + 0.35
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey, sharex=sharex)
    return fig, axes.ravel()


def save(fig: Figure, stem: str | Path) -> list[Path]:
    """Write ``stem.png`` (300 dpi) and ``stem.pdf`` (vector); returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".pdf")]
    with rc_context(RC):
        for p in paths:
            fig.savefig(p)
    return paths


# --------------------------------------------------------------------------------------
# colours
# --------------------------------------------------------------------------------------
def categorical(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def sequential(values: Sequence[float], *, lo: float = 0.0, hi: float = 0.82) -> tuple[LogNorm | None, Callable]:
    """A log colour scale over ``values`` (viridis, its light yellow end cut for contrast on white);
    returns (norm, value -> colour). One value: a single mid colour."""
    cmap = colormaps[SEQUENTIAL]
    vals = np.asarray([v for v in values if v is not None and np.isfinite(v) and v > 0], dtype=float)
    if vals.size == 0 or vals.min() == vals.max():
        return None, lambda v: to_hex(cmap(0.45))
    norm = LogNorm(vals.min(), vals.max())
    return norm, lambda v: to_hex(cmap(lo + (hi - lo) * float(np.clip(norm(v), 0, 1))))


def truncated_cmap(lo: float = 0.0, hi: float = 0.82):
    """viridis cut to [lo, hi] (for colour bars matching :func:`sequential`)."""
    from matplotlib.colors import ListedColormap

    cmap = colormaps[SEQUENTIAL]
    return ListedColormap(cmap(np.linspace(lo, hi, 256)))


# --------------------------------------------------------------------------------------
# numbers and axes
# --------------------------------------------------------------------------------------
_PREFIXES = ((1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def si(x: float, digits: int = 3) -> str:
    """1k, 10k, 2.5M, 1G, 3P: a count with an SI prefix; numbers below 1000 plainly (0.3, 12)."""
    if x is None or not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    for scale, prefix in _PREFIXES:
        if abs(x) >= scale * 0.9995:
            return f"{_num(x / scale, digits)}{prefix}"
    return _num(x, digits)


def _num(x: float, digits: int = 3) -> str:
    s = f"{x:.{digits}g}"
    if "e" in s:  # never scientific notation
        s = f"{x:.{max(digits - int(math.floor(math.log10(abs(x)))) - 1, 0)}f}"
    return s


def plain(x: float) -> str:
    """0.3, 2.5, 40: a loss value as printed on an axis (SI prefixes from 10k on)."""
    return si(x) if abs(x) >= 1e4 else _num(x, 3)


def _candidates(lo: float, hi: float) -> list[np.ndarray]:
    """Tick sets from sparse to dense over [lo, hi] (log axis)."""
    e0, e1 = math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1
    out = []
    for step in (4, 3, 2, 1):  # every 10^step decades
        ticks = 10.0 ** np.arange(e0, e1 + 1, step, dtype=float)
        out.append(ticks)
    for subs in (
        (1, 3),
        (1, 2, 5),
        (1, 2, 3, 5),
        (1, 1.5, 2, 3, 4, 5, 6, 8),
        tuple(np.arange(1, 10, 0.5)),
        tuple(np.arange(1, 10, 0.2)),
    ):
        ticks = np.array([s * 10.0**e for e in range(e0, e1 + 1) for s in subs], dtype=float)
        out.append(np.unique(ticks))
    return out


def log_axis(ax, which: str = "x", fmt: str = "si", max_labels: int = 6) -> None:
    """Log scale on ``which`` ("x" or "y") with at most ``max_labels`` labelled ticks at round values,
    labelled with SI prefixes (``fmt="si"``: counts, FLOPs) or plainly (``fmt="plain"``: losses); unlabelled
    minor ticks. Call it after the data and limits are set."""
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    lo, hi = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    if not (lo > 0 and hi > lo):
        return
    _round_log_ticks(axis, lo, hi, fmt, max_labels)
    (ax.set_xlim if which == "x" else ax.set_ylim)(lo, hi)


def size_colorbar(fig, ax, norm, label: str, max_labels: int = 6):
    """The colour bar of model size N (the truncated colour map over ``norm``) beside ``ax`` (an axes or a
    list of them), labelled as :func:`log_axis` labels an axis: a few round SI values, no minor labels
    (matplotlib's default mixes "10k" with "6 x 10^4")."""
    from matplotlib.cm import ScalarMappable

    cbar = fig.colorbar(ScalarMappable(norm=norm, cmap=truncated_cmap()), ax=ax, label=label, pad=0.01, aspect=30)
    lo, hi = sorted(float(v) for v in (norm.vmin, norm.vmax))
    if lo > 0 and hi > lo:
        _round_log_ticks(cbar.ax.yaxis, lo, hi, "si", max_labels)
    return cbar


def _round_log_ticks(axis, lo: float, hi: float, fmt: str, max_labels: int) -> None:
    best = None
    for ticks in _candidates(lo, hi):
        inside = ticks[(ticks >= lo * (1 - 1e-9)) & (ticks <= hi * (1 + 1e-9))]
        if inside.size > max_labels:
            break
        best = inside
        if inside.size >= 3:
            break
    if best is None or best.size < 2:  # a very narrow range: two or three evenly spaced values
        raw = np.geomspace(lo, hi, 3)
        best = np.array([float(f"{v:.2g}") for v in raw])
    fmt_fn = si if fmt == "si" else plain
    axis.set_major_locator(FixedLocator(best))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_fn(v)))
    axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10) * 1.0, numticks=50))
    axis.set_minor_formatter(NullFormatter())


def d_unit(column: str | None) -> str:
    """The unit of a training-set-size column, guessed from its name ("train_frames" -> frames)."""
    name = (column or "").lower()
    for key, unit in _D_UNITS:
        if key in name:
            return unit
    return "training-set size"


def axis_label(role: str, column: str | None = None, unit: str | None = None) -> str:
    """ "model size N (parameters)", "training data D (frames)", "training compute C (FLOPs)", or for a
    loss column its name ("dev loss" for dev/loss and dev_loss, "val loss" for val_loss)."""
    if role == "loss":
        if column is None or column.lower() in ("dev/loss", "dev_loss"):
            return "dev loss"
        if column.lower() in ("loss", "l"):
            return "loss"
        return column.replace("_", " ").replace("/", " ")
    unit = unit or (d_unit(column) if role == "D" else UNITS.get(role))
    return f"{SYMBOLS.get(role, role)} ({unit})" if unit else SYMBOLS.get(role, role)


def loss_limits(ax, values: Sequence[float], pad: float = 0.06) -> None:
    """y limits around the plotted losses (a fitted floor far below the data does not squash them)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & (v > 0)]
    if v.size:
        lo, hi = v.min(), v.max()
        span = math.log(hi / lo) if hi > lo else 0.1
        ax.set_ylim(lo * math.exp(-pad * span - 0.01), hi * math.exp(pad * span + 0.01))


def hline(
    ax, y: float, text: str, color: str = BASELINE, ls=(0, (4, 2)), where: str = "left", below: bool = False
) -> None:
    """A horizontal reference line labelled on the plot itself (baselines, floors): the label above the line,
    or below it (``below``, for the lower of two close lines)."""
    ax.axhline(y, color=color, lw=0.9, ls=ls, zorder=1)
    x = 0.02 if where == "left" else 0.98
    ax.annotate(
        text,
        xy=(x, y),
        xycoords=("axes fraction", "data"),
        xytext=(0, -1.5 if below else 1.5),
        textcoords="offset points",
        ha=where,
        va="top" if below else "bottom",
        fontsize=6.5,
        color=color,
    )


_BASELINE_STYLES = [(0, (4, 2)), (0, (1, 1.5)), (0, (6, 2, 1, 2))]


def _baseline_items(baselines) -> list[tuple[str, float]]:
    items = [(k, float(v)) for k, v in (baselines or {}).items() if v is not None and math.isfinite(v) and v > 0]
    return sorted(items, key=lambda kv: -kv[1])


def baseline_lines(ax, baselines, color: str = BASELINE) -> list[float]:
    """Each baseline ({label: loss}) as a horizontal line across the axes (labelled in the legend, see
    :func:`baseline_handles`: a label on the plot would sit on the data, which lies near the baselines).
    Returns the values drawn."""
    items = _baseline_items(baselines)
    for i, (_, value) in enumerate(items):
        ax.axhline(value, color=color, lw=0.9, ls=_BASELINE_STYLES[i % len(_BASELINE_STYLES)], zorder=1)
    return [v for _, v in items]


def baseline_handles(baselines, color: str = BASELINE) -> list:
    """Legend entries for :func:`baseline_lines`: "copy last frame: 0.342"."""
    from matplotlib.lines import Line2D

    return [
        Line2D([], [], color=color, lw=0.9, ls=_BASELINE_STYLES[i % len(_BASELINE_STYLES)], label=f"{k}: {v:.3g}")
        for i, (k, v) in enumerate(_baseline_items(baselines))
    ]


__all__ = [
    "SINGLE",
    "DOUBLE",
    "OKABE_ITO",
    "PALETTE",
    "FIT",
    "DATA",
    "ENVELOPE",
    "BASELINE",
    "MARKERS",
    "RC",
    "styled",
    "figure",
    "save",
    "categorical",
    "sequential",
    "truncated_cmap",
    "si",
    "plain",
    "log_axis",
    "d_unit",
    "axis_label",
    "loss_limits",
    "hline",
    "baseline_lines",
    "baseline_handles",
]
