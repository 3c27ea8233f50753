"""The plan on the terminal: a rich table of the runs and a few summary lines."""

from __future__ import annotations

import math

from apcscale.sweep.budget import _decades
from apcscale.sweep.plan import Plan, PlannedRun, _si

# ----------------------------------------------------------------------------------------------
# display
# ----------------------------------------------------------------------------------------------


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
    table = Table(
        title=title or f"plan: {plan.name}",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    cols = [
        ("#", {"justify": "right"}),
        ("run", {"no_wrap": True}),
        ("N", {"justify": "right"}),
        ("D", {"justify": "right"}),
        ("hours", {"justify": "right"}),
        ("budget", {"justify": "right"}),
        ("FLOPs", {"justify": "right"}),
        ("est.", {"justify": "right"}),
    ]
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
    row = [
        idx,
        r.run_id,
        _si(r.N),
        _si(r.D),
        f"{r.hours:.2g}",
        _si(r.planned_frames),
        _si(r.planned_flops),
        fmt_seconds(r.est_seconds),
    ]
    if not uniform:
        row.append(_resources(r))
    return row


def _resources(r: PlannedRun) -> str:
    return f"{r.cpus:g} CPU" + (f" + {r.gpus:g} GPU" if r.gpus else "") + (f" x{r.workers}" if r.workers > 1 else "")


def plan_summary(plan: Plan) -> list[str]:
    if not plan.runs:
        return ["no runs planned"]
    t = Plan.totals(plan.runs)
    lines = []
    by_arch: dict[str, list[int]] = {}
    for r in plan.runs:
        by_arch.setdefault(r.arch, []).append(r.N)
    ds = sorted({r.D for r in plan.runs})
    spans = "; ".join(f"{a} N {_si(min(v))}-{_si(max(v))} ({_decades(v):.1f} decades)" for a, v in by_arch.items())
    stopping = [r.recipe.get("stopping") or {} for r in plan.runs]
    converge = bool(stopping) and all(s.get("enabled") for s in stopping)
    lines.append(
        f"{len(plan.runs)} runs: {spans}; D {_si(ds[0])}-{_si(ds[-1])} frames ({_decades(ds):.1f} decades); "
        + (
            f"each run trains until its dev loss stops improving (patience {stopping[0].get('patience')} "
            f"evaluations) or to its cap (the budget column)"
            if converge
            else "budget = frames each run trains on"
        )
    )
    cap = plan.capacity
    if len({(r.cpus, r.gpus, r.workers) for r in plan.runs}) == 1 and plan.runs:
        lines.append(f"each trial: {_resources(plan.runs[0])}")
    lines.append(
        f"compute {_si(t['flops'])}FLOP, {t['cpu_hours']:.3g} CPU-h"
        + (f", {t['gpu_hours']:.3g} GPU-h" if t["gpu_hours"] else "")
        + f"; est. wall time {'at most ' if converge else ''}{fmt_seconds(plan.makespan())} on {cap.get('cpus', 0):g} CPUs"
        + (f" + {cap.get('gpus', 0):g} GPUs" if cap.get("gpus") else "")
    )
    budget = {k: v for k, v in plan.budget.items() if v is not None}
    if budget:
        lines.append("budget " + ", ".join(f"{k} {(_si(v) if k == 'flops' else f'{v:g}')}" for k, v in budget.items()))
    with_twins = sum(1 for r in plan.runs if r.twins)
    if with_twins:
        lines.append(
            f"{with_twins} runs have a data twin (the same recipe on a larger subset): pruning can stop "
            f"one once it is confirmed behind its twin"
        )
    if plan.probe and plan.probe.get("executed_per_counted") is not None:
        b = plan.probe.get("batching", {})
        size = f"{b['batch_frames']:,} frames" if b.get("batch_frames") else f"{b.get('batch_size') or 32} crops"
        lines.append(
            f"batches: {b.get('batching', 'bucket')}, {size} each; the models compute on "
            f"{plan.probe['executed_per_counted']:.2f} frames per frame counted (padding included)"
        )
    if plan.probe:
        probed = plan.probe.get("sizes", {})
        n_cached = sum(1 for v in probed.values() if v.get("cached"))
        how = "probed" if plan.probe.get("probed") else "guessed (no probe)"
        lines.append(
            f"time estimates {how}: {len(probed)} sizes ({n_cached} from the probe cache) "
            f"in {plan.probe.get('seconds', 0):.1f}s"
        )
    lines += plan.notes
    return lines


__all__ = ["plan_table", "plan_summary", "fmt_seconds"]
