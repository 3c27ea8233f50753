"""What each run says about L(N, D): its converged loss, or an interval that holds it.

A run's L(N, D) point is the minimum of its dev curve once it has converged (Kaplan et al.: early
stopping; Hestness et al.: the minimum validation error, median over seeds). Not every run gets
there, and none is silently dropped:

- converged: the stopping rule fired (apcscale.train.stopping), or the curve had already turned up
  for `patience` evaluations when the scheduler stopped it: the minimum is the point;
- at budget: a run without a stopping rule that spent its budget (a fixed-budget study): its
  minimum is the point, as the study defined it;
- not converged: it reached its cap still improving. Its converged loss is at most its minimum
  (an upper bound) and, from the extrapolation of its stable phase (apcscale.scaling.extrapolate,
  to 10x its compute), at least that prediction's lower band less the sweep's measured cooldown
  gain: an interval [lo, hi];
- stopped: the scheduler stopped it (pruned). Its converged loss is at most its minimum so far and
  at least the lower band of its extrapolation to its planned end, less the cooldown gain; when
  the extrapolation cannot be trusted the point is censored: only the upper bound holds (lo = 0).

The joint fit uses an exact point as a point and an interval as an interval: a prediction inside
[lo, hi] costs nothing, one outside costs its distance to the interval (apcscale.scaling.fitting).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from apcscale.train.stopping import plateaued

KINDS = ("converged", "at budget", "not converged", "stopped", "censored")
EXACT = ("converged", "at budget")
HORIZON = 10.0  # a not-converged run's converged loss is sought at this multiple of its compute


def cooldown_gain(runs: pd.DataFrame, points: pd.DataFrame) -> float:
    """Median relative drop from the last stable-phase evaluation to the run's minimum after it, over
    finished runs that have both (0 when none has): what a cooldown adds to a stable-phase curve."""
    gains = []
    for _, r in runs[runs["status"] == "finished"].iterrows():
        cf = r.get("cooldown_frames")
        if cf is None or not np.isfinite(cf):
            continue
        df = points[(points["run_id"] == r["run_id"]) & np.isfinite(points["dev_loss"])]
        stable = df[(df["frames"] > 0) & (df["frames"] <= cf)]
        after = df[df["frames"] > cf]
        if len(stable) and len(after):
            gains.append(1.0 - float(after["dev_loss"].min()) / float(stable["dev_loss"].iloc[-1]))
    return float(max(0.0, np.median(gains))) if gains else 0.0


def _stable(df: pd.DataFrame, cooldown_frames: float) -> pd.DataFrame:
    df = df[(df["flops"] > 0) & np.isfinite(df["dev_loss"])]
    if cooldown_frames is not None and np.isfinite(cooldown_frames):
        df = df[df["frames"] <= cooldown_frames]
    return df


def _extrapolated(stable: pd.DataFrame, target_flops: float, level: float) -> tuple[float, float, str | None]:
    """(median, lower band) of the stable phase's loss at target_flops, and the extrapolator's flag."""
    from apcscale.scaling.extrapolate import extrapolate_curve

    if len(stable) < 5 or not target_flops > 0:
        return math.nan, math.nan, "too_few_points"
    c = stable["flops"].to_numpy(float)
    y = np.minimum.accumulate(stable["dev_loss"].to_numpy(float))
    pred = extrapolate_curve(c, y, max(target_flops, c[-1] * 1.0001), level)
    return float(pred.mean), float(pred.lo), pred.flag


def run_point(
    run: pd.Series, curve: pd.DataFrame, *, gain: float, level: float = 0.8, patience: int = 3, min_delta: float = 0.002
) -> dict[str, Any] | None:
    """The L(N, D) point of one run (see the module docstring), or None when it has none."""
    df = curve[np.isfinite(curve["dev_loss"]) & (curve["flops"] > 0)]
    if df.empty or run["status"] not in ("finished", "stopped", "pruned"):
        return None
    best = float(df["dev_loss"].min())
    stable = _stable(curve, run.get("cooldown_frames"))
    out = {"loss": best, "lo": best, "hi": best, "note": ""}
    if run["status"] == "finished":
        converged = run.get("converged")
        if converged is None or (isinstance(converged, float) and math.isnan(converged)):
            return {**out, "kind": "at budget", "note": "fixed budget (no stopping rule)"}
        if bool(converged):
            return {**out, "kind": "converged"}
        if plateaued(df["dev_loss"].tolist(), patience, min_delta):  # the rule's test passed too late to act
            return {**out, "kind": "converged", "note": "its curve had stopped improving before its cap"}
        target = float(df["flops"].iloc[-1]) * HORIZON
        why = "reached its cap still improving"
    else:
        if plateaued(stable["dev_loss"].tolist(), patience, min_delta):
            return {**out, "kind": "converged", "note": "stopped after its minimum"}
        target = float(run.get("planned_flops") or math.nan)
        why = "stopped by the scheduler"
    mean, lo, flag = _extrapolated(stable, target, level)
    if flag is None and np.isfinite(lo):
        lo = min(lo * (1.0 - gain), best)
        kind = "not converged" if run["status"] == "finished" else "stopped"
        # `loss` stays what was measured (the minimum); the interval says how much lower it could go
        return {
            "loss": best,
            "lo": lo,
            "hi": best,
            "kind": kind,
            "note": f"{why}: converged loss in [{lo:.4f}, {best:.4f}] (extrapolated, cooldown gain {gain:.1%})",
        }
    return {
        "loss": best,
        "lo": 0.0,
        "hi": best,
        "kind": "censored",
        "note": f"{why}; its extrapolation cannot be trusted ({flag}): only its minimum {best:.4f} bounds it",
    }


def run_points(
    runs: pd.DataFrame, points: pd.DataFrame, *, level: float = 0.8, patience: int = 3, min_delta: float = 0.002
) -> pd.DataFrame:
    """One row per run that has an L(N, D) point: kind, loss, lo, hi, note (plus the run's columns)."""
    gain = cooldown_gain(runs, points)
    rows = []
    for _, r in runs.iterrows():
        p = run_point(
            r, points[points["run_id"] == r["run_id"]], gain=gain, level=level, patience=patience, min_delta=min_delta
        )
        if p is not None:
            rows.append(
                {
                    "run_id": r["run_id"],
                    "arch": r["arch"],
                    "label": r["label"],
                    "N": r["N"],
                    "subset": r["subset"],
                    "D": r["D"],
                    "hours": r["hours"],
                    "seed": r["seed"],
                    **p,
                }
            )
    cols = ["run_id", "arch", "label", "N", "subset", "D", "hours", "seed", "kind", "loss", "lo", "hi", "note"]
    return pd.DataFrame(rows, columns=cols)


def select(run_pts: pd.DataFrame) -> pd.DataFrame:
    """Per (arch, N, D): the median across seeds of the runs' points (Hestness et al.), its interval
    (the medians of the bounds), the weakest kind among the seeds, and the seed spread (max - min of
    the seeds' measured minima)."""
    cols = ["arch", "label", "N", "subset", "D", "hours", "seeds", "kind", "loss", "lo", "hi", "spread", "in_fit"]
    if run_pts.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for key, g in run_pts.groupby(["arch", "label", "N", "subset", "D", "hours"], sort=True):
        kind = max(g["kind"], key=KINDS.index)
        measured = g["hi"]
        rows.append(
            {
                **dict(zip(["arch", "label", "N", "subset", "D", "hours"], key)),
                "seeds": int(g["seed"].nunique()),
                "kind": kind,
                "loss": float(g["loss"].median()),
                "lo": float(g["lo"].median()),
                "hi": float(g["hi"].median()),
                "spread": float(measured.max() - measured.min()) if len(measured) >= 2 else math.nan,
                "in_fit": True,
            }
        )
    return pd.DataFrame(rows, columns=cols).sort_values(["arch", "N", "D"]).reset_index(drop=True)


__all__ = ["run_points", "select", "cooldown_gain", "KINDS", "EXACT"]
