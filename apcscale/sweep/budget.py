"""Which runs of the grid fit the compute budget.

All of them if they fit; else seeds are dropped, then ladder rungs, keeping at least two rungs of
every ladder and as much of two orders of magnitude in N and in D as the budget allows; the
dropped runs form a backlog (most wanted first) that compute saved by pruning can start later.
"""

from __future__ import annotations

import math

from apcscale.sweep.plan import Plan, PlannedRun, _si
from apcscale.utils.schema import RecipeError

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
        n_span = min(
            _decades([next(r.N for r in self.runs if r.label == lab) for lab in labs]) for labs in sizes.values()
        )
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
                found += [ladder[:i] + ladder[i + 1 :] for i in range(len(ladder))]
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
    notes = [
        f"the full grid ({len(runs)} runs) needs {_budget_text(Plan.totals(runs), budget)}; "
        f"{len(chosen)} runs fit, {len(backlog_ids)} wait in the backlog for compute that pruning saves"
    ]
    return chosen, [by_id[i] for i in backlog_ids], notes


__all__ = ["select_runs"]
