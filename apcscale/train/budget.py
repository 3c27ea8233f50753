"""Training budgets and evaluation schedules, counted in frames (or steps).

A run trains for a budget of frames, steps or epochs (an epoch = as many frames
as the training subset holds, so a budget of 3 epochs on a subset of D frames is
3 D frames). Dev evaluations happen at points of that budget, log-spaced by
default so that the early part of a learning curve (what pruning extrapolates
from) is well sampled, and always at the very end. Everything here is plain
Python so the schedule can be tested and reasoned about without a Trainer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from apcscale.utils.schema import RecipeError, check


@dataclass
class BudgetConfig:
    """Exactly one of frames, steps, epochs. With epochs, min_frames and max_frames clamp the
    frames it gives: a cap that scales with the subset (a run with a stopping rule trains until
    its dev loss stops improving or it reaches this cap)."""

    frames: int | None = None
    steps: int | None = None
    epochs: float | None = None
    min_frames: int | None = None
    max_frames: int | None = None

    def validate(self) -> None:
        given = [k for k in ("frames", "steps", "epochs") if getattr(self, k) is not None]
        if len(given) != 1:
            raise RecipeError("", f"set exactly one of frames, steps, epochs (got {', '.join(given) or 'none'})")
        value = getattr(self, given[0])
        check(value > 0, given[0], f"must be positive, got {value}")
        for name in ("min_frames", "max_frames"):
            v = getattr(self, name)
            if v is not None:
                check(self.epochs is not None, name, "clamps an epochs budget; set epochs (not frames or steps)")
                check(v > 0, name, f"must be positive, got {v}")
        if self.min_frames is not None and self.max_frames is not None:
            check(
                self.min_frames <= self.max_frames,
                "min_frames",
                f"{self.min_frames} is more than max_frames {self.max_frames}",
            )

    def resolve(self, subset_frames: int) -> tuple[str, int]:
        """(unit, total) with epochs converted to frames of the given subset (and clamped)."""
        if self.frames is not None:
            return "frames", int(self.frames)
        if self.steps is not None:
            return "steps", int(self.steps)
        frames = int(round(self.epochs * subset_frames))
        if self.min_frames is not None:
            frames = max(frames, int(self.min_frames))
        if self.max_frames is not None:
            frames = min(frames, int(self.max_frames))
        return "frames", frames


@dataclass
class EvalConfig:
    points: int = 16
    spacing: Literal["log", "linear"] = "log"
    first: float = 0.02  # first evaluation at this fraction of the budget
    at_start: bool = True  # also evaluate the untrained model (the curve's starting point)

    def validate(self) -> None:
        check(self.points >= 1, "points", f"must be at least 1, got {self.points}")
        check(0.0 < self.first <= 1.0, "first", f"must be in (0, 1], got {self.first}")


def evaluation_points(total: int, cfg: EvalConfig) -> list[int]:
    """Sorted, unique budget positions at which to evaluate; always ends at `total`."""
    n = cfg.points
    if n == 1:
        points = [total]
    elif cfg.spacing == "log":
        lo = max(1.0, cfg.first * total)
        ratio = (total / lo) ** (1.0 / (n - 1)) if total > lo else 1.0
        points = [int(round(lo * ratio**i)) for i in range(n)]
    else:
        points = [int(round(total * (i + 1) / n)) for i in range(n)]
    points[-1] = total
    if cfg.at_start:
        points.insert(0, 0)
    return sorted(set(max(0, min(total, p)) for p in points))


@dataclass
class Clock:
    """Where a run stands against its budget: when to evaluate, when to stop."""

    unit: Literal["frames", "steps"]
    total: int
    points: list[int] = field(default_factory=list)
    next_index: int = 0

    def position(self, frames: int, steps: int) -> int:
        return frames if self.unit == "frames" else steps

    def fraction(self, frames: int, steps: int) -> float:
        return min(1.0, self.position(frames, steps) / self.total) if self.total > 0 else 1.0

    def eval_due(self, frames: int, steps: int) -> bool:
        pos = self.position(frames, steps)
        return self.next_index < len(self.points) and pos >= self.points[self.next_index]

    def done(self, frames: int, steps: int) -> bool:
        return self.position(frames, steps) >= self.total

    def end_at(self, total: int, points: list[int]) -> None:
        """End the run earlier, at `total` (a stopping rule fired): the evaluation points already
        passed stay, those after are replaced by `points` (which end at `total`)."""
        done = self.points[: self.next_index]
        self.total = int(total)
        self.points = sorted(set(done) | {int(p) for p in points if p <= total} | {int(total)})
        self.next_index = len(done)

    def mark_evaluated(self, frames: int, steps: int) -> None:
        pos = self.position(frames, steps)
        while self.next_index < len(self.points) and self.points[self.next_index] <= pos:
            self.next_index += 1

    def state_dict(self) -> dict:
        return {"unit": self.unit, "total": self.total, "points": list(self.points), "next_index": self.next_index}

    def load_state_dict(self, state: dict) -> None:
        self.unit, self.total = state["unit"], state["total"]
        self.points, self.next_index = list(state["points"]), state["next_index"]


def steps_hint(total: int, unit: str, frames_per_step: float) -> int:
    """Rough number of optimiser steps a budget takes (for progress displays)."""
    return total if unit == "steps" else max(1, math.ceil(total / max(frames_per_step, 1.0)))
