"""The budget-aware plan: which runs, what each costs, in what order.

From a sweep recipe and a prepared manifest, `build_plan`

1. expands the grid (architecture x size x subset x seed) into runs, each with
   its complete training recipe (defaults, then the matching `rules`, in order),
   validated like a hand-written one;
2. counts each run: N (context parameters) and training FLOPs per frame
   (apcscale.models.counting, with the attention term at the subset's mean
   utterance length), planned frames from its `train_budget`, hence planned FLOPs;
3. estimates seconds from a short *throughput probe*: a few timed training steps
   of each (architecture, size) on real batches of the data, on the device and
   with the threads a trial gets (cached per machine), plus evaluations and a
   fixed per-trial overhead;
4. selects the runs that fit the compute budget (FLOPs, GPU-hours, CPU-hours):
   all of them if they fit, else greedily drops seeds, then ladder rungs,
   keeping at least two rungs of every ladder and as much of two orders of
   magnitude in N and in D as the budget allows; the dropped runs form a backlog
   that compute saved by pruning can start later;
5. orders the selected runs cheap first (at equal cost, more data first, so a
   data-limited run meets the frontier of its full-data twin).

Everything that can be wrong with a recipe (an unknown architecture, a subset
the manifest lacks, a rule that makes a run's recipe invalid, a budget the
smallest plan exceeds) raises a RecipeError here, before any trial starts.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import platform
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from apcscale.sweep.recipe import Resources, SweepRecipe
from apcscale.train.budget import EvalConfig, evaluation_points
from apcscale.train.config import TrainRecipe
from apcscale.utils.schema import RecipeError, apply_override, from_dict, to_dict

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
    def load(cls, path: str | Path) -> "Plan":
        data = json.loads(Path(path).read_text())
        return cls(
            name=data["name"], manifest=data["manifest"],
            runs=[PlannedRun(**r) for r in data["runs"]], backlog=[PlannedRun(**r) for r in data["backlog"]],
            budget=data.get("budget", {}), notes=data.get("notes", []), probe=data.get("probe", {}),
            capacity=data.get("capacity", {}), startup_s=data.get("startup_s", 0.0),
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


def plan_twins(plan: "Plan") -> dict[str, list[str]]:
    """The data twins of a plan's runs; for a plan saved before they were recorded, found again
    from its manifest (none if that is gone)."""
    everything = [*plan.runs, *plan.backlog]
    if any(r.twins for r in everything):
        return {r.run_id: list(r.twins) for r in everything if r.twins}
    try:
        subsets_info = manifest_subsets(Path(plan.manifest))[0]
    except Exception:
        return {}
    return data_twins(everything, subsets_info)


def select_subsets(recipe: SweepRecipe, available: dict[str, dict[str, Any]]) -> list[str]:
    wanted = list(available) if recipe.grid.subsets == "all" else list(recipe.grid.subsets)
    for i, name in enumerate(wanted):
        if name not in available:
            names = ", ".join(f"{k} ({_si(v['frames'])} frames)" for k, v in available.items())
            raise RecipeError(f"grid.subsets[{i}]", f"the manifest has no subset {name!r} (it has {names})")
    return sorted(wanted, key=lambda n: int(available[n]["frames"]))


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


def run_id_for(arch: str, width: int, depth: int, subset: str, seed: int) -> str:
    return f"{arch}-w{width}-d{depth}-{subset}-s{seed}"


def base_run_recipe(recipe: SweepRecipe, manifest: Path, arch: str, size, subset: str, seed: int) -> dict[str, Any]:
    data = to_dict(recipe.data)
    data.update({"manifest": str(manifest), "audio": None, "prepared_dir": None, "subset": subset, "seed": seed})
    model = {"arch": arch, "width": size.width, "depth": size.depth,
             "time_shift": recipe.model.time_shift, "dropout": recipe.model.dropout,
             "ff_mult": size.ff_mult if size.ff_mult is not None else recipe.model.ff_mult}
    if arch == "transformer":
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


@dataclass
class ProbeResult:
    train_frames_per_s: float
    eval_frames_per_s: float
    device: str
    threads: int
    cached: bool = False


def _probe_key(model: dict, feature_dim: int, batch_size: int, crop: int, device: str, threads: int, data_tag: str) -> str:
    import torch

    ident = json.dumps({"model": {k: model.get(k) for k in ("arch", "width", "depth", "heads", "ff_mult")},
                        "F": feature_dim, "B": batch_size, "crop": crop, "device": device, "threads": threads,
                        "torch": torch.__version__, "host": socket.gethostname(), "cpu": platform.processor(),
                        "data": data_tag}, sort_keys=True)
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


def _probe_cache_path() -> Path:
    from apcscale.data.source import cache_dir

    return cache_dir() / "probe-cache.json"


def sample_batches(manifest: Path, subset: str, batch_size: int, crop: int, n: int = 24) -> tuple[list[dict], float]:
    """Real training batches (padded as training pads them) for the probe, and the seconds per
    frame the data stream takes to make them (reading, decoding, cropping, shuffling, batching)."""
    from apcscale.data import APCDataModule

    dm = APCDataModule(manifest, subset=subset, crop_frames=crop, batch_size=batch_size, num_workers=0)
    dm.setup("fit")
    batches, stamps, frames = [], [], []
    for batch in dm.train_dataloader():
        stamps.append(time.perf_counter())
        batches.append({"feats": batch["feats"], "lengths": batch["lengths"]})
        frames.append(int(batch["lengths"].sum()))
        if len(batches) >= n:
            break
    skip = min(4, len(stamps) - 2)  # the first batches also fill the shuffle buffer
    seconds_per_frame = (stamps[-1] - stamps[skip]) / max(sum(frames[skip + 1:]), 1) if len(stamps) > 2 else 0.0
    return batches[:8], seconds_per_frame


def probe_throughput(model: dict, feature_dim: int, batches: list[dict], *, steps: int, threads: int,
                     device: str = "cpu") -> ProbeResult:
    """Frames per second of training steps (forward, backward, AdamW) and of evaluation."""
    import torch

    from apcscale.models.config import ModelConfig
    from apcscale.models.net import APCNet

    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, threads))
    try:
        torch.manual_seed(0)
        net = APCNet(feature_dim, from_dict(ModelConfig, model, "model")).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=1e-4)
        moved = [{k: v.to(device) for k, v in b.items()} for b in batches]

        def sync():
            if device.startswith("cuda"):
                torch.cuda.synchronize()

        def train_step(b):
            total, count = net.loss_terms(b["feats"], b["lengths"])
            (total / count.clamp_min(1)).backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

        warm = min(2, len(moved))
        for b in moved[:warm]:
            train_step(b)
        sync()
        frames, t0 = 0, time.perf_counter()
        for i in range(steps):
            b = moved[(warm + i) % len(moved)]
            train_step(b)
            frames += int(b["lengths"].sum())
        sync()
        train_rate = frames / max(time.perf_counter() - t0, 1e-9)
        with torch.no_grad():
            frames, t0 = 0, time.perf_counter()
            for b in moved:
                net(b["feats"])
                frames += int(b["lengths"].sum())
            sync()
            eval_rate = frames / max(time.perf_counter() - t0, 1e-9)
        return ProbeResult(train_rate, eval_rate, device=device, threads=threads)
    finally:
        torch.set_num_threads(previous)


# ----------------------------------------------------------------------------------------------
# selection under the budget
# ----------------------------------------------------------------------------------------------

def _decades(values: list[float]) -> float:
    return math.log10(max(values) / min(values)) if len(values) >= 2 and min(values) > 0 else 0.0


class _Selection:
    """Which rungs of each ladder (sizes per architecture, subsets, seeds) are in the plan."""

    def __init__(self, runs: list[PlannedRun]):
        self.runs = runs
        self.sizes: dict[str, list[str]] = {}
        for r in sorted(runs, key=lambda r: r.N):
            ladder = self.sizes.setdefault(r.arch, [])
            if r.label not in ladder:
                ladder.append(r.label)
        self.subsets = sorted({r.subset for r in runs}, key=lambda s: next(r.D for r in runs if r.subset == s))
        self.seeds = sorted({r.seed for r in runs})
        self.full = {"sizes": {a: list(v) for a, v in self.sizes.items()}, "subsets": list(self.subsets)}

    def state(self):
        return ({a: tuple(v) for a, v in self.sizes.items()}, tuple(self.subsets), tuple(self.seeds))

    def chosen(self, state=None) -> list[PlannedRun]:
        sizes, subsets, seeds = state or self.state()
        return [r for r in self.runs if r.label in sizes[r.arch] and r.subset in subsets and r.seed in seeds]

    def coverage(self, state) -> float:
        sizes, subsets, _ = state
        n_span = min(_decades([next(r.N for r in self.runs if r.label == lab) for lab in labs]) for labs in sizes.values())
        d_span = _decades([next(r.D for r in self.runs if r.subset == s) for s in subsets])
        return round(min(n_span, 2.0) + min(d_span, 2.0), 6)

    def candidates(self, state):
        sizes, subsets, seeds = state
        out = []
        if len(seeds) > 1:
            out.append((sizes, subsets, seeds[:-1]))

        def variants(ladder: tuple, full: list):
            found = []
            if len(ladder) > 2:
                found += [ladder[:i] + ladder[i + 1:] for i in range(len(ladder))]
            elif len(ladder) == 2:
                # shrink: replace the top rung by the next smaller rung not in use
                lower = [x for x in full if full.index(x) < full.index(ladder[1]) and x not in ladder]
                if lower:
                    found.append((ladder[0], lower[-1]))
            return found

        for arch, ladder in sizes.items():
            for v in variants(ladder, self.full["sizes"][arch]):
                out.append(({**sizes, arch: v}, subsets, seeds))
        for v in variants(subsets, self.full["subsets"]):
            out.append((sizes, v, seeds))
        return out


def _fits(totals: dict[str, float], budget) -> bool:
    ok = True
    if budget.flops is not None:
        ok &= totals["flops"] <= budget.flops
    if budget.gpu_hours is not None:
        ok &= totals["gpu_hours"] <= budget.gpu_hours
    if budget.cpu_hours is not None:
        ok &= totals["cpu_hours"] <= budget.cpu_hours
    return bool(ok)


def _budget_text(totals: dict[str, float], budget) -> str:
    parts = []
    if budget.flops is not None:
        parts.append(f"{_si(totals['flops'])}FLOP of {_si(budget.flops)}FLOP")
    if budget.gpu_hours is not None:
        parts.append(f"{totals['gpu_hours']:.3g} of {budget.gpu_hours:.3g} GPU-hours")
    if budget.cpu_hours is not None:
        parts.append(f"{totals['cpu_hours']:.3g} of {budget.cpu_hours:.3g} CPU-hours")
    return ", ".join(parts)


def select_runs(runs: list[PlannedRun], budget) -> tuple[list[PlannedRun], list[PlannedRun], list[str]]:
    """(selected, backlog most-wanted first, notes)."""
    if not budget.limited or _fits(Plan.totals(runs), budget):
        return list(runs), [], []
    sel = _Selection(runs)
    # the smallest plan that still measures a law: two smallest sizes of each architecture,
    # the two smallest subsets, one seed
    sizes, subsets, seeds = sel.state()
    minimal = ({a: v[:2] for a, v in sizes.items()}, subsets[:2], seeds[:1])
    min_totals = Plan.totals(sel.chosen(minimal))
    if not _fits(min_totals, budget):
        raise RecipeError(
            "budget",
            f"the smallest plan (the 2 smallest sizes of each architecture x the 2 smallest subsets, 1 seed: "
            f"{len(sel.chosen(minimal))} runs) needs {_budget_text(min_totals, budget)}; "
            "raise the budget or shrink the ladders / train_budget",
        )
    state, dropped_order = sel.state(), []
    while not _fits(Plan.totals(sel.chosen(state)), budget):
        cands = sel.candidates(state)
        if not cands:
            state = minimal
            break
        def key(c):
            # coverage first; at equal coverage a plan that fits (the one keeping most runs), else the
            # cheapest (the reduction that saves most)
            runs_c = sel.chosen(c)
            fits = _fits(Plan.totals(runs_c), budget)
            return (sel.coverage(c), fits, len(runs_c) if fits else -Plan.totals(runs_c)["flops"])

        best = max(cands, key=key)
        before = {r.run_id for r in sel.chosen(state)}
        after = {r.run_id for r in sel.chosen(best)}
        dropped_order.append(sorted(before - after))
        state = best
    chosen = sel.chosen(state)
    chosen_ids = {r.run_id for r in chosen}
    backlog_ids: list[str] = []
    for group in reversed(dropped_order):  # dropped last = wanted most
        backlog_ids += [i for i in group if i not in chosen_ids and i not in backlog_ids]
    backlog_ids += [r.run_id for r in runs if r.run_id not in chosen_ids and r.run_id not in backlog_ids]
    by_id = {r.run_id: r for r in runs}
    notes = [f"the full grid ({len(runs)} runs) needs {_budget_text(Plan.totals(runs), budget)}; "
             f"{len(chosen)} runs fit, {len(backlog_ids)} wait in the backlog for compute that pruning saves"]
    return chosen, [by_id[i] for i in backlog_ids], notes


def order_runs(runs: list[PlannedRun], how: str) -> list[PlannedRun]:
    if how == "grid":
        return list(runs)
    # cheap first; at equal cost more data first (its data-limited twins then meet its frontier)
    return sorted(runs, key=lambda r: (float(f"{r.planned_flops:.2g}"), r.arch, r.N, -r.D, r.seed, r.run_id))


# ----------------------------------------------------------------------------------------------
# the plan
# ----------------------------------------------------------------------------------------------

def build_plan(recipe: SweepRecipe, manifest: Path, *, probe: bool = True, capacity: dict[str, float] | None = None,
               probe_fn=None, log=print) -> Plan:
    """The validated, costed, budget-fitted and ordered plan of a sweep (no trial runs here)."""
    subsets_info, feature_dim, dev = manifest_subsets(manifest)
    subsets = select_subsets(recipe, subsets_info)
    d = recipe.data
    capacity = dict(capacity or {"cpus": float(recipe.ray.num_cpus or os.cpu_count() or 1),
                                 "gpus": float(recipe.ray.num_gpus or _local_gpus())})

    runs: list[PlannedRun] = []
    for arch, ladder in recipe.grid.models.items():
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
                for seed in recipe.grid.seeds:
                    run = base_run_recipe(recipe, manifest, arch, size, subset, seed)
                    counts = count_run(run["model"], feature_dim, int(round(mean_len)))
                    point = {"arch": arch, "width": size.width, "depth": size.depth, "subset": subset, "seed": seed,
                             "label": f"{arch}-w{size.width}-d{size.depth}", "N": counts["N"]}
                    run, resources = apply_rules(recipe, run, point)
                    counts = count_run(run["model"], feature_dim, int(round(mean_len)))
                    train = from_dict(TrainRecipe, run)
                    unit, total = train.budget.resolve(D)
                    frames = total if unit == "frames" else int(total * train.data.batch_size * mean_len)
                    runs.append(PlannedRun(
                        run_id=run["name"], arch=arch, width=size.width, depth=size.depth, label=point["label"],
                        subset=subset, D=D, hours=D / FRAMES_PER_HOUR, seed=seed, N=int(counts["N"]),
                        N_total=int(counts["N_total"]), flops_per_frame=counts["flops_per_frame"],
                        planned_frames=int(frames), planned_flops=counts["flops_per_frame"] * frames,
                        est_seconds=math.nan, cpus=float(resources["cpus"]), gpus=float(resources["gpus"]),
                        workers=int(resources["workers"]), recipe=run,
                    ))
    for r in runs:
        need_c, need_g = r.cpus * r.workers, r.gpus * r.workers
        if need_c > capacity["cpus"] + 1e-9 or need_g > capacity["gpus"] + 1e-9:
            raise RecipeError("resources", f"run {r.run_id} needs {need_c:g} CPUs and {need_g:g} GPUs per trial; "
                                           f"the cluster has {capacity['cpus']:g} CPUs and {capacity['gpus']:g} GPUs")

    twins = data_twins(runs, subsets_info)
    for r in runs:
        r.twins = twins.get(r.run_id, [])
    probe_info = estimate_seconds(recipe, manifest, runs, feature_dim, dev, subsets_info, probe=probe,
                                  probe_fn=probe_fn, log=log)
    selected, backlog, notes = select_runs(runs, recipe.budget)
    selected = order_runs(selected, recipe.plan.order)
    for i, r in enumerate(selected):
        r.order = i
    plan = Plan(name=recipe.name, manifest=str(manifest), runs=selected, backlog=backlog,
                budget=to_dict(recipe.budget), notes=notes, probe=probe_info, capacity=capacity,
                startup_s=recipe.plan.startup_s)
    return plan


def _local_gpus() -> float:
    try:
        import torch

        return float(torch.cuda.device_count())
    except Exception:
        return 0.0


def estimate_seconds(recipe: SweepRecipe, manifest: Path, runs: list[PlannedRun], feature_dim: int, dev: dict,
                     subsets_info: dict, *, probe: bool, probe_fn=None, log=print) -> dict[str, Any]:
    """Fill each run's est_seconds from the throughput probe (or a FLOP-rate guess without one)."""
    d = recipe.data
    largest = list(subsets_info)[-1]
    dev_frames = float(dev.get("frames") or 0.1 * float(subsets_info[largest]["frames"]))
    cache_path = _probe_cache_path()
    try:
        cache = json.loads(cache_path.read_text()) if cache_path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        cache = {}
    rates: dict[str, ProbeResult] = {}
    batches = None
    info: dict[str, Any] = {"dev_frames": dev_frames, "sizes": {}}
    started = time.perf_counter()
    # the data stream's own cost per training frame (paid in the training process when num_workers == 0)
    data_key = _probe_key({"arch": "data"}, feature_dim, d.batch_size, d.crop_frames, "cpu", 1, str(manifest))
    data_s_per_frame = float(cache.get(data_key, {}).get("seconds_per_frame", 0.0))
    if probe and data_key not in cache:
        batches, data_s_per_frame = sample_batches(manifest, largest, d.batch_size, d.crop_frames)
        cache[data_key] = {"seconds_per_frame": data_s_per_frame, "label": "data stream", "when": time.time()}
    info["data_seconds_per_frame"] = data_s_per_frame
    for r in runs:
        threads = max(1, int(r.cpus))
        device = "cuda" if r.gpus > 0 and _local_gpus() > 0 else "cpu"
        key = _probe_key(r.recipe["model"], feature_dim, d.batch_size, d.crop_frames, device, threads, str(manifest))
        if key not in rates:
            if key in cache:
                c = cache[key]
                rates[key] = ProbeResult(c["train"], c["eval"], c["device"], c["threads"], cached=True)
            elif probe:
                if batches is None:
                    batches, _ = sample_batches(manifest, largest, d.batch_size, d.crop_frames)
                fn = probe_fn or probe_throughput
                rates[key] = fn(r.recipe["model"], feature_dim, batches, steps=recipe.plan.probe_steps,
                                threads=threads, device=device)
                cache[key] = {"train": rates[key].train_frames_per_s, "eval": rates[key].eval_frames_per_s,
                              "device": device, "threads": threads, "label": r.label, "when": time.time()}
            else:
                # no probe: assume a modest 2 GFLOP/s per thread on CPU (a stated guess, not a measurement)
                flops_rate = 2e9 * threads if device == "cpu" else 5e12
                rate = flops_rate / max(r.flops_per_frame, 1.0)
                rates[key] = ProbeResult(rate, 3 * rate, device, threads)
        p = rates[key]
        n_evals = len(evaluation_points(max(1, r.planned_frames), from_dict(EvalConfig, r.recipe["eval"])))
        scale = max(1, r.workers) if r.gpus > 0 or r.workers > 1 else 1
        loading = data_s_per_frame if int(r.recipe["data"].get("num_workers", 0)) == 0 else 0.0
        r.est_seconds = (r.planned_frames * (1.0 / (p.train_frames_per_s * scale) + loading)
                         + n_evals * (dev_frames / p.eval_frames_per_s + recipe.plan.eval_overhead_s)
                         + recipe.plan.trial_overhead_s)
        info["sizes"][r.label] = {"train_frames_per_s": p.train_frames_per_s, "eval_frames_per_s": p.eval_frames_per_s,
                                  "device": p.device, "threads": p.threads, "cached": p.cached}
    info["seconds"] = time.perf_counter() - started
    info["probed"] = bool(probe)
    info["trial_overhead_s"] = recipe.plan.trial_overhead_s
    if probe:
        try:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(cache, indent=1))
            os.replace(tmp, cache_path)
        except OSError:
            pass
    return info


# ----------------------------------------------------------------------------------------------
# display
# ----------------------------------------------------------------------------------------------

def _si(x: float) -> str:
    for unit, scale in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


def fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "-"
    s = int(round(s))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def plan_table(plan: Plan, title: str | None = None):
    """A rich Table of the plan (selected runs in launch order, then the backlog, dimmed)."""
    from rich import box
    from rich.table import Table

    all_runs = [*plan.runs, *plan.backlog]
    uniform = len({(r.cpus, r.gpus, r.workers) for r in all_runs}) <= 1
    table = Table(title=title or f"plan: {plan.name}", title_justify="left", header_style="bold",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    cols = [("#", {"justify": "right"}), ("run", {"no_wrap": True}), ("N", {"justify": "right"}),
            ("D", {"justify": "right"}), ("hours", {"justify": "right"}), ("budget", {"justify": "right"}),
            ("FLOPs", {"justify": "right"}), ("est.", {"justify": "right"})]
    if not uniform:
        cols.append(("resources", {"no_wrap": True}))
    for col, kw in cols:
        table.add_column(col, **kw)
    for r in plan.runs:
        table.add_row(*_row(r, str(r.order + 1), uniform))
    if plan.backlog:
        table.add_section()
        for r in plan.backlog:
            table.add_row(*_row(r, "-", uniform), style="dim")
    return table


def _row(r: PlannedRun, idx: str, uniform: bool) -> list[str]:
    row = [idx, r.run_id, _si(r.N), _si(r.D), f"{r.hours:.2g}", _si(r.planned_frames), _si(r.planned_flops),
           fmt_seconds(r.est_seconds)]
    if not uniform:
        row.append(_resources(r))
    return row


def _resources(r: PlannedRun) -> str:
    return f"{r.cpus:g} CPU" + (f" + {r.gpus:g} GPU" if r.gpus else "") + (f" x{r.workers}" if r.workers > 1 else "")


def plan_summary(plan: Plan) -> list[str]:
    t = Plan.totals(plan.runs)
    lines = []
    by_arch: dict[str, list[int]] = {}
    for r in plan.runs:
        by_arch.setdefault(r.arch, []).append(r.N)
    ds = sorted({r.D for r in plan.runs})
    spans = "; ".join(f"{a} N {_si(min(v))}-{_si(max(v))} ({_decades(v):.1f} decades)" for a, v in by_arch.items())
    lines.append(f"{len(plan.runs)} runs: {spans}; D {_si(ds[0])}-{_si(ds[-1])} frames ({_decades(ds):.1f} decades); "
                 "budget = frames each run trains on")
    cap = plan.capacity
    if len({(r.cpus, r.gpus, r.workers) for r in plan.runs}) == 1 and plan.runs:
        lines.append(f"each trial: {_resources(plan.runs[0])}")
    lines.append(
        f"compute {_si(t['flops'])}FLOP, {t['cpu_hours']:.3g} CPU-h" + (f", {t['gpu_hours']:.3g} GPU-h" if t["gpu_hours"] else "")
        + f"; est. wall time {fmt_seconds(plan.makespan())} on {cap.get('cpus', 0):g} CPUs"
        + (f" + {cap.get('gpus', 0):g} GPUs" if cap.get("gpus") else "")
    )
    budget = {k: v for k, v in plan.budget.items() if v is not None}
    if budget:
        lines.append("budget " + ", ".join(f"{k} {(_si(v) if k == 'flops' else f'{v:g}')}" for k, v in budget.items()))
    with_twins = sum(1 for r in plan.runs if r.twins)
    if with_twins:
        lines.append(f"{with_twins} runs have a data twin (the same recipe on a larger subset): pruning can stop "
                     f"one once it is confirmed behind its twin")
    if plan.probe:
        probed = plan.probe.get("sizes", {})
        n_cached = sum(1 for v in probed.values() if v.get("cached"))
        how = "probed" if plan.probe.get("probed") else "guessed (no probe)"
        lines.append(f"time estimates {how}: {len(probed)} sizes ({n_cached} from the probe cache) "
                     f"in {plan.probe.get('seconds', 0):.1f}s")
    lines += plan.notes
    return lines


__all__ = ["Plan", "PlannedRun", "build_plan", "select_runs", "order_runs", "plan_table", "plan_summary",
           "simulate_makespan", "probe_throughput", "fmt_seconds", "run_id_for"]
