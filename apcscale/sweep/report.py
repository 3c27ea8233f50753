"""report.txt: a sweep's results in words."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from apcscale.sweep.display import fmt_seconds
from apcscale.sweep.plan import Plan, _si

if TYPE_CHECKING:
    from apcscale.sweep.results import SweepResults



def _fmt_interval(iv) -> str:
    try:
        lo, hi = iv
        return f"[{lo:.4g}, {hi:.4g}]"
    except (TypeError, ValueError):
        return ""


def write_report(res: SweepResults, plan: Plan, decisions: list[dict], *, wall_seconds: float | None,
                 mode: str | None) -> str:
    from apcscale.scaling import derived_statements

    runs, sel = res.runs, res.selection
    in_plan = runs[runs["in_plan"] | (runs["status"] != "not run")]
    L = []
    L.append(f"sweep {plan.name}" + (f" (pruning: {mode})" if mode else ""))
    counts = in_plan["status"].value_counts().to_dict()
    shown = {"stopped": "stopped (pruned)", "interrupted": "interrupted (--resume continues them)"}
    L.append("runs: " + ", ".join(f"{counts.get(s, 0)} {shown.get(s, s)}"
                                  for s in ("finished", "stopped", "failed", "interrupted", "running", "not run")
                                  if counts.get(s, 0) or s in ("finished", "stopped", "failed")))
    spent = float(runs["flops"].sum())
    planned = float(in_plan["planned_flops"].sum())
    line = f"compute: {_si(spent)}FLOP spent of {_si(planned)}FLOP planned ({spent / planned:.0%})" if planned else "compute: -"
    if wall_seconds is not None:
        line += f"; wall time {fmt_seconds(wall_seconds)} (plan estimated {fmt_seconds(plan.makespan())})"
    L.append(line)
    L.append("")
    L.append("Selected losses (Hestness et al.: median across seeds of each run's minimum dev loss;")
    L.append("runs whose minimum is settled: finished, or stopped after their curve turned up)")
    if sel.empty:
        L.append("  (none)")
    else:
        L.append(f"  {'arch':<12}{'N':>9}  {'subset':<7}{'D frames':>10}{'hours':>8}{'seeds':>6}{'loss':>9}")
        for _, r in sel.iterrows():
            L.append(f"  {r['arch']:<12}{_si(r['N']):>9}  {r['subset']:<7}{_si(r['D']):>10}{r['hours']:>8.3g}"
                     f"{int(r['seeds']):>6}{r['median_min_dev_loss']:>9.4f}")
    L.append("")
    L.append("Compute-efficient frontier  L(C) = L_inf + (C_c / C)^alpha_C  (lower envelope of every curve)")
    for key, fr in res.fits.get("frontier", {}).items():
        if "error" in fr and "alpha" not in fr:
            L.append(f"  {key}: not fitted ({fr['error']})")
            continue
        ident = "" if fr.get("L_inf_identifiable", True) else "  (L_inf not identifiable)"
        L.append(f"  {key:<12} alpha_C {fr['alpha']:.4f} {_fmt_interval(fr['alpha_interval'])}  "
                 f"L_inf {fr['L_inf']:.4f} {_fmt_interval(fr['L_inf_interval'])}  C_c {fr['C_c']:.3g}{ident}")
        try:
            st = derived_statements(fr["alpha"], tuple(fr["alpha_interval"]))
            L.append(f"  {'':<12} {st['doubling']} {st['halving']}")
        except (ValueError, KeyError, TypeError):
            pass
    L.append("")
    L.append("L(N, D) = L_inf + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D  (Droppo & Elibol), per architecture")
    for arch, jf in res.fits.get("joint", {}).items():
        if "fit" not in jf:
            L.append(f"  {arch}: not fitted ({jf.get('error', '')})")
            continue
        L.append(f"  {arch}:")
        L.append("    " + jf["fit"].summary().replace("\n", "\n    "))
    L.append("")
    stops = [d for d in decisions if d.get("action") == "stop"]
    if stops:
        kind = {"prune": "stopped", "shadow": "would have stopped (shadow mode: nothing was stopped)", "asha": "ASHA stopped"}
        L.append("Pruning decisions")
        for d in stops:
            frac = d.get("fraction")
            L.append(f"  {kind.get(d.get('mode'), d.get('mode'))} {d['run_id']} at "
                     f"{(frac if frac is not None else math.nan):.0%} of its budget: {d.get('reason', '')}")
        by_rule: dict[str, list[float]] = {}
        for d in stops:
            rule = ("behind a larger data twin" if d.get("twin") else "past its best" if
                    str(d.get("reason", "")).startswith("past its best") else
                    "extrapolated above the frontier" if d.get("mode") != "asha" else "ASHA")
            by_rule.setdefault(rule, []).append((d.get("planned") or 0) - (d.get("compute") or 0))
        L.append("  by rule: " + "; ".join(f"{rule} {len(v)} ({_si(sum(v))}FLOP of their plans not spent)"
                                          for rule, v in by_rule.items()))
        shadow = [d for d in stops if d.get("mode") == "shadow"]
        if shadow:
            saved = sum((d.get("planned") or 0) - (d.get("compute") or 0) for d in shadow)
            L.append(f"  in shadow mode the frontier policy would have saved {_si(saved)}FLOP "
                     f"({saved / spent:.0%} of what was spent); apcscale.sweep.replay tells how far the fit would move")
        L.append(f"  ({len(decisions)} decisions in decisions.jsonl)")
        L.append("")
    for status, title in (("failed", "Failed runs"), ("interrupted", "Interrupted runs (not in the selection or the fits)")):
        rows = in_plan[in_plan["status"] == status]
        if len(rows):
            L.append(title)
            for _, r in rows.iterrows():
                L.append(f"  {r['run_id']}: {r['note']}")
            L.append("")
    ran = runs[(runs["status"] == "finished") & np.isfinite(runs["wall_time"])]
    if len(ran):
        overhead = float((plan.to_dict().get("probe") or {}).get("trial_overhead_s", 0.0))
        ratio = float(np.median(ran["wall_time"] / np.maximum(ran["est_seconds"] - overhead, 1e-9)))
        L.append(f"time estimates: a finished run trained and evaluated for {ratio:.2f}x the plan's estimate "
                 f"(median over {len(ran)} runs; the probe times an idle machine, the runs share it)")
    L.append("files: points.csv/.parquet (every evaluation), runs.csv, selection.csv, fit.json, curves.png, law_nd.png")
    return "\n".join(L) + "\n"


__all__ = ["write_report"]
