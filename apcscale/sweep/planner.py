"""Building a sweep's plan: the grid expanded into runs, each counted, costed, fitted to the budget.

`build_plan` expands the grid (architecture x size x subset x seed) into runs, each with its
complete training recipe (defaults, then the matching `rules`, in order) validated like a
hand-written one; counts N and training FLOPs per frame (on the meta device) and the planned
frames; estimates seconds (apcscale.sweep.probe); selects what fits the compute budget
(apcscale.sweep.budget); and orders the selected runs (cheap first; at equal cost more
data first, so a data-limited run meets the frontier of its full-data twin).
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any

from apcscale.models.config import ATTENTION
from apcscale.sweep.budget import select_runs
from apcscale.sweep.design import choose_subsets, design_grid
from apcscale.sweep.plan import FRAMES_PER_HOUR, Plan, PlannedRun, _si
from apcscale.sweep.probe import _local_gpus, estimate_seconds
from apcscale.sweep.recipe import Resources, SizeSpec, SweepRecipe
from apcscale.train.config import TrainRecipe
from apcscale.utils.schema import RecipeError, apply_override, from_dict, to_dict

# ----------------------------------------------------------------------------------------------
# the grid and each run's training recipe
# ----------------------------------------------------------------------------------------------


def manifest_subsets(manifest_path: Path) -> tuple[dict[str, dict[str, Any]], int, dict[str, Any]]:
    """{subset name: info} sorted by size, the feature dimension, and dev-split info (may be empty)."""
    from apcscale.data import Manifest

    m = Manifest.load(manifest_path)
    subsets = {name: dict(info) for name, info in m.subsets.items()}
    subsets = dict(sorted(subsets.items(), key=lambda kv: int(kv[1]["frames"])))
    dev: dict[str, Any] = {}
    for attr in ("dev", "dev_split"):
        value = getattr(m, attr, None)
        if isinstance(value, dict):
            dev = dict(value)
            break
    if not dev:
        splits = getattr(m, "splits", None)
        if isinstance(splits, dict) and isinstance(splits.get("dev"), dict):
            dev = dict(splits["dev"])
    how = m.data.get("split") if isinstance(getattr(m, "data", None), dict) else None
    if isinstance(how, dict):  # how the dev split was made: by speaker or by utterance
        dev["by"] = how.get("by")
        dev["reason"] = how.get("reason")
    dev["corpus_root"] = (
        (m.data.get("source") or {}).get("root") if isinstance(getattr(m, "data", None), dict) else None
    )
    return subsets, int(m.feature_dim), dev


def data_twins(runs: list[PlannedRun], subsets_info: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    """run id -> the runs (largest data first) whose training recipe is its own but for the subset,
    on a strict superset of its shards: its data-limited twins' larger twins (policy module notes)."""
    shards = {name: frozenset(info.get("shards") or ()) for name, info in subsets_info.items()}

    def key(r: PlannedRun) -> str:
        rec = copy.deepcopy(r.recipe)
        rec.pop("name", None)
        rec.get("data", {}).pop("subset", None)
        return json.dumps(rec, sort_keys=True, default=str)

    by_key: dict[str, list[PlannedRun]] = {}
    for r in runs:
        by_key.setdefault(key(r), []).append(r)
    out: dict[str, list[str]] = {}
    for group in by_key.values():
        for r in group:
            mine = shards.get(r.subset, frozenset())
            larger = [t for t in group if mine and shards.get(t.subset, frozenset()) > mine]
            if larger:
                out[r.run_id] = [t.run_id for t in sorted(larger, key=lambda t: (-t.D, t.run_id))]
    return out


def select_subsets(recipe: SweepRecipe, available: dict[str, dict[str, Any]]) -> list[str]:
    if recipe.grid.subsets == "auto":
        return choose_subsets(available, recipe.design, recipe.design.subset_step)[0]
    wanted = list(available) if recipe.grid.subsets == "all" else list(recipe.grid.subsets)
    for i, name in enumerate(wanted):
        if name not in available:
            names = ", ".join(f"{k} ({_si(v['frames'])} frames)" for k, v in available.items())
            raise RecipeError(f"grid.subsets[{i}]", f"the manifest has no subset {name!r} (it has {names})")
    return sorted(wanted, key=lambda n: int(available[n]["frames"]))


def run_id_for(arch: str, width: int, depth: int, subset: str, seed: int) -> str:
    return f"{arch}-w{width}-d{depth}-{subset}-s{seed}"


def base_run_recipe(recipe: SweepRecipe, manifest: Path, arch: str, size, subset: str, seed: int) -> dict[str, Any]:
    data = to_dict(recipe.data)
    data.update({"manifest": str(manifest), "audio": None, "prepared_dir": None, "subset": subset, "seed": seed})
    model = {
        "arch": arch,
        "width": size.width,
        "depth": size.depth,
        "time_shift": recipe.model.time_shift,
        "dropout": recipe.model.dropout,
        "ff_mult": size.ff_mult if size.ff_mult is not None else recipe.model.ff_mult,
    }
    if arch in ATTENTION:
        model["heads"] = size.heads
    elif size.heads is not None:
        raise RecipeError(f"grid.models.{arch}", f"size {size.width}x{size.depth}: only transformers have heads")
    trainer = to_dict(recipe.trainer)
    trainer["seed"] = seed
    return {
        "name": run_id_for(arch, size.width, size.depth, subset, seed),
        "data": data,
        "model": model,
        "optim": to_dict(recipe.optim),
        "budget": to_dict(recipe.train_budget),
        "eval": to_dict(recipe.eval),
        "stopping": to_dict(recipe.stopping),
        "trainer": trainer,
        "output_dir": str(recipe.sweep_dir / "runs"),
    }


def apply_rules(recipe: SweepRecipe, run: dict[str, Any], point: dict[str, Any]) -> tuple[dict, dict]:
    """The run's recipe dict and resources after every matching rule, validated after each rule."""
    resources = to_dict(recipe.resources)
    for i, rule in enumerate(recipe.rules):
        if not rule.matches(point):
            continue
        for key, value in rule.set.items():
            if key.startswith("resources."):
                target, sub = resources, key.split(".", 1)[1]
                if sub not in resources:
                    raise RecipeError(f"rules[{i}].set.{key}", f"unknown field (resources has {', '.join(resources)})")
                target[sub] = value
            else:
                if key in ("model.width", "model.depth"):
                    raise RecipeError(f"rules[{i}].set.{key}", "the grid decides a run's size")
                apply_override(run, f"{key}={json.dumps(value)}")
        try:
            from_dict(TrainRecipe, copy.deepcopy(run))
            from_dict(Resources, dict(resources))
        except RecipeError as exc:
            raise RecipeError(f"rules[{i}]", f"for run {run['name']}: {exc}") from None
    return run, resources


# ----------------------------------------------------------------------------------------------
# counting and the throughput probe
# ----------------------------------------------------------------------------------------------


def count_run(model: dict[str, Any], feature_dim: int, seq_len: int) -> dict[str, float]:
    """N, N_total and training FLOPs per frame, counted on the meta device (no memory, no time)."""
    import torch

    from apcscale.models.config import ModelConfig
    from apcscale.models.counting import count_parameters, training_flops_per_frame
    from apcscale.models.net import APCNet

    cfg = from_dict(ModelConfig, model, "model")
    with torch.device("meta"):
        net = APCNet(feature_dim, cfg)
    size = count_parameters(net)
    return {"N": size.n_context, "N_total": size.n_total, "flops_per_frame": training_flops_per_frame(net, seq_len)}


def order_runs(runs: list[PlannedRun], how: str) -> list[PlannedRun]:
    if how == "grid":
        return list(runs)
    # cheap first; at equal cost more data first (its data-limited twins then meet its frontier)
    return sorted(runs, key=lambda r: (float(f"{r.planned_flops:.2g}"), r.arch, r.N, -r.D, r.seed, r.run_id))


# ----------------------------------------------------------------------------------------------
# the grid: as written, or designed from the corpus and the budget
# ----------------------------------------------------------------------------------------------


def resolve_grid(
    recipe: SweepRecipe, manifest: Path, subsets_info: dict[str, dict[str, Any]], feature_dim: int
) -> tuple[dict[str, list[SizeSpec]], list[str], list[str]]:
    """The ladders and subsets a plan expands (`auto` ones designed: apcscale.sweep.design), and notes."""
    if not recipe.auto:
        ladders = {a: list(v) for a, v in recipe.grid.models.items()}
        return ladders, select_subsets(recipe, subsets_info), []
    largest = list(subsets_info)[-1]
    info = subsets_info[largest]
    mean_len = int(round(min(recipe.data.crop_frames, int(info["frames"]) / max(1, int(info.get("utterances") or 1)))))
    counted: dict[tuple, dict[str, float]] = {}

    def count(arch: str, shape: dict[str, int]) -> dict[str, float]:
        key = (arch, *sorted(shape.items()))
        if key not in counted:
            size = SizeSpec(**shape)
            model = base_run_recipe(recipe, manifest, arch, size, largest, 0)["model"]
            counted[key] = count_run(model, feature_dim, mean_len)
        return counted[key]

    def cap_frames(D: int) -> int:
        unit, total = recipe.train_budget.resolve(D)
        return total if unit == "frames" else int(total * recipe.data.batch_size * mean_len)

    auto_ladders = [a for a, v in recipe.grid.models.items() if v == "auto"]
    if auto_ladders and recipe.budget.flops is None:
        raise RecipeError(
            "budget.flops",
            f"an auto ladder ({', '.join(auto_ladders)}) is sized by a compute budget "
            "in FLOPs (the same on any machine); set budget.flops",
        )
    archs = {a: ("auto" if v == "auto" else [to_dict(s) for s in v]) for a, v in recipe.grid.models.items()}
    fixed = [] if recipe.grid.subsets == "auto" else select_subsets(recipe, subsets_info)
    design = design_grid(
        archs,
        subsets_info,
        recipe.design,
        auto_subsets=recipe.grid.subsets == "auto",
        fixed_subsets=fixed,
        seeds=list(recipe.grid.seeds),
        count=count,
        cap_frames=cap_frames,
        budget_flops=recipe.budget.flops,
    )
    ladders = {
        a: [SizeSpec(**{k: v for k, v in shape.items() if v is not None}) for shape in lad]
        for a, lad in design.ladders.items()
    }
    return ladders, design.subsets, design.notes


def describe_data(subsets: list[str], info: dict[str, dict[str, Any]], dev: dict[str, Any]) -> list[str]:
    """Plan notes: the subsets trained on with their hours, D's span, and how the dev split was made."""
    frames = [int(info[s]["frames"]) for s in subsets]
    span = math.log10(frames[-1] / frames[0]) if len(frames) > 1 and frames[0] > 0 else 0.0
    listing = ", ".join(f"{s} {info[s]['frames'] / FRAMES_PER_HOUR * 60:.3g} min" for s in subsets)
    lines = [f"subsets: {listing} ({span:.1f} decades of D)"]
    if dev:
        by = dev.get("by")
        speakers = dev.get("speakers")
        n_spk = len(speakers) if isinstance(speakers, list) else speakers
        if by == "speaker":
            how = f"{n_spk} whole speaker{'' if n_spk == 1 else 's'} held out (no dev speaker in any training subset)"
        elif by == "utterance":
            why = dev.get("reason")
            how = (
                "utterances held out at random, as asked (dev_by utterance)"
                if why == "asked"
                else f"utterances held out at random, not whole speakers: {why or 'no speaker in the file names'}"
            )
        else:
            how = "held out"
        lines.append(
            f"dev: {_si(float(dev.get('frames') or 0))} frames ({float(dev.get('frames') or 0) / FRAMES_PER_HOUR * 60:.3g} "
            f"min, {int(dev.get('utterances') or 0)} utterances), {how}"
        )
    return lines


# ----------------------------------------------------------------------------------------------
# the plan
# ----------------------------------------------------------------------------------------------


def build_plan(
    recipe: SweepRecipe,
    manifest: Path,
    *,
    probe: bool = True,
    capacity: dict[str, float] | None = None,
    probe_fn=None,
    log=None,
) -> Plan:
    """The validated, costed, budget-fitted and ordered plan of a sweep (no trial runs here)."""
    if log is None:
        from apcscale.utils.log import get_logger

        log = get_logger(__name__).info
    subsets_info, feature_dim, dev = manifest_subsets(manifest)
    ladders, subsets, design_notes = resolve_grid(recipe, manifest, subsets_info, feature_dim)
    d = recipe.data
    capacity = dict(
        capacity
        or {
            "cpus": float(recipe.ray.num_cpus or os.cpu_count() or 1),
            "gpus": float(recipe.ray.num_gpus or _local_gpus()),
        }
    )
    spread = [s for s in recipe.design.spread_seeds if s not in recipe.grid.seeds]

    runs: list[PlannedRun] = []
    for arch, ladder in ladders.items():
        for i_size, size in enumerate(ladder):
            try:
                count_run(base_run_recipe(recipe, manifest, arch, size, subsets[0], 0)["model"], feature_dim, 1)
            except RecipeError as exc:
                raise RecipeError(f"grid.models.{arch}[{i_size}]", f"size {size.width}x{size.depth}: {exc}") from None
            for subset in subsets:
                info = subsets_info[subset]
                D = int(info["frames"])
                utts = max(1, int(info.get("utterances", 0) or 1))
                mean_len = min(d.crop_frames, D / utts)
                for seed in [*recipe.grid.seeds, *(spread if subset == subsets[-1] else [])]:
                    run = base_run_recipe(recipe, manifest, arch, size, subset, seed)
                    counts = count_run(run["model"], feature_dim, int(round(mean_len)))
                    point = {
                        "arch": arch,
                        "width": size.width,
                        "depth": size.depth,
                        "subset": subset,
                        "seed": seed,
                        "label": f"{arch}-w{size.width}-d{size.depth}",
                        "N": counts["N"],
                    }
                    run, resources = apply_rules(recipe, run, point)
                    counts = count_run(run["model"], feature_dim, int(round(mean_len)))
                    train = from_dict(TrainRecipe, run)
                    unit, total = train.budget.resolve(D)
                    frames = total if unit == "frames" else int(total * train.data.frames_per_batch(mean_len))
                    runs.append(
                        PlannedRun(
                            run_id=run["name"],
                            arch=arch,
                            width=size.width,
                            depth=size.depth,
                            label=point["label"],
                            subset=subset,
                            D=D,
                            hours=D / FRAMES_PER_HOUR,
                            seed=seed,
                            N=int(counts["N"]),
                            N_total=int(counts["N_total"]),
                            flops_per_frame=counts["flops_per_frame"],
                            planned_frames=int(frames),
                            planned_flops=counts["flops_per_frame"] * frames,
                            est_seconds=math.nan,
                            cpus=float(resources["cpus"]),
                            gpus=float(resources["gpus"]),
                            workers=int(resources["workers"]),
                            recipe=run,
                        )
                    )
    for r in runs:
        need_c, need_g = r.cpus * r.workers, r.gpus * r.workers
        if need_c > capacity["cpus"] + 1e-9 or need_g > capacity["gpus"] + 1e-9:
            raise RecipeError(
                "resources",
                f"run {r.run_id} needs {need_c:g} CPUs and {need_g:g} GPUs per trial; "
                f"the cluster has {capacity['cpus']:g} CPUs and {capacity['gpus']:g} GPUs",
            )

    twins = data_twins(runs, subsets_info)
    for r in runs:
        r.twins = twins.get(r.run_id, [])
    probe_info = estimate_seconds(
        recipe, manifest, runs, feature_dim, dev, subsets_info, probe=probe, probe_fn=probe_fn, log=log
    )
    selected, backlog, notes = select_runs(runs, recipe.budget)
    notes = design_notes + describe_data(subsets, subsets_info, dev) + notes
    selected = order_runs(selected, recipe.plan.order)
    for i, r in enumerate(selected):
        r.order = i
    plan = Plan(
        name=recipe.name,
        manifest=str(manifest),
        runs=selected,
        backlog=backlog,
        budget=to_dict(recipe.budget),
        notes=notes,
        probe=probe_info,
        capacity=capacity,
        startup_s=recipe.plan.startup_s,
    )
    return plan


__all__ = [
    "build_plan",
    "order_runs",
    "data_twins",
    "manifest_subsets",
    "select_subsets",
    "run_id_for",
    "base_run_recipe",
    "apply_rules",
    "count_run",
]
