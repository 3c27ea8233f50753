"""A sweep's plan as data: the selected runs in launch order, each with its complete training
recipe, counts (N, FLOPs per frame, planned frames and FLOPs) and estimated seconds, and the
backlog the budget left out. plan.json is this, saved; apcscale.sweep.planner builds it
(grid -> counts -> probe -> budget selection -> order) and apcscale.sweep.display shows it.

Everything that can be wrong with a recipe (an unknown architecture, a subset the manifest
lacks, a rule that makes a run's recipe invalid, a budget the smallest plan exceeds) raises a
RecipeError while the plan is built, before any trial starts.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FRAMES_PER_HOUR = 360_000.0


@dataclass
class PlannedRun:
    run_id: str
    arch: str
    width: int
    depth: int
    label: str
    subset: str
    D: int  # frames in the training subset
    hours: float
    seed: int
    N: int
    N_total: int
    flops_per_frame: float
    planned_frames: int
    planned_flops: float
    est_seconds: float
    cpus: float
    gpus: float
    workers: int
    recipe: dict[str, Any]
    order: int = 0
    twins: list[str] = field(default_factory=list)  # the same recipe on strict supersets of its data, largest first

    @property
    def cpu_seconds(self) -> float:
        return self.est_seconds * self.cpus * self.workers

    @property
    def gpu_seconds(self) -> float:
        return self.est_seconds * self.gpus * self.workers

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Plan:
    name: str
    manifest: str
    runs: list[PlannedRun]  # selected, in launch order
    backlog: list[PlannedRun] = field(default_factory=list)  # left out by the budget, most wanted first
    budget: dict[str, float | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    probe: dict[str, Any] = field(default_factory=dict)
    capacity: dict[str, float] = field(default_factory=dict)  # CPUs/GPUs the estimate assumes
    startup_s: float = 0.0  # added once to the wall-time estimate

    # ----- totals -----
    @staticmethod
    def totals(runs: list[PlannedRun]) -> dict[str, float]:
        return {
            "flops": sum(r.planned_flops for r in runs),
            "cpu_hours": sum(r.cpu_seconds for r in runs) / 3600.0,
            "gpu_hours": sum(r.gpu_seconds for r in runs) / 3600.0,
            "seconds": sum(r.est_seconds for r in runs),
        }

    def makespan(self, cpus: float | None = None, gpus: float | None = None) -> float:
        """Estimated wall seconds: the runs started in order on `cpus`/`gpus` (list scheduling)."""
        cpus = cpus if cpus is not None else self.capacity.get("cpus", os.cpu_count() or 1)
        gpus = gpus if gpus is not None else self.capacity.get("gpus", 0.0)
        return self.startup_s + simulate_makespan(self.runs, cpus, gpus)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "manifest": self.manifest,
            "budget": self.budget,
            "notes": self.notes,
            "probe": self.probe,
            "capacity": self.capacity,
            "startup_s": self.startup_s,
            "runs": [r.to_dict() for r in self.runs],
            "backlog": [r.to_dict() for r in self.backlog],
        }

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Plan:
        data = json.loads(Path(path).read_text())
        return cls(
            name=data["name"],
            manifest=data["manifest"],
            runs=[PlannedRun(**r) for r in data["runs"]],
            backlog=[PlannedRun(**r) for r in data["backlog"]],
            budget=data.get("budget", {}),
            notes=data.get("notes", []),
            probe=data.get("probe", {}),
            capacity=data.get("capacity", {}),
            startup_s=data.get("startup_s", 0.0),
        )

    def run(self, run_id: str) -> PlannedRun:
        for r in [*self.runs, *self.backlog]:
            if r.run_id == run_id:
                return r
        raise KeyError(run_id)


def simulate_makespan(runs: list[PlannedRun], cpus: float, gpus: float) -> float:
    """Start runs in order whenever their resources are free; return when the last one ends."""
    import heapq

    free_c, free_g, now = float(cpus), float(gpus), 0.0
    running: list[tuple[float, float, float]] = []  # (end, cpus, gpus)
    for r in runs:
        need_c, need_g = r.cpus * r.workers, r.gpus * r.workers
        if need_c > cpus + 1e-9 or need_g > gpus + 1e-9:
            return math.inf
        while free_c + 1e-9 < need_c or free_g + 1e-9 < need_g:
            end, c, g = heapq.heappop(running)
            now, free_c, free_g = end, free_c + c, free_g + g
        free_c, free_g = free_c - need_c, free_g - need_g
        heapq.heappush(running, (now + r.est_seconds, need_c, need_g))
    return max((end for end, _, _ in running), default=0.0)


def _si(x: float) -> str:
    """1.23k, 4.5M, ...: SI prefixes for counts of frames, parameters and FLOPs."""
    for unit, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def plan_twins(plan: Plan) -> dict[str, list[str]]:
    """The data twins of a plan's runs; for a plan saved before they were recorded, found again
    from its manifest (none if that is gone)."""
    from apcscale.sweep.planner import data_twins, manifest_subsets

    everything = [*plan.runs, *plan.backlog]
    if any(r.twins for r in everything):
        return {r.run_id: list(r.twins) for r in everything if r.twins}
    try:
        subsets_info = manifest_subsets(Path(plan.manifest))[0]
    except Exception:
        return {}
    return data_twins(everything, subsets_info)


def cooldown_start(run_recipe: dict[str, Any]) -> float | None:
    """Fraction of a run's budget where its learning rate starts its final decay (None: never)."""
    optim = run_recipe.get("optim", {})
    schedule = optim.get("schedule", "wsd")
    if schedule == "wsd":
        decay = float(optim.get("decay", 0.0))
        return 1.0 - decay if decay > 0 else None
    if schedule == "cosine":
        return float(optim.get("warmup", 0.0))
    return None


__all__ = ["Plan", "PlannedRun", "simulate_makespan", "plan_twins", "cooldown_start", "FRAMES_PER_HOUR"]
