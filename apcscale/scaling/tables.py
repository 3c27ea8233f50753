"""Tables of runs: reading (CSV, Parquet, JSON lines), column mapping, validation.

The fit command serves any domain, so columns are found by role:

======  ===================================================  ==========================================
role    meaning                                              names recognised (case-insensitive)
======  ===================================================  ==========================================
N       model size (parameters)                              N, n_params, params, num_params, ...
D       training-set size (frames, tokens, examples, hours)  D, data, train_frames, data_frames, tokens, ...
C       training compute (FLOPs) at the evaluation           C, flops, compute, train_flops
loss    the dev loss                                         loss, dev/loss, dev_loss, val_loss, ...
group   run identifier (rows of one run share it)            run, run_id, trial_id, group, name
======  ===================================================  ==========================================

An explicit mapping (``--n COL`` etc. on the command line) always wins; ``none``
switches a role off (``--c none``: no frontier even if a ``flops`` column exists). Note
that ``frames`` (frames *seen* so far, as in a run's curve.csv) is progress,
not the training-set size, and is not taken for D.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .validate import FitError, show_value

ROLES = ("N", "D", "C", "loss", "group")
CANDIDATES: dict[str, tuple[str, ...]] = {
    "N": (
        "n",
        "n_params",
        "params",
        "num_params",
        "nparams",
        "parameters",
        "model_params",
        "context_params",
        "model/params",
        "model_size",
    ),
    "D": (
        "d",
        "data",
        "data_size",
        "train_frames",
        "data_frames",
        "dataset_frames",
        "train_size",
        "tokens",
        "train_tokens",
        "dataset_size",
        "train_hours",
        "hours",
    ),
    "C": ("c", "flops", "compute", "train_flops", "total_flops"),
    "loss": (
        "loss",
        "dev/loss",
        "dev_loss",
        "val_loss",
        "valid_loss",
        "validation_loss",
        "eval_loss",
        "test_loss",
        "l",
    ),
    "group": ("run", "run_id", "trial", "trial_id", "group", "name", "run_name"),
}


def read_table(path: str | Path) -> pd.DataFrame:
    """A table from CSV, TSV, Parquet or JSON lines (by extension)."""
    path = Path(path)
    if not path.is_file():
        raise FitError(f"{path}: no such file")
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix == ".gz" else path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".jsonl", ".ndjson"):
            return pd.read_json(path, lines=True)
        if suffix in (".tsv", ".tab"):
            return pd.read_csv(path, sep="\t")
        return pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise FitError(f"{path}: cannot read as a table ({exc})") from None


def resolve_columns(df: pd.DataFrame, columns: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """Map roles (N, D, C, loss, group) to columns of ``df``: explicit names first, then known names."""
    columns = dict(columns or {})
    unknown = set(columns) - set(ROLES)
    if unknown:
        raise FitError(f"unknown column role(s) {sorted(unknown)}; roles are {', '.join(ROLES)}")
    lower = {str(c).lower(): c for c in df.columns}
    out: dict[str, str] = {}
    for role in ROLES:
        given = columns.get(role)
        if isinstance(given, str) and given.lower() in ("-", "none"):
            continue  # explicitly not used
        if given:
            if given not in df.columns:
                raise FitError(
                    f"--{role.lower()} {given!r}: no such column (columns: {', '.join(map(str, df.columns))})"
                )
            out[role] = given
            continue
        for cand in CANDIDATES[role]:
            if cand in lower and lower[cand] not in out.values():
                out[role] = lower[cand]
                break
    if "loss" not in out:
        raise FitError("no loss column: name it with --loss (columns: " + ", ".join(map(str, df.columns)) + ")")
    if not any(r in out for r in ("N", "D", "C")):
        raise FitError(
            "no covariate column: need at least one of N (--n), D (--d) or C (--c); columns: "
            + ", ".join(map(str, df.columns))
        )
    return out


def check_table(df: pd.DataFrame, cols: Mapping[str, str], drop_bad: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Numeric, finite, positive values in every used numeric column; bad rows raise or are dropped, by name.

    Two things are not errors: evaluations at zero compute (the start of each run's curve, which has no
    place on a log axis) are dropped with a note, and rows that repeat an earlier row exactly when there is
    no run column are kept with a warning (they would count as independent runs)."""
    warns: list[str] = []
    bad_any = np.zeros(len(df), dtype=bool)
    messages = []
    if "C" in cols:
        c = pd.to_numeric(df[cols["C"]], errors="coerce").to_numpy(dtype=float)
        start = c == 0
        if start.any():
            bad_any |= start
            warns.append(
                f"dropped {int(start.sum())} evaluation(s) at zero compute ({cols['C']} = 0: the start of "
                "each run, before any training; no point on a log axis)"
            )
    for role in ("loss", "N", "D", "C"):
        if role not in cols:
            continue
        name = cols[role]
        vals = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
        bad = (~np.isfinite(vals) | ~(vals > 0)) & ~bad_any
        if bad.any():
            rows = list(df.index[bad])
            shown = ", ".join(
                f"{r} ({show_value(df[name].iloc[i])})" for r, i in zip(rows[:8], np.flatnonzero(bad)[:8])
            )
            more = f" and {len(rows) - 8} more" if len(rows) > 8 else ""
            messages.append(f"column {name!r} ({role}): {len(rows)} row(s) not a finite number > 0: rows {shown}{more}")
            bad_any |= bad
    if messages:
        if not drop_bad:
            raise FitError(
                "; ".join(messages) + ". Fix the table or pass --drop-bad (drop_bad=True) to drop these rows."
            )
        warns.extend(m + ": dropped" for m in messages)
    out = df.loc[~bad_any].copy()
    for role in ("loss", "N", "D", "C"):
        if role in cols:
            out[cols[role]] = pd.to_numeric(out[cols[role]], errors="coerce").astype(float)
    if len(out) == 0:
        raise FitError("no usable rows left")
    dup = duplicate_warning(out, cols)
    if dup:
        warns.append(dup)
    return out, warns


def duplicate_warning(df: pd.DataFrame, cols: Mapping[str, str]) -> str | None:
    """Without a run column every row counts as an independent run: say so when rows repeat one another."""
    if "group" in cols:
        return None
    used = [cols[r] for r in ("N", "D", "C", "loss") if r in cols]
    dup = df.duplicated(subset=used, keep="first").to_numpy()
    if not dup.any():
        return None
    first = df.drop_duplicates(subset=used, keep="first")
    key = {tuple(r): i for i, r in zip(first.index, first[used].itertuples(index=False))}
    pairs = [f"{i} (= row {key[tuple(r)]})" for i, r in zip(df.index[dup], df.loc[dup, used].itertuples(index=False))]
    shown = ", ".join(pairs[:6]) + (f" and {len(pairs) - 6} more" if len(pairs) > 6 else "")
    return (
        f"{len(pairs)} row(s) repeat an earlier row exactly in {', '.join(used)}: rows {shown}. With no run "
        "column each counts as an independent run, which narrows the intervals: name the run column (--group) "
        "if they are evaluations of one run, or drop the copies"
    )


def per_run(df: pd.DataFrame, cols: Mapping[str, str], reduce: str = "min") -> pd.DataFrame:
    """One row per run: the row with its lowest loss (``"min"``, early stopping) or its last row by compute
    (``"last"``). Without a group column every row is a run."""
    if "group" not in cols:
        return df
    g = cols["group"]
    if reduce == "min":
        idx = df.groupby(g, sort=False)[cols["loss"]].idxmin()
    elif reduce == "last":
        key = cols.get("C")
        idx = df.groupby(g, sort=False)[key].idxmax() if key else df.groupby(g, sort=False).tail(1).index
    else:
        raise ValueError(f"reduce must be 'min' or 'last', not {reduce!r}")
    return df.loc[list(idx)]


BINS_PER_DECADE = 10
MIN_OTHER = (
    3  # a bin stands for "the best loss at this value" only with runs at this many values of the other covariate
)


def best_per_value(
    df: pd.DataFrame,
    by: str,
    loss: str,
    other: str | None = None,
    *,
    role: str | None = None,
    other_role: str | None = None,
    bins_per_decade: int = BINS_PER_DECADE,
) -> tuple[pd.DataFrame, str]:
    """For each value of ``by``: the row with the lowest loss (e.g. L(D): the best model size per data size,
    as Hestness et al.). Returns (rows, how they were chosen).

    That reads as "the loss in the limit of the other covariate" only if each value was trained at several
    values of ``other``. On a grid (runs share values) it is taken per distinct value. When ``by`` is
    continuous (more than 5 distinct values and fewer than 2 rows per value: runs that share no value, e.g.
    D = C / 6N),
    the best per value would be every row; the values are then binned (``bins_per_decade`` log bins) and a bin
    counts only if it holds runs at ``MIN_OTHER`` or more distinct values of ``other``. Too few such bins:
    :class:`FitError` with the reason.
    """
    role = role or by
    if other is None:
        return df.loc[df.groupby(by, sort=True)[loss].idxmin()], f"the best loss at each {role}"
    x = df[by].to_numpy(float)
    n_distinct = np.unique(x).size
    if n_distinct <= max(5, len(df) / 2):  # runs share values: a grid (perhaps with holes)
        return df.loc[df.groupby(by, sort=True)[loss].idxmin()], f"the best loss at each {role}"
    other_role = other_role or other
    b = np.floor(np.log10(x) * bins_per_decade + 1e-9)
    keep = []
    for v in np.unique(b):
        rows = df[b == v]
        if rows[other].round(12).nunique() >= MIN_OTHER:
            keep.append(rows[loss].idxmin())
    need = 5
    if len(keep) < need:
        raise FitError(
            f"{role} is continuous ({n_distinct} distinct values in {len(df)} rows), so 'the best loss at "
            f"each {role}' would be every point, whatever its {other_role}; binned into 1/{bins_per_decade}-"
            f"decade bins, {len(keep)} bin(s) hold runs at {MIN_OTHER} or more values of {other_role} "
            f"(need {need}): L({role}) not fitted"
        )
    how = (
        f"the best loss in each 1/{bins_per_decade}-decade bin of {role} holding runs at {MIN_OTHER}+ values of "
        f"{other_role} ({len(keep)} bins; {role} is continuous: {n_distinct} distinct values in {len(df)} rows)"
    )
    return df.loc[sorted(keep, key=lambda i: df.at[i, by])], how
