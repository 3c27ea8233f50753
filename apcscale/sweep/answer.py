"""The question a study answers: given this much compute and this much audio, which model should I
train, and how good will it be?

For a compute budget C and an amount of training data D, and for each architecture with a frontier:

- the compute frontier L(C) of that architecture says how low the loss can get with C (enough
  data), and which model size leads the envelope there: N_opt(C), a line in log-log fitted to the
  sizes of the runs on the envelope (at their share of it), extrapolated along that line;
- the converged law L(N, D) says how low a model of N_opt parameters can get on D frames of data;
- the prediction is the larger of the two (neither compute nor data can be beaten), with the band
  of the law that binds; the architecture with the lower prediction is the answer.

An architecture without an L(N, D) law (its runs did not converge) is answered from its frontier
alone, for the corpus it was traced on (D = the corpus), bound by compute ("compute*": the data limit
is not measured, so beyond the study's compute the row is a lower bound at best).

A row is "inside" when C lies in the frontier fit's range and N_opt and D in the data's, else an
extrapolation (with how far). A prediction that leans on a parameter that is not identifiable (or
sits at a bound) says so and names it instead of a conclusion.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

FRAMES_PER_HOUR = 360_000.0


def n_opt_line(frontier_entry: dict[str, Any], sizes: dict[str, float]) -> tuple[float, float] | None:
    """(slope, intercept) of log10 N_opt against log10 C from the envelope's segments (None: < 2 sizes)."""
    fr = frontier_entry.get("frontier")
    if fr is None:
        return None
    xs, ns, ws = [], [], []
    for seg in fr.segments:
        n = sizes.get(seg.run_id)
        if n is None or not (seg.C_end > 0 and seg.C_start > 0):
            continue
        xs.append(0.5 * (math.log10(seg.C_start) + math.log10(seg.C_end)))
        ns.append(math.log10(n))
        ws.append(max(math.log10(seg.C_end / seg.C_start), 0.05))
    if len(set(ns)) < 2:
        return None
    slope, intercept = np.polyfit(xs, ns, 1, w=np.sqrt(ws))
    return float(slope), float(intercept)


def _unidentified(fit) -> list[str]:
    return [k for k, ok in (fit.identifiable or {}).items() if not ok]


def answer_table(
    fits: dict[str, Any], runs: pd.DataFrame, *, level: float = 0.9
) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows (compute x data, inside the study and up to 10x beyond) and notes."""
    notes: list[str] = []
    sizes = dict(zip(runs["run_id"], runs["N"].astype(float)))
    archs = []
    for arch, fr in fits.get("frontier", {}).items():
        if arch == "all":
            continue
        jf = fits.get("joint", {}).get(arch, {})
        if "fit" not in fr or fr.get("fit") is None:
            notes.append(f"{arch}: no compute frontier fitted ({fr.get('error', 'too few runs')})")
            continue
        if "fit" not in jf:
            notes.append(
                f"{arch}: no L(N, D) fitted ({jf.get('error', 'too few points')}); its rows come from the "
                "frontier alone, on this corpus only: where the corpus would limit the loss is not measured"
            )
            jf = {}
        line = n_opt_line(fr, sizes)
        if line is None:
            notes.append(f"{arch}: a single model size leads its envelope: no N_opt(C) to follow")
            continue
        archs.append((arch, fr, jf, line))
    if not archs:
        return [], notes + [
            "no architecture has a compute frontier with two model sizes on it: the study cannot answer"
        ]
    lows = [fr["fit"].diagnostics.get("fit_range", (math.inf, 0))[0] for _, fr, _, _ in archs]
    highs = [fr["fit"].diagnostics.get("fit_range", (0, 0))[1] for _, fr, _, _ in archs]
    # the smallest budget where every frontier compared is fitted (when their ranges overlap)
    lo_c, hi_c = max(lows), max(highs)
    if not lo_c < hi_c:
        lo_c = min(lows)
    d_max = float(runs["D"].max())
    d_min = float(runs["D"].min())
    budgets = [lo_c, math.sqrt(lo_c * hi_c), hi_c, 10 * hi_c]
    datas = [d_max, 10 * d_max]
    rows = []
    for D in datas:
        for C in budgets:
            cands = []
            for arch, fr, jf, (slope, icpt) in archs:
                ffit, jfit = fr["fit"], jf.get("fit")
                if jfit is None and D > d_max * 1.0001:
                    continue  # more data than the corpus: only L(N, D) could say
                n_opt = 10 ** (icpt + slope * math.log10(C))
                a_runs = runs[runs["arch"] == arch]
                per_n = a_runs.groupby("N")
                fpf = (per_n["planned_flops"].first() / per_n["planned_frames"].first()).sort_index()
                n_lo, n_hi = float(a_runs["N"].min()), float(a_runs["N"].max())
                lc = float(ffit.predict(C))
                lc_lo, lc_hi = (float(v) for v in ffit.predict_interval(C, level=level))
                if jfit is not None:
                    lnd = float(jfit.predict(n_opt, D))
                    lnd_lo, lnd_hi = (float(v) for v in jfit.predict_interval(n_opt, D, level=level))
                    binds = "data" if lnd > lc else "compute"
                else:  # the frontier of runs on this corpus: what compute bought here; the data limit unknown
                    lnd = lnd_lo = lnd_hi = math.nan
                    binds = "compute*"
                loss, lo, hi = (lnd, lnd_lo, lnd_hi) if binds == "data" else (lc, lc_lo, lc_hi)
                f_range = ffit.diagnostics.get("fit_range", (C, C))
                beyond = []
                if C > f_range[1] * 1.0001:
                    beyond.append(f"C {C / f_range[1]:.3g}x the frontier's data")
                if C < f_range[0] / 1.0001:
                    beyond.append(f"C below the frontier's data ({f_range[0] / C:.3g}x)")
                if n_opt > n_hi * 1.0001:
                    beyond.append(f"N {n_opt / n_hi:.3g}x the largest trained")
                if n_opt < n_lo / 1.0001:
                    beyond.append("N below the smallest trained")
                if D > d_max * 1.0001:
                    beyond.append(f"D {D / d_max:.3g}x the corpus")
                if jfit is None and C > f_range[1] * 1.0001:
                    beyond.append("the corpus may limit the loss there (no L(N, D) to say)")
                shaky = (
                    [f"{arch} L(N, D) {p}" for p in _unidentified(jfit)]
                    if binds == "data"
                    else [f"{arch} L(C) {p}" for p in _unidentified(ffit)]
                )
                frames = (
                    C / float(np.interp(math.log10(n_opt), np.log10(fpf.index.to_numpy(float)), fpf.to_numpy(float)))
                    if len(fpf)
                    else math.nan
                )
                row = {
                    "C": C,
                    "D": D,
                    "hours": D / FRAMES_PER_HOUR,
                    "arch": arch,
                    "N": n_opt,
                    "loss": loss,
                    "lo": lo,
                    "hi": hi,
                    "binds": binds,
                    "inside": not beyond,
                    "beyond": beyond,
                    "unidentified": shaky,
                    "frames": frames,
                    "epochs": frames / D if D > 0 else math.nan,
                }
                cands.append(row)
            if not cands:
                continue
            cands.sort(key=lambda r: r["loss"])
            best = cands[0]
            if len(cands) > 1:
                ru = cands[1]
                best["runner_up"] = {
                    "arch": ru["arch"],
                    "N": ru["N"],
                    "loss": ru["loss"],
                    "lo": ru["lo"],
                    "hi": ru["hi"],
                }
                best["decided"] = bool(best["hi"] < ru["lo"])
            rows.append(best)
    if d_max / d_min < 10:
        notes.append(f"D spans only {d_max / d_min:.3g}x: the data axis of L(N, D) is barely constrained")
    return rows, notes


def crossover(fits: dict[str, Any], runs: pd.DataFrame, a: str = "lstm", b: str = "transformer") -> dict[str, Any]:
    """The N where L_a(N, D_max) = L_b(N, D_max), if the two laws cross between N_min / 10 and 100 N_max."""
    fa, fb = (fits.get("joint", {}).get(x, {}).get("fit") for x in (a, b))
    if fa is None or fb is None:
        return {"error": f"needs the L(N, D) laws of {a} and {b}"}
    shaky = [f"{a} {p}" for p in _unidentified(fa)] + [f"{b} {p}" for p in _unidentified(fb)]
    d_max = float(runs["D"].max())
    grid = np.geomspace(float(runs["N"].min()) / 10, float(runs["N"].max()) * 100, 400)
    diff = np.log(fa.predict(grid, np.full_like(grid, d_max))) - np.log(fb.predict(grid, np.full_like(grid, d_max)))
    cross = np.flatnonzero(np.sign(diff[:-1]) != np.sign(diff[1:]))
    out: dict[str, Any] = {
        "D": d_max,
        "unidentified": shaky,
        "trained_N": [float(runs["N"].min()), float(runs["N"].max())],
    }
    if cross.size == 0:
        out["N"] = None
        out["better"] = a if diff[-1] < 0 else b
        return out
    i = int(cross[0])
    t = diff[i] / (diff[i] - diff[i + 1])
    n = float(np.exp(np.log(grid[i]) + t * (np.log(grid[i + 1]) - np.log(grid[i]))))
    out.update(
        N=n,
        below=a if diff[i] < 0 else b,
        above=b if diff[i] < 0 else a,
        inside=bool(float(runs["N"].min()) <= n <= float(runs["N"].max())),
    )
    return out


__all__ = ["answer_table", "crossover", "n_opt_line"]
