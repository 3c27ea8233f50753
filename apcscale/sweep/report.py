"""report.txt: a sweep's results in words, the answer first.

1. what was run (and what was not), and the warnings that change how to read the rest;
2. the answer: for a few compute budgets and amounts of audio, inside the study and up to 10x
   beyond, the best architecture, its size, and its predicted dev loss with a band
   (apcscale.sweep.answer), and the LSTM-Transformer crossover;
3. the baselines (copy-last-frame, a linear predictor) and each architecture's margin over them
   with its seed spread;
4. whether the laws extrapolate: the held-out largest model rung and largest subset, the frontier
   without its largest model, and the shared-asymptote test;
5. the laws with their intervals, the L(N, D) points with how each was obtained, the pruning
   decisions, the failed runs, and every warning of fit.json.

A conclusion that rests on a parameter that is not identifiable, or at a bound, is not stated:
the report names the parameter instead.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from apcscale.sweep.answer import answer_table, crossover
from apcscale.sweep.display import fmt_seconds
from apcscale.sweep.plan import Plan, _si

if TYPE_CHECKING:
    from apcscale.sweep.results import SweepResults

STATUSES = ("finished", "stopped", "failed", "interrupted", "running", "not run")


def _fmt_interval(iv) -> str:
    try:
        lo, hi = iv
        return f"[{lo:.4g}, {hi:.4g}]"
    except (TypeError, ValueError):
        return ""


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%" if np.isfinite(x) else "-"


def _status(runs: pd.DataFrame) -> pd.Series:
    return runs["status"].replace({"pruned": "stopped", "incomplete": "interrupted"})


def _run_counts(runs: pd.DataFrame) -> str:
    st = _status(runs)
    fin = runs[st == "finished"]
    conv = fin["converged"] if "converged" in fin else pd.Series(dtype=object)
    n_conv = int((conv == True).sum())  # noqa: E712 (None and NaN are neither)
    n_cap = int((conv == False).sum())  # noqa: E712
    parts = []
    for s in STATUSES:
        n = int((st == s).sum())
        if s == "finished":
            detail = []
            if n_conv:
                detail.append(f"{n_conv} converged")
            if n_cap:
                detail.append(f"{n_cap} at their cap, not converged")
            parts.append(f"{n} finished" + (f" ({', '.join(detail)})" if detail else ""))
        elif n or s in ("stopped", "failed"):
            parts.append(f"{n} {s}" + (" (backlog or never started)" if s == "not run" and n else ""))
    return ", ".join(parts)


def baseline_lines(res: SweepResults) -> tuple[list[str], list[str]]:
    """The baselines section and the headline warnings it raises."""
    b = res.baselines or {}
    L, warns = [], []
    if "copy_last_frame" not in b:
        return [f"  baselines unavailable ({b.get('error', 'not computed')})"], []
    lin = (b.get("linear") or {}).get("by_subset") or {}
    k = (b.get("linear") or {}).get("k")
    L.append(f"  copy-last-frame (x_t+{b.get('time_shift')} := x_t): dev L1 {b['copy_last_frame']:.4f}")
    if lin:
        L.append(
            f"  linear predictor over the past {k} frames, least squares on each subset: "
            + ", ".join(f"{s} {v:.4f}" for s, v in lin.items())
        )
    runs = res.runs
    have = runs[np.isfinite(runs["min_dev_loss"])]
    L.append(
        f"  runs better than copy-last-frame: {int((have['margin_copy'] > 0).sum())} of {len(have)}; "
        f"better than the linear predictor of their subset: {int((have['margin_linear'] > 0).sum())} of {len(have)}"
    )
    sel = res.selection
    for arch, a in have.groupby("arch"):
        best = a.loc[a["min_dev_loss"].idxmin()]
        same = sel[(sel["arch"] == arch) & (sel["N"] == best["N"]) & (sel["D"] == best["D"])]
        spread = float(same["spread"].iloc[0]) if len(same) and np.isfinite(same["spread"].iloc[0]) else math.nan
        spreads = sel[(sel["arch"] == arch) & np.isfinite(sel["spread"].astype(float))]["spread"]
        spread_any = float(spreads.max()) if len(spreads) else math.nan
        gap = b["copy_last_frame"] - float(best["min_dev_loss"])
        L.append(
            f"  best {arch}: {best['run_id']} dev L1 {best['min_dev_loss']:.4f}: {_pct(best['margin_copy'])} vs copy, "
            f"{_pct(best['margin_linear'])} vs linear; seed spread "
            + (
                f"{spread:.4f} at this size and data"
                if np.isfinite(spread)
                else f"{spread_any:.4f} (largest over sizes with 2+ seeds)"
                if np.isfinite(spread_any)
                else "unknown (one seed)"
            )
        )
        noise = spread if np.isfinite(spread) else spread_any
        if best["margin_copy"] <= 0:
            warns.append(
                f"no {arch} run beats copying the last frame (best {best['min_dev_loss']:.4f} against "
                f"{b['copy_last_frame']:.4f}): its laws describe models that have not learned the task"
            )
        elif np.isfinite(noise) and gap <= 2 * noise:
            warns.append(
                f"the best {arch} beats copy-last-frame by {gap:.4f} ({best['margin_copy']:.1%}), not clearly "
                f"more than its seed spread {noise:.4f}: the range its laws can resolve is within the noise"
            )
        elif not np.isfinite(noise):
            warns.append(
                f"{arch}: one seed only, so the margin over the baselines ({best['margin_copy']:.1%} vs copy) "
                "cannot be compared with seed noise"
            )
        if np.isfinite(best["margin_linear"]) and best["margin_linear"] <= 0:
            warns.append(f"no {arch} run beats the linear predictor over {k} past frames")
    return L, warns


def answer_lines(res: SweepResults) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    rows, notes = answer_table(res.fits, res.runs)
    L = []
    if rows:
        L.append(
            f"  {'compute':>9} {'audio':>8} | {'best':<12} {'N':>7} {'frames':>7} {'epochs':>6} | "
            f"{'dev L1':>7} {'90% band':<17} {'bound by':<8} | where"
        )
        for r in rows:
            where = "inside the study" if r["inside"] else "EXTRAPOLATED: " + "; ".join(r["beyond"])
            if r["unidentified"]:
                where += "; rests on " + ", ".join(r["unidentified"]) + " (not identifiable)"
            ru = r.get("runner_up")
            if ru is not None and not r.get("decided"):
                where += f"; {ru['arch']} within the band ({ru['loss']:.4f}): no clear winner"
            L.append(
                f"  {_si(r['C']):>8}F {r['hours']:>7.3g}h | {r['arch']:<12} {_si(r['N']):>7} "
                f"{_si(r['frames']):>7} {r['epochs']:>6.3g} | {r['loss']:>7.4f} [{r['lo']:.4f}, {r['hi']:.4f}] "
                f"{r['binds']:<8} | {where}"
            )
        L.append(
            "  (N_opt(C) follows the model sizes that lead each architecture's envelope; the loss is the larger "
            "of the frontier L(C) and the converged L(N_opt, D): compute or data binds)"
        )
        if any(r["binds"] == "compute*" for r in rows):
            L.append(
                "  (compute*: from the frontier alone, no L(N, D) law: what compute bought on this corpus; "
                "where the data would limit the loss is not measured)"
            )
    cx = crossover(res.fits, res.runs)
    if "error" not in cx:
        if cx["unidentified"]:
            L.append(
                f"  LSTM-Transformer crossover: not stated; it rests on {', '.join(cx['unidentified'])}, "
                "which the data do not identify"
            )
        elif cx.get("N") is None:
            L.append(
                f"  LSTM-Transformer crossover: none between {_si(cx['trained_N'][0] / 10)} and "
                f"{_si(cx['trained_N'][1] * 100)} parameters at D = {_si(cx['D'])} frames; {cx['better']} is better "
                "throughout"
            )
        else:
            L.append(
                f"  LSTM-Transformer crossover at N = {_si(cx['N'])} (D = {_si(cx['D'])} frames): {cx['below']} "
                f"below, {cx['above']} above" + ("" if cx["inside"] else " (outside the trained sizes: extrapolated)")
            )
    L += [f"  note: {n}" for n in notes]
    return L, rows, ([] if rows else notes[-1:])


def check_lines(res: SweepResults) -> tuple[list[str], list[str]]:
    L, warns = [], []
    for arch, h in res.fits.get("holdout", {}).items():
        for key, what in (("largest_N", "largest model rung"), ("largest_D", "largest subset")):
            c = h.get(key, {})
            if "error" in c:
                L.append(f"  {arch}, {what} held out: {c['error']}")
                continue
            exact = [p for p in c["points"] if p["exact"]]
            inside = [p for p in c["points"] if not p["exact"]]
            line = (
                f"  {arch}, {what} held out ({c['n_held']} points, refit on {c['n_fit']}): "
                + (
                    f"median |error| {c['median_abs_error']:.1%} (max {c['max_abs_error']:.1%}) on {len(exact)} "
                    f"converged points"
                    if exact
                    else "no converged point held out"
                )
                + f"; {c['coverage']:.0%} inside the {c['level']:.0%} prediction band"
            )
            if inside:
                line += f"; {sum(p['inside_interval'] for p in inside)} of {len(inside)} interval points predicted inside them"
            L.append(line)
            if exact and c["median_abs_error"] > 0.03:
                warns.append(
                    f"{arch} L(N, D) misses its held-out {what} by {c['median_abs_error']:.1%} (median): "
                    "its extrapolations are not to be trusted that far"
                )
    for arch, f in res.fits.get("frontier_holdout", {}).items():
        if "error" in f:
            L.append(f"  {arch} frontier without its largest model: {f['error']}")
        else:
            L.append(
                f"  {arch} frontier without its largest model: predicts the envelope {f['horizon']:.3g}x further in "
                f"compute with median |error| {f['median_abs_error']:.1%} (max {f['max_abs_error']:.1%}), "
                f"{f['coverage']:.0%} inside the {f['level']:.0%} band"
            )
    sf = res.fits.get("shared_floor", {})
    if "error" in sf:
        L.append(f"  one irreducible loss for all architectures (Droppo & Elibol): not tested ({sf['error']})")
    elif sf:
        floors = ", ".join(f"{k} {v:.4f}" for k, v in sf["floors"].items())
        L.append(
            f"  one irreducible loss for all architectures (Droppo & Elibol): separate floors {floors}; shared "
            f"{sf['shared_floor']:.4f}; F = {sf['F']:.2f} on {sf['dof'][0]} and {sf['dof'][1]} dof, p = "
            f"{sf['p_value']:.3g}: " + ("rejected" if sf["rejected"] else "not rejected") + f" at {1 - sf['level']:.0%}"
        )
    return L, warns


def law_lines(res: SweepResults) -> tuple[list[str], list[str]]:
    from apcscale.scaling import derived_statements

    L, warns = [], []
    L.append("Compute-efficient frontier  L(C) = L_inf + (C_c / C)^alpha_C  (lower envelope of every curve)")
    for key, fr in res.fits.get("frontier", {}).items():
        if "error" in fr and "alpha" not in fr:
            L.append(f"  {key}: not fitted ({fr['error']})")
            continue
        fit = fr.get("fit")
        bad = [k for k, ok in (fit.identifiable if fit is not None else {}).items() if not ok]
        L.append(
            f"  {key:<12} alpha_C {fr['alpha']:.4f} {_fmt_interval(fr['alpha_interval'])}  "
            f"L_inf {fr['L_inf']:.4f} {_fmt_interval(fr['L_inf_interval'])}  C_c {fr['C_c']:.3g}"
            + (f"  (not identifiable: {', '.join(bad)})" if bad else "")
        )
        if fit is not None:
            lo, hi = fit.diagnostics.get("fit_range", (math.nan, math.nan))
            L.append(
                f"  {'':<12} fitted on C = {_si(lo)} to {_si(hi)} ({math.log10(hi / lo):.1f} decades)" if lo > 0 else ""
            )
            warns += [f"frontier {key}: {w}" for w in fit.warnings]
        if bad:
            L.append(f"  {'':<12} no doubling statement: it would rest on {', '.join(bad)}")
        else:
            try:
                st = derived_statements(fr["alpha"], tuple(fr["alpha_interval"]))
                L.append(f"  {'':<12} {st['doubling']} {st['halving']}")
            except (ValueError, KeyError, TypeError):
                pass
    L.append("")
    L.append("L(N, D) = L_inf + [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D  (Droppo & Elibol), per architecture,")
    L.append("on converged points (exact) and intervals (runs that reached their cap or were stopped)")
    for arch, jf in res.fits.get("joint", {}).items():
        if "fit" not in jf:
            L.append(f"  {arch}: not fitted ({jf.get('error', '')})")
            warns.append(f"{arch}: no L(N, D) law ({jf.get('error', '')})")
            continue
        kinds = ", ".join(f"{v} {k}" for k, v in jf.get("points", {}).items())
        L.append(f"  {arch} ({kinds}):")
        L.append("    " + jf["fit"].summary().replace("\n", "\n    "))
        warns += [f"{arch} L(N, D): {w}" for w in jf["fit"].warnings]
    return L, warns


def points_lines(sel: pd.DataFrame) -> list[str]:
    L = [
        "L(N, D) points (Hestness et al.: median across seeds of each run's converged loss; an interval where a "
        "run did not converge or was stopped)"
    ]
    if sel.empty:
        return L + ["  (none)"]
    L.append(
        f"  {'arch':<12}{'N':>8}  {'subset':<7}{'D frames':>9}{'hours':>8}{'seeds':>6}{'loss':>9}  {'interval':<18} kind"
    )
    for _, r in sel.iterrows():
        iv = "" if r["lo"] >= r["hi"] else f"[{r['lo']:.4f}, {r['hi']:.4f}]"
        L.append(
            f"  {r['arch']:<12}{_si(r['N']):>8}  {r['subset']:<7}{_si(r['D']):>9}{r['hours']:>8.3g}"
            f"{int(r['seeds']):>6}{r['loss']:>9.4f}  {iv:<18} {r['kind']}"
        )
    return L


def pruning_lines(decisions: list[dict], spent: float) -> list[str]:
    stops = [d for d in decisions if d.get("action") == "stop"]
    if not stops:
        return []
    kind = {
        "prune": "stopped",
        "shadow": "would have stopped (shadow mode: nothing was stopped)",
        "asha": "ASHA stopped",
    }
    L = ["Pruning decisions"]
    for d in stops:
        frac = d.get("fraction")
        L.append(
            f"  {kind.get(d.get('mode'), d.get('mode'))} {d['run_id']} at "
            f"{(frac if frac is not None else math.nan):.0%} of its budget: {d.get('reason', '')}"
        )
    by_rule: dict[str, list[float]] = {}
    for d in stops:
        rule = (
            "behind a larger data twin"
            if d.get("twin")
            else "past its best"
            if str(d.get("reason", "")).startswith("past its best")
            else "extrapolated above the frontier"
            if d.get("mode") != "asha"
            else "ASHA"
        )
        by_rule.setdefault(rule, []).append((d.get("planned") or 0) - (d.get("compute") or 0))
    L.append(
        "  by rule: "
        + "; ".join(f"{rule} {len(v)} ({_si(sum(v))}FLOP of their plans not spent)" for rule, v in by_rule.items())
    )
    shadow = [d for d in stops if d.get("mode") == "shadow"]
    if shadow and spent > 0:
        saved = sum((d.get("planned") or 0) - (d.get("compute") or 0) for d in shadow)
        L.append(
            f"  in shadow mode the frontier policy would have saved {_si(saved)}FLOP "
            f"({saved / spent:.0%} of what was spent); --replay tells how far the fit would move"
        )
    L.append(f"  ({len(decisions)} decisions in decisions.jsonl)")
    return L + [""]


def write_report(
    res: SweepResults, plan: Plan, decisions: list[dict], *, wall_seconds: float | None, mode: str | None
) -> str:
    runs = res.runs
    in_plan = runs[runs["in_plan"] | (runs["status"] != "not run")]
    not_run = runs[runs["status"] == "not run"]
    archs = ", ".join(sorted(set(runs["arch"])))
    spent = float(runs["flops"].sum())
    planned = float(in_plan["planned_flops"].sum())

    head = [f"{plan.name}: scaling study of {archs}" + (f" (pruning: {mode})" if mode else "")]
    head.append(
        "runs: " + _run_counts(runs) + (f"; {len(not_run)} of {len(runs)} planned runs NOT RUN" if len(not_run) else "")
    )
    line = (
        f"compute: {_si(spent)}FLOP spent of {_si(planned)}FLOP planned ({spent / planned:.0%})"
        if planned
        else "compute: -"
    )
    if wall_seconds is not None:
        line += f"; wall time {fmt_seconds(wall_seconds)} (plan estimated {fmt_seconds(plan.makespan())})"
    head.append(line)

    base_L, base_w = baseline_lines(res)
    ans_L, rows, ans_w = answer_lines(res)
    chk_L, chk_w = check_lines(res)
    law_L, law_w = law_lines(res)
    headline = base_w + chk_w + [f"cannot answer: {w}" for w in ans_w]
    unident = [w for w in law_w if "not identifiable" in w]
    headline += unident
    res.answer = rows
    res.warnings = headline + [w for w in law_w if w not in unident]

    L = list(head)
    if headline:
        L += [f"! {w}" for w in headline]
    L.append("")
    L.append("Which model for this compute and this much audio, and how good (predicted dev L1 loss)")
    L += ans_L or ["  (no answer: see the notes above)"]
    L.append("")
    L.append("Baselines (on the dev positions the loss uses)")
    L += base_L
    L.append("")
    L.append("Does the law extrapolate? (fitted without the largest runs, predicting them)")
    L += chk_L or ["  (no law to check)"]
    L.append("")
    L += law_L
    L.append("")
    L += points_lines(res.selection)
    L.append("")
    L += pruning_lines(decisions, spent)
    for status, title in (
        ("failed", "Failed runs"),
        ("interrupted", "Interrupted runs (not in the selection or the fits)"),
    ):
        rows = in_plan[in_plan["status"] == status]
        if len(rows):
            L.append(title)
            L += [f"  {r['run_id']}: {r['note']}" for _, r in rows.iterrows()]
            L.append("")
    if len(not_run):
        L.append(f"Not run ({len(not_run)}): " + ", ".join(not_run["run_id"]))
        L.append("")
    other = [w for w in law_w if w not in unident]
    if other:
        L.append("Warnings of the fits (fit.json)")
        L += [f"  ! {w}" for w in other]
        L.append("")
    ran = runs[(runs["status"] == "finished") & np.isfinite(runs["wall_time"])]
    if len(ran):
        overhead = float((plan.to_dict().get("probe") or {}).get("trial_overhead_s", 0.0))
        ratio = float(np.median(ran["wall_time"] / np.maximum(ran["est_seconds"] - overhead, 1e-9)))
        L.append(
            f"time estimates: a finished run trained and evaluated for {ratio:.2f}x the plan's estimate "
            f"(median over {len(ran)} runs; estimates assume a run trains to its cap)"
        )
    L.append(
        "files: points.csv/.parquet (every evaluation), runs.csv (with margins over the baselines), selection.csv "
        "(L(N, D) points), fit.json (laws, checks, answer, warnings)"
        + (f"; figures (PNG and PDF): {', '.join(res.figures)}" if res.figures else "; no figure drawn")
    )
    return "\n".join(L) + "\n"


__all__ = ["write_report"]
