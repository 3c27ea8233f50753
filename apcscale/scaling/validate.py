"""Input checks shared by every fit: bad rows are an error or a named warning, never silent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np


class FitError(ValueError):
    """The data cannot be fitted as asked. The message says which rows or columns and why."""


OnBad = Literal["raise", "drop"]


def show_value(v) -> str:
    """A cell value as a person wrote it: 0.5, nan, inf, 'oops'."""
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return f"{float(v):g}"
    return repr(v)


def _describe_rows(rows: Sequence[int], values: np.ndarray, labels: Sequence | None, limit: int = 8) -> str:
    parts = []
    for i in rows[:limit]:
        name = labels[i] if labels is not None else i
        parts.append(f"{name} ({show_value(values[i])})")
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return ", ".join(parts) + more


def as_float_array(values, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise FitError(f"{name}: not numeric ({exc})") from None
    if arr.ndim == 0:
        arr = arr[None]
    if arr.ndim != 1:
        raise FitError(f"{name}: expected a 1-d array, got shape {arr.shape}")
    return arr


def check_columns(
    columns: dict[str, np.ndarray],
    *,
    loss: str,
    n_params: int,
    labels: Sequence | None = None,
    on_bad: OnBad = "raise",
    extra_points: int = 2,
) -> tuple[np.ndarray, list[str]]:
    """Check that every column is finite and positive and the fit is possible.

    Returns a boolean mask of usable rows and the warnings to attach to the fit.
    With ``on_bad="raise"`` any bad value raises :class:`FitError` naming the rows;
    with ``on_bad="drop"`` those rows are dropped and a warning names them.
    """
    if on_bad not in ("raise", "drop"):
        raise ValueError(f"on_bad must be 'raise' or 'drop', not {on_bad!r}")
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise FitError("columns have different lengths: " + ", ".join(f"{k}={n}" for k, n in lengths.items()))
    n = next(iter(lengths.values()))
    if labels is not None and len(labels) != n:
        raise FitError(f"labels: {len(labels)} labels for {n} rows")
    if n == 0:
        raise FitError("no data: 0 rows")
    warnings: list[str] = []
    mask = np.ones(n, dtype=bool)
    for name, values in columns.items():
        for what, bad in (
            ("NaN", np.isnan(values)),
            ("infinite", np.isinf(values)),
            ("zero or negative", np.isfinite(values) & (values <= 0)),
        ):
            rows = np.flatnonzero(bad)
            if rows.size == 0:
                continue
            listed = _describe_rows(list(rows), values, labels)
            msg = f"{name}: {rows.size} {what} value{'s' if rows.size > 1 else ''} at row{'s' if rows.size > 1 else ''} {listed}"
            if on_bad == "raise":
                hint = " (losses and covariates must be finite and > 0)" if what != "NaN" else ""
                raise FitError(
                    msg + hint + "; fix or drop these rows (on_bad='drop', or --drop-bad on the command line)"
                )
            warnings.append(msg + ": dropped")
            mask &= ~bad
    kept = int(mask.sum())
    need = n_params + extra_points
    if kept < need:
        raise FitError(
            f"too few points: {kept} usable row{'s' if kept != 1 else ''} for a law with {n_params} parameters "
            f"(need at least {need})"
        )
    for name, values in columns.items():
        v = values[mask]
        if np.all(v == v[0]):
            what = "the loss" if name == loss else f"column {name}"
            raise FitError(
                f"{what} is constant ({v[0]:g} in all {kept} rows): nothing to fit"
                if name == loss
                else f"{what} is constant ({v[0]:g} in all {kept} rows): its exponent cannot be fitted"
            )
    return mask, warnings
