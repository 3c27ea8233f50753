"""A study that adapts to its corpus: the subsets, the size ladders and the sweep's name chosen from
the data and the compute budget (grid.subsets: auto, grid.models.<arch>: auto, name: null).

Subsets (Hestness et al.: 2-3 decades of training data in steps of about 2x): the prepared corpus
has nested subsets d0 < d1 < ... < dK, each about twice the one before and dK all of the training
audio. The study takes dK and every `subset_step`-th subset below it, down to D_max / 10^decades_D,
leaving out subsets too small to train on (fewer than `min_subset_frames` frames or
`min_subset_utterances` utterances). On a corpus of any size the subsets are spread over all of it.

Ladders: each architecture has a family of shapes (width x depth, N about 2x apart); a ladder is
a run of them from a top rung N_top down to N_top / 10^decades_N, every rung at least
`rung_ratio` x the next. The design takes the largest N_top whose whole grid (every rung x every
subset x the seeds, each run at its planned cap: train_budget) fits the compute budget, and no
larger than `max_params_per_frame` x D_max (a model with more parameters than the corpus has
frames only measures overfitting). When even the smallest such grid does not fit, it thins the
grid (every other subset, rungs 4x apart) before it gives up with an error that says what the
smallest design needs.

Nothing here depends on the machine: the budget is counted in planned FLOPs, so the same recipe on
the same data chooses the same grid on a busy or an idle machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apcscale.utils.schema import RecipeError, check

#: shapes an `auto` ladder is cut from (width, depth), per architecture family
WIDTHS = (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536, 2048)


def family(arch: str) -> list[dict[str, int]]:
    """The candidate shapes of an architecture, smallest first (N about 2x apart)."""
    out = []
    for w in WIDTHS:
        if arch == "transformer":
            depth = 2 if w <= 96 else 4 if w <= 384 else 8 if w <= 1024 else 12
            heads = max(1, w // 64) if w >= 128 else max(1, w // 32)
            if (w // heads) % 2 or w % heads:
                continue
            out.append({"width": w, "depth": depth, "heads": heads})
        else:  # recurrent stacks (lstm, gru): depth grows slowly with width
            out.append({"width": w, "depth": 2 if w <= 256 else 3 if w <= 1024 else 4})
    return out


@dataclass
class DesignConfig:
    """How `auto` grids are chosen (apcscale.sweep.design).

    decades_N / decades_D: the span wanted in model size and in data (Droppo & Elibol, Hestness
        et al.: two orders of magnitude each).
    subset_step: 1 takes every nested subset (about 2x apart), 2 every other one (about 4x).
    min_subset_frames / min_subset_utterances: smaller subsets are not trained on.
    rung_ratio: consecutive rungs of a ladder at least this factor apart in N.
    max_params_per_frame: N_top at most this times the frames of all training data.
    spread_seeds: extra seeds for every rung on all of the training data (the seed spread that
        tells a law's resolution from its noise).
    """

    decades_N: float = 2.0
    decades_D: float = 2.0
    subset_step: int = 1
    min_subset_frames: int = 3000
    min_subset_utterances: int = 8
    rung_ratio: float = 1.8
    max_params_per_frame: float = 1.0
    spread_seeds: list[int] = field(default_factory=list)

    def validate(self) -> None:
        check(self.decades_N > 0, "decades_N", f"must be positive, got {self.decades_N}")
        check(self.decades_D > 0, "decades_D", f"must be positive, got {self.decades_D}")
        check(self.subset_step >= 1, "subset_step", f"must be at least 1, got {self.subset_step}")
        check(self.rung_ratio > 1, "rung_ratio", f"must be > 1, got {self.rung_ratio}")
        check(self.max_params_per_frame > 0, "max_params_per_frame", "must be positive")
        check(len(set(self.spread_seeds)) == len(self.spread_seeds), "spread_seeds", "names a seed twice")


@dataclass
class Design:
    """What the design chose, and why (the plan prints `notes`)."""

    subsets: list[str]
    ladders: dict[str, list[dict[str, int]]]
    notes: list[str]
    flops: float  # planned FLOPs of the designed grid (caps, before early stopping)


def corpus_name(root: str | Path | None) -> str:
    """A short name for a corpus from its folder (a generic folder name takes its parent's)."""
    if not root:
        return "corpus"
    p = Path(str(root).rstrip("/"))
    generic = {"recordings", "audio", "wav", "wavs", "flac", "data", "train", "corpus", "prepared"}
    name = p.name
    if name.lower() in generic and p.parent.name:
        name = p.parent.name
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name).strip("-.")
    return safe or "corpus"


def study_name(data, recipe_path: str | Path | None) -> str:
    """The name of a study whose recipe says `name: null`: <corpus>-<recipe>, e.g.
    speechocean762-default for sweep_default.yaml on a folder speechocean762/ (data: the recipe's
    DataConfig; the corpus is the manifest's source folder, or the audio folder)."""
    import json

    root = None
    if data.manifest:
        try:
            path = Path(data.manifest).expanduser()
            path = path / "manifest.json" if path.is_dir() else path
            root = json.loads(path.read_text()).get("source", {}).get("root") or path.parent.name
        except (OSError, ValueError, AttributeError):
            root = Path(data.manifest).parent.name
    else:
        from apcscale.data import resolve_audio

        root = resolve_audio(data.audio)
    stem = Path(recipe_path).stem if recipe_path else "study"
    stem = stem[len("sweep_") :] if stem.startswith("sweep_") else stem
    return f"{corpus_name(root)}-{stem}"


def choose_subsets(subsets: dict[str, dict[str, Any]], cfg: DesignConfig, step: int) -> tuple[list[str], list[str]]:
    """The nested subsets a study trains on (smallest first) and why; `subsets` sorted small to large."""
    names = list(subsets)
    d_max = float(subsets[names[-1]]["frames"])
    floor = d_max / 10**cfg.decades_D
    usable = [
        n
        for n in names
        if int(subsets[n]["frames"]) >= cfg.min_subset_frames
        and int(subsets[n].get("utterances") or 0) >= cfg.min_subset_utterances
    ]
    notes = []
    too_small = [n for n in names if n not in usable]
    if not usable:
        raise RecipeError(
            "grid.subsets",
            f"no subset of the corpus has {cfg.min_subset_frames} frames and "
            f"{cfg.min_subset_utterances} utterances (the largest, {names[-1]}, has "
            f"{int(subsets[names[-1]]['frames'])} frames): the corpus is too small",
        )
    chosen: list[str] = []
    ladder = usable[::-1][::step]  # from the largest down, every step-th

    def miss(names: list[str]) -> float:  # how far the span of names is from decades_D
        return abs(math.log10(d_max / float(subsets[names[-1]]["frames"])) - cfg.decades_D)

    for n in ladder:
        if chosen and (float(subsets[chosen[-1]]["frames"]) <= floor * 1.0001 or miss(chosen + [n]) > miss(chosen)):
            break
        chosen.append(n)
    chosen = chosen[::-1]
    span = math.log10(d_max / float(subsets[chosen[0]]["frames"])) if len(chosen) > 1 else 0.0
    if too_small:
        notes.append(
            f"subsets {too_small[0]}..{too_small[-1]} left out: fewer than {cfg.min_subset_frames} frames "
            f"or {cfg.min_subset_utterances} utterances"
        )
    if span + 1e-9 < cfg.decades_D:
        below = [n for n in ladder if float(subsets[n]["frames"]) < float(subsets[chosen[0]]["frames"])]
        if below:  # a smaller subset exists on the ladder, but it would overshoot further
            more = math.log10(d_max / float(subsets[below[0]]["frames"]))
            notes.append(
                f"D spans {span:.1f} decades, the nearest to the {cfg.decades_D:g} wanted on this ladder "
                f"({below[0]} would make {more:.1f})"
            )
        else:
            notes.append(
                f"D spans {span:.1f} decades, less than the {cfg.decades_D:g} wanted: the corpus is not large "
                f"enough (its smallest usable subset is {usable[0]})"
            )
    return chosen, notes


def _ladder(cands: list[dict[str, Any]], top: int, cfg: DesignConfig, ratio: float) -> list[dict[str, Any]]:
    """Rungs from cands[top] downward, each >= ratio x the next, until N spans decades_N."""
    ladder = [cands[top]]
    n_top = cands[top]["N"]
    for c in reversed(cands[:top]):
        if math.log10(n_top / ladder[-1]["N"]) >= cfg.decades_N - 1e-9:
            break
        if ladder[-1]["N"] / c["N"] >= ratio:
            ladder.append(c)
    return ladder[::-1]


def design_grid(
    archs: dict[str, Any],
    subsets: dict[str, dict[str, Any]],
    cfg: DesignConfig,
    *,
    auto_subsets: bool,
    fixed_subsets: list[str],
    seeds: list[int],
    count: Callable[[str, dict[str, int]], dict[str, float]],
    cap_frames: Callable[[int], int],
    budget_flops: float | None,
) -> Design:
    """Choose the subsets and the `auto` ladders (see the module docstring).

    archs: arch -> "auto" or an explicit list of shapes; count(arch, shape) -> {"N", "flops_per_frame"};
    cap_frames(D) -> a run's planned frames on a subset of D frames; budget_flops: None = no limit."""
    d_max = int(subsets[list(subsets)[-1]]["frames"])
    spread = [s for s in cfg.spread_seeds if s not in seeds]
    n_ceiling = cfg.max_params_per_frame * d_max
    cands: dict[str, list[dict[str, Any]]] = {}
    for arch, spec in archs.items():
        if spec == "auto":
            found = []
            for shape in family(arch):
                c = count(arch, shape)
                found.append({**shape, "N": float(c["N"]), "fpf": float(c["flops_per_frame"])})
            found.sort(key=lambda c: c["N"])
            cands[arch] = found
        else:
            cands[arch] = [
                {**shape, "N": float(count(arch, shape)["N"]), "fpf": float(count(arch, shape)["flops_per_frame"])}
                for shape in spec
            ]

    def cost(ladders: dict[str, list[dict]], subs: list[str]) -> float:
        total = 0.0
        for ladder in ladders.values():
            for rung in ladder:
                for s in subs:
                    n_seeds = len(seeds) + (len(spread) if s == subs[-1] else 0)
                    total += n_seeds * rung["fpf"] * cap_frames(int(subsets[s]["frames"]))
        return total

    steps = [cfg.subset_step, 2 * cfg.subset_step] if auto_subsets else [None]
    ratios = [cfg.rung_ratio, max(3.5, 2 * cfg.rung_ratio)]
    options = []
    for step in steps:
        subs, sub_notes = choose_subsets(subsets, cfg, step) if auto_subsets else (list(fixed_subsets), [])
        for ratio in ratios:
            options.append((step, ratio, subs, sub_notes))
    auto = [a for a, spec in archs.items() if spec == "auto"]
    tops = {a: [i for i, c in enumerate(cands[a]) if c["N"] <= n_ceiling] for a in auto}
    for a in auto:
        if not tops[a]:
            raise RecipeError(
                f"grid.models.{a}",
                f"even the smallest {a} ({cands[a][0]['N']:.0f} parameters) has more "
                f"parameters than the corpus has frames ({d_max})",
            )
    fixed = {a: cands[a] for a in archs if a not in auto}
    top = {a: len(tops[a]) - 1 for a in auto}  # each auto ladder's top rung, as an index into tops[a]
    tried = []
    while True:
        first = None
        for step, ratio, subs, sub_notes in options:
            ladders = dict(fixed)
            for a in auto:
                ladders[a] = _ladder(cands[a], tops[a][top[a]], cfg, ratio)
            first = first or (ladders, subs)
            flops = cost(ladders, subs)
            tried.append(flops)
            if budget_flops is None or flops <= budget_flops:
                notes = list(sub_notes)
                for a in auto:
                    lad = ladders[a]
                    span = math.log10(lad[-1]["N"] / lad[0]["N"]) if len(lad) > 1 else 0.0
                    why = (
                        f"the largest the data supports (N <= {cfg.max_params_per_frame:g} x all training frames)"
                        if top[a] == len(tops[a]) - 1
                        else "the largest whose grid fits the budget"
                    )
                    notes.append(
                        f"{a}: {len(lad)} sizes, N {_si(lad[0]['N'])}-{_si(lad[-1]['N'])} ({span:.1f} decades), "
                        f"top rung {why}"
                        + (
                            ""
                            if span + 1e-9 >= cfg.decades_N
                            else f"; less than {cfg.decades_N:g} decades: no smaller shape in the family"
                        )
                    )
                if step is not None and step > cfg.subset_step:
                    notes.append("every other subset (about 4x apart) to fit the budget")
                if ratio > cfg.rung_ratio and auto:
                    notes.append(f"rungs about {ratio:g}x apart in N to fit the budget")
                return Design(
                    subsets=subs,
                    ladders={
                        a: [{k2: v for k2, v in r.items() if k2 not in ("N", "fpf")} for r in ladders[a]] for a in archs
                    },
                    notes=notes,
                    flops=flops,
                )
        # nothing fits: lower the top rung of the auto ladder that costs most
        ladders0, subs0 = first
        lowerable = {a: cost({a: ladders0[a]}, subs0) for a in auto if top[a] > 0}
        if not lowerable:
            break
        top[max(lowerable, key=lowerable.get)] -= 1
    smallest = min(tried) if tried else math.nan
    raise RecipeError(
        "budget",
        f"the smallest design of this study (two decades of N and D, thinned) needs "
        f"{_si(smallest)}FLOP of planned compute, more than budget.flops {_si(budget_flops or 0)}; "
        f"raise the budget, lower train_budget, or narrow design.decades_N / decades_D",
    )


def _si(x: float) -> str:
    from apcscale.sweep.plan import _si as si

    return si(x)


__all__ = ["DesignConfig", "Design", "design_grid", "choose_subsets", "family", "corpus_name", "study_name"]
