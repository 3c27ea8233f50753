"""Optimiser and learning-rate schedule settings.

The schedule is a function of the fraction of the run's budget already spent
(frames or steps), not of a guessed step count, so it is exact for frame budgets
with variable-length batches.

- "wsd" (warmup-stable-decay, the default): linear warmup, constant rate, then a
  cooldown over the last `decay` fraction (1 - sqrt shape, Hagele et al. 2024).
  The stable phase does not depend on the planned length, so a prefix of the
  curve says something about its end (what early extrapolation needs).
- "cosine": warmup then cosine decay to min_lr_ratio at the end of the budget.
- "constant": warmup then constant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from apcscale.utils.schema import check


@dataclass
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 0.01
    betas: list[float] | None = None  # default [0.9, 0.98]
    eps: float = 1e-8
    grad_clip: float = 1.0  # max gradient norm; 0 disables clipping
    schedule: Literal["wsd", "cosine", "constant"] = "wsd"
    warmup: float = 0.02  # fraction of the budget
    decay: float = 0.2  # wsd: cooldown fraction of the budget
    decay_shape: Literal["sqrt", "linear"] = "sqrt"
    min_lr_ratio: float = 0.0

    def validate(self) -> None:
        check(self.lr > 0, "lr", f"must be positive, got {self.lr}")
        check(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        check(self.grad_clip >= 0, "grad_clip", f"must be >= 0, got {self.grad_clip}")
        check(0 <= self.warmup < 1, "warmup", f"must be in [0, 1), got {self.warmup}")
        check(0 <= self.decay <= 1, "decay", f"must be in [0, 1], got {self.decay}")
        check(0 <= self.min_lr_ratio <= 1, "min_lr_ratio", f"must be in [0, 1], got {self.min_lr_ratio}")
        if self.schedule == "wsd":
            check(self.warmup + self.decay <= 1, "decay", "warmup + decay must not exceed 1")
        if self.betas is not None:
            check(
                len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
                "betas",
                f"must be two numbers in [0, 1), got {self.betas}",
            )

    @property
    def adam_betas(self) -> tuple[float, float]:
        return tuple(self.betas) if self.betas is not None else (0.9, 0.98)


def lr_factor(fraction: float, cfg: OptimConfig) -> float:
    """Multiplier of the peak learning rate after `fraction` of the budget."""
    f = min(max(fraction, 0.0), 1.0)
    if cfg.warmup > 0 and f < cfg.warmup:
        # never exactly zero, so the very first step already learns a little
        return max(f, 0.01 * cfg.warmup) / cfg.warmup
    lo = cfg.min_lr_ratio
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cosine":
        p = (f - cfg.warmup) / max(1e-12, 1.0 - cfg.warmup)
        return lo + (1.0 - lo) * 0.5 * (1.0 + math.cos(math.pi * p))
    start = 1.0 - cfg.decay
    if f < start or cfg.decay == 0:
        return 1.0
    p = (f - start) / cfg.decay
    shape = 1.0 - math.sqrt(p) if cfg.decay_shape == "sqrt" else 1.0 - p
    return lo + (1.0 - lo) * shape
