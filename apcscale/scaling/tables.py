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

from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from .validate import FitError, show_value

ROLES = ("N", "D", "C", "loss", "group")
CANDIDATES: dict[str, tuple[str, ...]] = {
    "N": ("n", "n_params", "params", "num_params", "nparams", "parameters", "model_params", "context_params",
          "model/params", "model_size"),
    "D": ("d", "data", "data_size", "train_frames", "data_frames", "dataset_frames", "train_size", "tokens",
          "train_tokens", "dataset_size", "train_hours", "hours"),
    "C": ("c", "flops", "compute", "train_flops", "total_flops"),
    "loss": ("loss", "dev/loss", "dev_loss", "val_loss", "valid_loss", "validation_loss", "eval_loss", "test_loss", "l"),
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
                raise FitError(f"--{role.lower()} {given!r}: no such column (columns: {', '.join(map(str, df.columns))})")
            out[role] = given
            continue
        for cand in CANDIDATES[role]:
            if cand in lower and lower[cand] not in out.values():
                out[role] = lower[cand]
                break
    if "loss" not in out:
        raise FitError("no loss column: name it with --loss (columns: " + ", ".join(map(str, df.columns)) + ")")
    if not any(r in out for r in ("N", "D", "C")):
        raise FitError("no covariate column: need at least one of N (--n), D (--d) or C (--c); columns: "
                       + ", ".join(map(str, df.columns)))
    return out


def check_table(df: pd.DataFrame, cols: Mapping[str, str], drop_bad: bool = False) -> tuple[pd.DataFrame, list[str]]:
    """Numeric, finite, positive values in every used numeric column; bad rows raise or are dropped, by name."""
    warns: list[str] = []
    bad_any = np.zeros(len(df), dtype=bool)
    messages = []
    for role in ("loss", "N", "D", "C"):
        if role not in cols:
            continue
        name = cols[role]
        vals = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(vals) | ~(vals > 0)
        if bad.any():
            rows = list(df.index[bad])
            shown = ", ".join(f"{r} ({show_value(df[name].iloc[i])})" for r, i in zip(rows[:8], np.flatnonzero(bad)[:8]))
            more = f" and {len(rows) - 8} more" if len(rows) > 8 else ""
            messages.append(f"column {name!r} ({role}): {len(rows)} row(s) not a finite number > 0: rows {shown}{more}")
            bad_any |= bad
    if messages:
        if not drop_bad:
            raise FitError("; ".join(messages) + ". Fix the table or pass --drop-bad (drop_bad=True) to drop these rows.")
        warns.extend(m + ": dropped" for m in messages)
    out = df.loc[~bad_any].copy()
    for role in ("loss", "N", "D", "C"):
        if role in cols:
            out[cols[role]] = pd.to_numeric(out[cols[role]], errors="coerce").astype(float)
    if len(out) == 0:
        raise FitError("no usable rows left")
    return out, warns


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


def best_per_value(df: pd.DataFrame, by: str, loss: str) -> pd.DataFrame:
    """For each distinct value of ``by``: the row with the lowest loss (e.g. L(D): the best model size per
    data size, as Hestness et al.)."""
    return df.loc[df.groupby(by, sort=True)[loss].idxmin()]
