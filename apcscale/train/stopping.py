"""Training until the dev loss stops improving: the stopping rule that makes a run's minimum its
converged loss L(N, D).

Kaplan et al. (2020) measured L(N, D) by training each (N, D) with early stopping, and Hestness
et al. (2017) took the minimum validation error of each run; a fixed number of frames for every
run would instead measure "N at that many frames" (a tiny subset repeated hundreds of times, the
full data under-trained). So a run trains until its dev loss has stopped improving, or until a
cap that scales with its subset (BudgetConfig: epochs, clamped by min_frames and max_frames).

The rule (`plateaued`): at an evaluation, the run has plateaued when none of its last `patience`
evaluations improved on the best loss before them by at least `min_delta` (relative). Only
evaluations of the stable phase count (the learning-rate cooldown lowers the loss for reasons of
its own). A slow improver that gains `min_delta` within every window of `patience` evaluations is
never stopped; with log-spaced evaluations a window is a fixed ratio of frames, the natural scale
of a power-law curve.

When the rule fires, a WSD run does not stop at once: it cools down, as a run of that length
would have (the learning rate decays over the last `optim.decay` of the run, which now ends at
frames / (1 - decay)), and stops there, so every converged run ends annealed; its L(N, D) point is
the minimum of its whole curve. A run with another schedule stops at once. A run that reaches its
cap before the rule fires is *not converged*: its minimum is only an upper bound of its converged
loss (the sweep's fits say how they use it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightning as L

from apcscale.utils.schema import check


@dataclass
class StoppingConfig:
    """When a run has converged (see the module docstring). Off by default for a single training
    recipe (its budget is what it trains); the default study turns it on."""

    enabled: bool = False
    patience: int = 3  # evaluations without a relative improvement of at least min_delta ...
    min_delta: float = 0.002  # ... on the best dev loss before them
    cooldown_points: int = 3  # evaluations inside the cooldown that follows (besides its end)

    def validate(self) -> None:
        check(self.patience >= 1, "patience", f"must be at least 1, got {self.patience}")
        check(0.0 <= self.min_delta < 0.5, "min_delta", f"must be in [0, 0.5), got {self.min_delta}")
        check(self.cooldown_points >= 0, "cooldown_points", f"must be >= 0, got {self.cooldown_points}")


def plateaued(losses: Sequence[float], patience: int, min_delta: float) -> bool:
    """True when none of the last `patience` losses is below (1 - min_delta) x the best before them.

    Non-finite losses count as no improvement. Fewer than patience + 1 losses: never."""
    values = [float(v) for v in losses]
    if len(values) <= patience:
        return False
    before = [v for v in values[:-patience] if math.isfinite(v)]
    if not before:
        return False
    best = min(before)
    recent = [v for v in values[-patience:] if math.isfinite(v)]
    return not any(v < best * (1.0 - min_delta) for v in recent)


def cooldown_end(position: int, schedule: str, decay: float) -> int:
    """Where a run whose rule fired at `position` (frames or steps) ends: after a WSD cooldown over
    the last `decay` of the run, or at once for another schedule."""
    if schedule != "wsd" or decay <= 0.0:
        return position
    return int(math.ceil(position / (1.0 - decay)))


def cooldown_points(start: int, end: int, n: int) -> list[int]:
    """Evaluation points inside a cooldown from `start` to `end` (evenly spaced), and `end`."""
    if end <= start:
        return [end]
    inner = [start + int(round((end - start) * (i + 1) / (n + 1))) for i in range(n)]
    return sorted({p for p in inner if start < p < end} | {end})


class EarlyStopping(L.Callback):
    """Applies the stopping rule after every dev evaluation of a run (module docstring).

    Reads the module's clock and last evaluation; when the rule fires it ends the run's clock at
    the end of the cooldown (`Clock.end_at`) and records on the module when and why
    (`module.stopping_state`), which the run's summary reports (converged or not)."""

    def __init__(self, config: StoppingConfig, schedule: str, decay: float):
        self.config = config
        self.schedule = schedule
        self.decay = decay

    @staticmethod
    def state(module) -> dict[str, Any]:
        st = getattr(module, "stopping_state", None)
        if st is None:
            st = module.stopping_state = {
                "fired": False,
                "stable": [],
                "fired_at": None,
                "ends_at": None,
                "best_before": None,
            }
        return st

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not self.config.enabled or trainer.state.fn != "fit":
            return
        ev = getattr(pl_module, "last_eval", None) or {}
        clock = getattr(pl_module, "clock", None)
        if not ev or clock is None:
            return
        st = self.state(pl_module)
        if st["fired"]:
            return
        position = clock.position(pl_module.frames_seen, trainer.global_step)
        if self._in_scheduled_cooldown(clock, position):
            return  # the cap's own cooldown has begun: the rule judges the stable phase only
        st["stable"].append(float(ev["dev/loss"]))
        if not plateaued(st["stable"], self.config.patience, self.config.min_delta):
            return
        end = cooldown_end(position, self.schedule, self.decay)
        st.update(
            fired=True,
            fired_at=int(position),
            ends_at=int(min(end, clock.total)),
            best_before=min(v for v in st["stable"][: -self.config.patience] if math.isfinite(v)),
        )
        if end < clock.total:
            clock.end_at(end, cooldown_points(position, end, self.config.cooldown_points))
            pl_module.cooldown_from = position
        if clock.done(pl_module.frames_seen, trainer.global_step):
            trainer.should_stop = True

    def _in_scheduled_cooldown(self, clock, position: int) -> bool:
        if self.schedule != "wsd" or self.decay <= 0:
            return False
        return position >= (1.0 - self.decay) * clock.total

    def state_dict(self) -> dict[str, Any]:
        return {}


def stopping_summary(module, cfg: StoppingConfig, reached_end: bool) -> dict[str, Any]:
    """The summary fields of a run's end: why it ended and whether its minimum is converged."""
    st = getattr(module, "stopping_state", None) or {}
    if not cfg.enabled:
        return {"end": "budget" if reached_end else None, "converged": None}
    fired = bool(st.get("fired"))
    return {
        "end": ("stopping_rule" if fired else "cap") if reached_end else None,
        "converged": fired,
        "stopping": {
            "patience": cfg.patience,
            "min_delta": cfg.min_delta,
            "fired_at": st.get("fired_at"),
            "cooldown_until": st.get("ends_at"),
        },
    }


__all__ = ["StoppingConfig", "EarlyStopping", "plateaued", "cooldown_end", "cooldown_points", "stopping_summary"]
