"""The Lightning callback that reports each evaluation of a sweep run to Ray Tune.

At every dev evaluation (log-spaced over the run's budget, so at regular
intervals of log-compute) it sends Tune the dev loss, frames, FLOPs, steps, wall
time, N and D, and the run's own extrapolation of its learning curve to its
planned end (mean and band, from `apcscale.scaling.extrapolate_curve`). The
scheduler takes its pruning decision on these reports; the progress table shows
the prediction.
"""

from __future__ import annotations

import math
import time
from typing import Any

import lightning as L
import numpy as np

#: keys of every report (the tidy results table and the scheduler read them)
METRIC = "dev_loss"
TIME_ATTR = "flops"


def extrapolate_to_end(
    compute: list[float], losses: list[float], planned: float, level: float, min_points: int
) -> dict[str, float]:
    """The run's best-so-far curve extrapolated to its planned compute (NaNs when it cannot be)."""
    out = {"pred_final": math.nan, "pred_final_lo": math.nan, "pred_final_hi": math.nan}
    c = np.asarray(compute, float)
    l = np.asarray(losses, float)
    ok = (c > 0) & np.isfinite(l)
    if ok.sum() < min_points or not planned > 0:
        return out
    c, l = c[ok], np.minimum.accumulate(l[ok])
    if c[-1] >= planned:
        out.update(pred_final=float(l[-1]), pred_final_lo=float(l[-1]), pred_final_hi=float(l[-1]))
        return out
    try:
        from apcscale.sweep.policy import default_extrapolator

        band = default_extrapolator(c / planned, l, np.array([1.0]), level)
    except Exception:
        return out
    if band.flag and band.flag != "no_bend":
        return out
    out.update(pred_final=float(band.mean[-1]), pred_final_lo=float(band.lo[-1]), pred_final_hi=float(band.hi[-1]))
    return out


class TuneReportCallback(L.Callback):
    """Reports every dev evaluation through `ray.tune.report` (call only inside a Tune trial).

    extra: constant fields of every report (run id, N, D, planned compute, ...).
    planned_flops: the run's planned training compute (for the fraction and the extrapolation).
    """

    def __init__(
        self,
        extra: dict[str, Any] | None = None,
        planned_flops: float = math.nan,
        level: float = 0.8,
        min_points: int = 6,
        report=None,
    ):
        self.extra = dict(extra or {})
        self.planned = float(planned_flops)
        self.level = level
        self.min_points = min_points
        self._report = report  # injectable for tests; default ray.tune.report
        self._compute: list[float] = []
        self._losses: list[float] = []
        self._last_key: tuple | None = None

    def seed_curve(self, points: list[dict[str, float]]) -> None:
        """On resume: the evaluations already done belong to the curve being extrapolated."""
        for p in points:
            self._compute.append(float(p["flops"]))
            self._losses.append(float(p["dev/loss"]))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not getattr(pl_module, "last_eval", None) or not trainer.is_global_zero:
            return
        clock = getattr(pl_module, "clock", None)
        final = bool(clock is not None and clock.done(pl_module.frames_seen, trainer.global_step))
        converging = bool((getattr(pl_module, "stopping_state", None) or {}).get("fired"))
        self.report_point(pl_module.last_eval, final=final, converging=converging)

    def report_point(self, ev: dict[str, float], *, final: bool = False, converging: bool = False) -> None:
        """final: the run's last evaluation (its budget spent or its cooldown over); converging: its
        stopping rule has fired and it is cooling down to its end. The scheduler stops neither."""
        """Report one evaluation (a `last_eval` dict, or a row of the run's curve)."""
        key = (ev["frames"], ev["steps"])
        if key == self._last_key:
            return
        self._last_key = key
        if not self._compute or ev["flops"] > self._compute[-1]:
            self._compute.append(float(ev["flops"]))
            self._losses.append(float(ev["dev/loss"]))
        metrics = {
            METRIC: float(ev["dev/loss"]),
            "best_dev_loss": float(np.nanmin(self._losses)) if self._losses else math.nan,
            "copy_baseline": float(ev["dev/copy_baseline"]),
            "frames": float(ev["frames"]),
            "flops": float(ev["flops"]),
            "steps": float(ev["steps"]),
            "wall_time": float(ev["wall_time"]),
            "train_time": float(ev["train_time"]),
            "lr": float(ev["lr"]),
            "fraction": float(ev["flops"]) / self.planned if self.planned > 0 else math.nan,
            "timestamp_s": time.time(),
            "final": 1.0 if final else 0.0,
            "converging": 1.0 if converging else 0.0,
            **self.extra,
        }
        metrics.update(extrapolate_to_end(self._compute, self._losses, self.planned, self.level, self.min_points))
        report = self._report
        if report is None:
            from ray import tune

            report = tune.report
        report(metrics)


__all__ = ["TuneReportCallback", "extrapolate_to_end", "METRIC", "TIME_ATTR"]
