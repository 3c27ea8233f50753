"""The sweep recipe: one YAML file describes one scaling study.

    name: fsdd-default
    data: {crop_frames: 128, batch_size: 16}           # where the data is and how it streams
    grid:
      models:                                           # architectures and their size ladders
        lstm:        [{width: 16, depth: 1}, {width: 48, depth: 2}, {width: 96, depth: 3}]
        transformer: [{width: 16, depth: 1}, {width: 48, depth: 2}, {width: 96, depth: 3}]
      subsets: [d0, d3, d7]                             # nested training subsets of the manifest
      seeds: [0]
    optim: {lr: 3.0e-3, schedule: wsd}                  # defaults of every run ...
    rules:                                              # ... and per-size / per-subset exceptions
      - {match: {arch: transformer}, set: {optim.lr: 1.0e-3}}
    train_budget: {frames: 600000}                      # each run's training budget
    budget: {cpu_hours: 0.2}                            # the whole sweep's compute budget
    resources: {cpus: 1, gpus: 0}                       # per trial
    pruning: {policy: frontier, min_fraction: 0.25}

Every field is checked when the recipe is loaded (names, types, ranges); what
needs the data (the subsets, each run's full training recipe after its rules)
is checked by `apcscale.sweep.planner.build_plan`, still before any trial starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from apcscale.models.config import ARCHITECTURES
from apcscale.models.optim import OptimConfig
from apcscale.sweep.design import DesignConfig
from apcscale.sweep.policy import PolicyConfig
from apcscale.train.budget import BudgetConfig, EvalConfig
from apcscale.train.config import DataConfig, TrainerConfig
from apcscale.train.stopping import StoppingConfig
from apcscale.utils.schema import RecipeError, check, load_recipe

#: sections of a run's training recipe that `rules[].set` may change, plus the trial's resources
RULE_SECTIONS = ("data", "model", "optim", "budget", "eval", "trainer", "resources")
#: what `rules[].match` may test
MATCH_KEYS = ("arch", "width", "depth", "label", "subset", "seed", "min_params", "max_params")


@dataclass
class SizeSpec:
    """One rung of an architecture's size ladder (the context network's width x depth)."""

    width: int
    depth: int
    heads: int | None = None
    ff_mult: int | None = None

    def validate(self) -> None:
        check(self.width >= 1, "width", f"must be positive, got {self.width}")
        check(self.depth >= 1, "depth", f"must be positive, got {self.depth}")


@dataclass
class GridConfig:
    """models: architecture -> size ladder, or "auto" (chosen from the corpus and the budget:
    apcscale.sweep.design); subsets: manifest subset names, "all", or "auto" (spread over the
    whole corpus, about 2x apart); seeds."""

    models: dict[str, list[SizeSpec] | Literal["auto"]] = field(default_factory=dict)
    subsets: list[str] | Literal["all", "auto"] = "auto"
    seeds: list[int] = field(default_factory=lambda: [0])

    def validate(self) -> None:
        check(
            bool(self.models),
            "models",
            "name at least one architecture with its sizes, e.g. {lstm: [{width: 64, depth: 2}]}",
        )
        for arch, ladder in self.models.items():
            if arch not in ARCHITECTURES:
                raise RecipeError(
                    f"models.{arch}", f"unknown architecture {arch!r} (choose from {', '.join(ARCHITECTURES)})"
                )
            if ladder == "auto":
                continue
            check(len(ladder) >= 1, f"models.{arch}", "the size ladder is empty")
            seen = set()
            for i, s in enumerate(ladder):
                key = (s.width, s.depth, s.heads, s.ff_mult)
                check(key not in seen, f"models.{arch}[{i}]", f"duplicate size {s.width}x{s.depth}")
                seen.add(key)
        if not isinstance(self.subsets, str):
            check(len(self.subsets) >= 1, "subsets", "name at least one subset")
            check(len(set(self.subsets)) == len(self.subsets), "subsets", "names a subset twice")
        check(len(self.seeds) >= 1, "seeds", "name at least one seed")
        check(len(set(self.seeds)) == len(self.seeds), "seeds", "names a seed twice")


@dataclass
class Rule:
    """Settings for the runs that match, e.g. a smaller learning rate for large models:

        - match: {arch: transformer, min_params: 1.0e6}
          set: {optim.lr: 5.0e-4, resources.gpus: 1}

    match: arch, width, depth, label, subset, seed (a value or a list of values), and
    min_params / max_params (bounds on N). An empty match applies to every run.
    set: "section.field" -> value, sections data, model, optim, budget, eval, trainer, resources.
    Rules apply in order; a later rule overrides an earlier one.
    """

    set: dict[str, Any]
    match: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        for key in self.match:
            if key not in MATCH_KEYS:
                raise RecipeError(f"match.{key}", f"cannot match on {key!r} (use {', '.join(MATCH_KEYS)})")
        check(bool(self.set), "set", "a rule must set something")
        for key in self.set:
            section = str(key).split(".", 1)[0]
            if "." not in str(key) or section not in RULE_SECTIONS:
                raise RecipeError(
                    f"set.{key}", f"expected section.field with section one of {', '.join(RULE_SECTIONS)}"
                )
            check(
                not str(key).startswith("data.subset") and not str(key).startswith("model.arch"),
                f"set.{key}",
                "the grid decides a run's subset and architecture",
            )

    def matches(self, point: dict[str, Any]) -> bool:
        for key, want in self.match.items():
            if key == "min_params":
                if point["N"] < float(want):
                    return False
            elif key == "max_params":
                if point["N"] > float(want):
                    return False
            else:
                options = want if isinstance(want, list) else [want]
                if point.get(key) not in options:
                    return False
        return True


@dataclass
class ComputeBudget:
    """The whole sweep's budget; any of the three (none: the whole grid runs).

    flops: training FLOPs summed over runs (counted analytically, docs/models.md "Counting").
    gpu_hours / cpu_hours: estimated seconds of each run x GPUs (CPUs) it holds.
    """

    flops: float | None = None
    gpu_hours: float | None = None
    cpu_hours: float | None = None

    def validate(self) -> None:
        for name in ("flops", "gpu_hours", "cpu_hours"):
            value = getattr(self, name)
            if value is not None:
                check(value > 0, name, f"must be positive, got {value}")

    @property
    def limited(self) -> bool:
        return any(getattr(self, k) is not None for k in ("flops", "gpu_hours", "cpu_hours"))


@dataclass
class Resources:
    """Per trial. Fractional GPUs (e.g. 0.25) pack small models four to a GPU;
    workers > 1 trains the run with DDP over that many processes (each with the GPUs/CPUs given)."""

    cpus: float = 1.0
    gpus: float = 0.0
    workers: int = 1

    def validate(self) -> None:
        check(self.cpus > 0, "cpus", f"must be positive, got {self.cpus}")
        check(self.gpus >= 0, "gpus", f"must be >= 0, got {self.gpus}")
        check(
            self.gpus <= 1 or float(self.gpus).is_integer(),
            "gpus",
            f"more than one GPU must be a whole number, got {self.gpus}",
        )
        check(self.workers >= 1, "workers", f"must be at least 1, got {self.workers}")
        check(self.workers == 1 or self.gpus in (0, 1), "gpus", "a DDP run (workers > 1) uses 0 or 1 GPU per worker")


@dataclass
class AshaConfig:
    """Ray Tune's AsyncHyperBandScheduler, for comparison (pruning.policy: asha).
    Its time axis is training compute (FLOPs), like the frontier policy's; grace period =
    min_fraction of the cheapest run's planned compute; max_t = the largest planned compute."""

    reduction_factor: float = 4.0
    brackets: int = 1

    def validate(self) -> None:
        check(self.reduction_factor > 1, "reduction_factor", f"must be > 1, got {self.reduction_factor}")
        check(self.brackets >= 1, "brackets", f"must be at least 1, got {self.brackets}")


@dataclass
class PruningConfig(PolicyConfig):
    """policy: frontier (stop runs predicted to stay above the frontier), off (ground truth; the
    frontier policy still runs in the shadow and logs what it would have done), asha (comparison).
    redeploy: compute saved by pruning starts grid points the budget had left out."""

    policy: Literal["frontier", "off", "asha"] | bool = "frontier"
    redeploy: bool = True
    asha: AshaConfig = field(default_factory=AshaConfig)

    def validate(self) -> None:
        super().validate()
        if isinstance(self.policy, bool):  # YAML reads a bare `off` as false
            self.policy = "frontier" if self.policy else "off"

    def policy_config(self) -> PolicyConfig:
        return PolicyConfig(**{f.name: getattr(self, f.name) for f in fields(PolicyConfig)})


@dataclass
class RayConfig:
    """address: an existing cluster ("auto" on one of its nodes, or "head:6379"; Ray Client
    "ray://" addresses are refused: see docs/cluster.md); null starts a local Ray.
    max_failures: retries of a crashed trial (a run whose loss turns NaN is not retried).
    max_concurrent: cap on trials running at once (default: as many as the resources allow)."""

    address: str | None = None
    max_failures: int = 1
    max_concurrent: int | None = None
    num_cpus: int | None = None  # local Ray only: CPUs it may use (default: all)
    num_gpus: int | None = None

    def validate(self) -> None:
        check(self.max_failures >= 0, "max_failures", f"must be >= 0, got {self.max_failures}")
        if self.max_concurrent is not None:
            check(self.max_concurrent >= 1, "max_concurrent", f"must be at least 1, got {self.max_concurrent}")


@dataclass
class PlanConfig:
    """How the plan estimates costs and orders runs.

    probe_steps: timed training steps per (architecture, size) in the throughput probe.
    trial_overhead_s: seconds each trial spends outside its training steps and evaluations
        (building the model and the data stream): added to every run's estimate.
    eval_overhead_s: seconds each evaluation costs beyond its forward passes (checkpoints, logs).
    startup_s: seconds before the first trials train (Ray, worker processes importing torch
        and Lightning; later trials reuse the workers): added once to the wall-time estimate.
    order: cheap_first (cheapest first; at equal cost, more data first) or grid (as written).
    """

    probe_steps: int = 5
    trial_overhead_s: float = 1.5
    eval_overhead_s: float = 0.05
    startup_s: float = 10.0
    order: Literal["cheap_first", "grid"] = "cheap_first"

    def validate(self) -> None:
        check(self.probe_steps >= 1, "probe_steps", f"must be at least 1, got {self.probe_steps}")
        check(self.trial_overhead_s >= 0, "trial_overhead_s", f"must be >= 0, got {self.trial_overhead_s}")
        check(self.startup_s >= 0, "startup_s", f"must be >= 0, got {self.startup_s}")
        check(self.eval_overhead_s >= 0, "eval_overhead_s", f"must be >= 0, got {self.eval_overhead_s}")


@dataclass
class ModelDefaults:
    """Model settings shared by every size (the ladder sets width, depth and heads)."""

    time_shift: int = 3
    dropout: float = 0.0
    ff_mult: int = 4


@dataclass
class SweepRecipe:
    name: str | None = None  # None: <corpus>-<recipe> (e.g. speechocean762-default), from the data
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    model: ModelDefaults = field(default_factory=ModelDefaults)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train_budget: BudgetConfig = field(default_factory=lambda: BudgetConfig(epochs=10))
    eval: EvalConfig = field(default_factory=EvalConfig)
    stopping: StoppingConfig = field(default_factory=StoppingConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    rules: list[Rule] = field(default_factory=list)
    design: DesignConfig = field(default_factory=DesignConfig)
    budget: ComputeBudget = field(default_factory=ComputeBudget)
    resources: Resources = field(default_factory=Resources)
    pruning: PruningConfig = field(default_factory=PruningConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    plan: PlanConfig = field(default_factory=PlanConfig)
    output_dir: str = "sweeps"

    def validate(self) -> None:
        check(
            self.name is None or (bool(self.name) and "/" not in self.name),
            "name",
            f"must be a non-empty name without '/' (or null: from the corpus), got {self.name!r}",
        )
        try:  # a recipe without a grid section gets the default (empty) one, which from_dict never checked
            self.grid.validate()
        except RecipeError as exc:
            raise exc.at(parent="grid") from None
        check(self.data.subset is None, "data.subset", "set the subsets in grid.subsets")
        check(
            self.trainer.devices in (1, "1", "auto"),
            "trainer.devices",
            "a sweep trial trains on the devices its resources give it; set resources.gpus/workers instead",
        )

    @property
    def sweep_dir(self) -> Path:
        if self.name is None:
            raise RecipeError(
                "name",
                "the study has no name yet (name: null takes it from the corpus: apcscale.sweep.design.study_name)",
            )
        return Path(self.output_dir) / self.name

    @property
    def auto(self) -> bool:
        """Does the design choose part of the grid (auto subsets or an auto ladder)?"""
        return self.grid.subsets == "auto" or any(v == "auto" for v in self.grid.models.values())


def load_sweep_recipe(path: str | Path, overrides: list[str] | None = None) -> SweepRecipe:
    """Read and validate a sweep recipe; `overrides` are "a.b=value" strings."""
    return load_recipe(SweepRecipe, path, overrides)


__all__ = [
    "SweepRecipe",
    "GridConfig",
    "SizeSpec",
    "Rule",
    "ComputeBudget",
    "Resources",
    "PruningConfig",
    "AshaConfig",
    "RayConfig",
    "PlanConfig",
    "ModelDefaults",
    "load_sweep_recipe",
    "RULE_SECTIONS",
]
