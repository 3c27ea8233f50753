"""Frontier pruning against no pruning and against Ray Tune's ASHA, on one grid, in one run.

The grid (`--grid`):

- default: the default study (the shipped sweep_default.yaml) as it designs itself for the
  corpus given (--audio): its subsets, ladders, per-run caps, stopping rule and FLOPs budget;
  on speechocean762 35 runs, 14-17 minutes per mode on 2 cores (docs/sweep.md#benchmark);
  --frames replaces its caps by one number of frames (the stopping rule still acts), --eval-points its evaluations;
- small: 2 architectures x 3 sizes x 2 subsets (d1, d7), 12 runs, about 1 minute per mode.

The plan is run three times on a local Ray:

- off:      nothing stopped (ground truth; the frontier policy runs in the shadow);
- frontier: runs stopped once predicted, with confidence, to stay above the frontier;
- asha:     Ray Tune's AsyncHyperBandScheduler on the same time axis (training FLOPs),
            grace period = the frontier policy's minimum fraction of the cheapest run,
            max_t = the largest run's compute, its default reduction factor 4.

For each: the training compute spent (FLOPs, and wall time), and the frontier
L(C) = L_inf + (C_c/C)^alpha_C fitted to the lower envelope of all its curves;
ratios against the no-pruning sweep of the same invocation. Targets: frontier
pruning spends <= 50% of the no-pruning compute with alpha_C within 10% and
L_inf within 3%; ASHA does worse on that trade. Also: the frontier policy
replayed over the no-pruning sweep's recorded curves (no training), with its
band calibration off (the model band as it is), without its twin rule, and
with one envelope for all runs, and every stop checked against the no-pruning
curves ("wrong stop": a stopped run whose full curve would have gone below the
final envelope of the others); and the hindsight bound: what a policy knowing
every final curve would spend, stopping each run (past the same minimum
fractions as the policy: 25%, 10% for a run with data twins) at the first
evaluation after which it never reaches the envelope.

    python benchmarks/bench_sweep.py                       # the default study on FSDD, 3 modes
    python benchmarks/bench_sweep.py --audio ../shared/data/speechocean762 --modes off frontier   # ~32 minutes
    python benchmarks/bench_sweep.py --grid small          # ~3 minutes
    python benchmarks/bench_sweep.py --audio /path/to/fsdd --output /tmp/bench-sweep
    python benchmarks/bench_sweep.py --grid small --subsets d3 d7 --frames 500000
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apcscale.recipes.catalog import PACKAGED  # noqa: E402
from apcscale.sweep.recipe import SweepRecipe, load_sweep_recipe  # noqa: E402
from apcscale.utils.schema import from_dict, to_dict  # noqa: E402

TARGET_COMPUTE, TARGET_ALPHA, TARGET_LINF = 0.50, 0.10, 0.03


def bench_recipe(args) -> SweepRecipe:
    common = {"name": "bench", "output_dir": str(args.output), "ray": {"max_failures": 1, "num_cpus": args.cpus}}
    if args.grid == "default":  # the default study as a user runs it (its design, budget and stopping rule)
        recipe = to_dict(load_sweep_recipe(PACKAGED / "sweep_default.yaml"))
        recipe["data"]["audio"] = args.audio
        if args.frames:
            recipe["train_budget"] = {"frames": args.frames}
        if args.eval_points:
            recipe["eval"]["points"] = args.eval_points
        return from_dict(SweepRecipe, {**recipe, **common})
    return from_dict(
        SweepRecipe,
        {
            **common,
            "budget": {},
            "data": {
                "audio": args.audio,
                "crop_frames": 128,
                "batch_size": 32,
                "num_workers": 0,
                "eval_crop_frames": 400,
            },
            "grid": {
                "models": {
                    "lstm": [{"width": 8, "depth": 1}, {"width": 24, "depth": 2}, {"width": 80, "depth": 2}],
                    "transformer": [
                        {"width": 8, "depth": 1, "heads": 1},
                        {"width": 24, "depth": 2, "heads": 1},
                        {"width": 64, "depth": 3, "heads": 2},
                    ],
                },
                "subsets": list(args.subsets),
                "seeds": [0],
            },
            "optim": {"lr": 3e-3, "schedule": "wsd", "warmup": 0.05, "decay": 0.2},
            "rules": [{"match": {"arch": "transformer", "min_params": 1e5}, "set": {"optim.lr": 1.5e-3}}],
            "train_budget": {"frames": args.frames or 300_000},
            "eval": {"points": args.eval_points or 20, "first": 0.02},
            "trainer": {"accelerator": "cpu", "precision": "32-true", "log_every_n_steps": 50},
            "resources": {"cpus": 1},
            "pruning": {"policy": "frontier", "min_fraction": 0.25, "level": 0.8},
        },
    )


def wrong_stops(stopped: dict[str, float], truth_points, per_arch: bool) -> list[str]:
    """Stopped runs whose full (no-pruning) curve later went below the final envelope of the others
    (of the same architecture, when each architecture's frontier is measured)."""
    import numpy as np

    from apcscale.sweep.policy import Envelope

    out = []
    for run_id, at in stopped.items():
        others = truth_points[truth_points["run_id"] != run_id]
        if per_arch:
            arch = truth_points.loc[truth_points["run_id"] == run_id, "arch"].iloc[0]
            others = others[others["arch"] == arch]
        env = Envelope(others["flops"].to_numpy(float), others["dev_loss"].to_numpy(float))
        own = truth_points[(truth_points["run_id"] == run_id) & (truth_points["flops"] > at)]
        if len(own) and np.any(own["dev_loss"].to_numpy(float) < env(own["flops"].to_numpy(float))):
            out.append(run_id)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audio", help="FSDD folder (default: $APCSCALE_AUDIO, the cache, ../shared/data/fsdd, download)")
    p.add_argument("--output", type=Path, help="where the three sweeps go (default: a temporary folder)")
    p.add_argument(
        "--grid",
        choices=["default", "small"],
        default="default",
        help="the default study's 40-run grid, or 12 runs (default: default)",
    )
    p.add_argument("--subsets", nargs="+", default=["d1", "d7"], help="small grid: two or more FSDD subsets (d1 d7)")
    p.add_argument("--frames", type=int, default=None, help="training frames of every run (default 300k)")
    p.add_argument("--eval-points", type=int, default=None, help="dev evaluations per run (default 20, log-spaced)")
    p.add_argument("--cpus", type=int, default=None, help="CPUs for the local Ray (default: all)")
    p.add_argument("--modes", nargs="+", default=["off", "frontier", "asha"], choices=["off", "frontier", "asha"])
    args = p.parse_args(argv)
    if args.audio is None:
        shared = ROOT.parent / "shared" / "data" / "fsdd"
        import os

        if not os.environ.get("APCSCALE_AUDIO") and (shared / "recordings").is_dir():
            args.audio = str(shared)
    args.output = args.output or Path(tempfile.mkdtemp(prefix="bench-sweep-"))

    import ray
    from rich.console import Console
    from rich.table import Table

    from apcscale.sweep.display import plan_summary
    from apcscale.sweep.planner import build_plan
    from apcscale.sweep.replay import replay_sweep
    from apcscale.sweep.results import collect, load_tables
    from apcscale.sweep.runner import init_ray, run_sweep
    from apcscale.train.run import resolve_manifest

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    recipe = bench_recipe(args)
    manifest = resolve_manifest(recipe.data, progress=True)
    capacity = init_ray(recipe)
    plan = build_plan(recipe, manifest, capacity=capacity)
    console.print(f"[bold]bench_sweep[/]: {len(plan.runs)} runs x {len(args.modes)} modes, output {args.output}")
    for line in plan_summary(plan):
        console.print("  " + line)

    rows, truth = {}, None
    for mode in args.modes:
        sweep_dir = args.output / f"bench-{mode}"
        if sweep_dir.exists():
            import shutil

            shutil.rmtree(sweep_dir)
        sweep_dir.mkdir(parents=True)
        import yaml

        mode_recipe = from_dict(
            SweepRecipe,
            {**to_dict(recipe), "name": f"bench-{mode}", "pruning": {**to_dict(recipe.pruning), "policy": mode}},
        )
        (sweep_dir / "recipe.yaml").write_text(yaml.safe_dump(to_dict(mode_recipe), sort_keys=False))
        plan.save(sweep_dir / "plan.json")
        console.print(f"\n[bold]{mode}[/]: running {len(plan.runs)} runs ...")
        t0 = time.perf_counter()
        run_sweep(mode_recipe, plan, sweep_dir, pruning=mode, progress=False)
        wall = time.perf_counter() - t0
        res = collect(sweep_dir, wall_seconds=wall, mode=mode)
        fr = res.frontier or {}
        runs = res.runs
        stopped = {
            r: float(f) for r, f, s in zip(runs["run_id"], runs["flops"], runs["status"]) if s in ("pruned", "stopped")
        }
        joint = {
            a: (
                {k: float(v) for k, v in j["fit"].params.items()},
                {k: [float(x) for x in v] for k, v in j["fit"].intervals.items()},
            )
            for a, j in res.fits.get("joint", {}).items()
            if "fit" in j
        }
        frontiers = {
            a: (
                {k: float(v) for k, v in f["fit"].params.items()},
                {k: [float(x) for x in v] for k, v in f["fit"].intervals.items()},
            )
            for a, f in res.fits.get("frontier", {}).items()
            if f.get("fit") is not None
        }
        rows[mode] = {
            "flops": float(runs["flops"].sum()),
            "wall": wall,
            "alpha": fr.get("alpha", math.nan),
            "joint": joint,
            "frontiers": frontiers,
            "L_inf": fr.get("L_inf", math.nan),
            "alpha_interval": fr.get("alpha_interval"),
            "stopped": stopped,
            "failed": int((runs["status"] == "failed").sum()),
            "fit_error": fr.get("error"),
            "by_arch": {
                a: (f.get("alpha", math.nan), f.get("L_inf", math.nan))
                for a, f in res.fits["frontier"].items()
                if a != "all"
            },
        }
        if mode == "off":
            truth = load_tables(sweep_dir)[0]
        console.print(
            f"  {mode}: {rows[mode]['flops']:.3g} FLOPs in {wall:.0f}s; alpha_C {rows[mode]['alpha']:.4f}, "
            f"L_inf {rows[mode]['L_inf']:.4f}; {len(stopped)} stopped"
        )

    ray.shutdown()
    hindsight: dict[str, float] = {}
    if "off" in rows:  # the frontier policy replayed over the no-pruning curves: no training
        replays = {"frontier (replay)": recipe.pruning.policy_config()}
        raw = recipe.pruning.policy_config()
        raw.calibrate = False
        replays["frontier, model band uncalibrated (replay)"] = raw
        no_twins = recipe.pruning.policy_config()
        no_twins.twins = False
        replays["frontier, no twin rule (replay)"] = no_twins
        one = recipe.pruning.policy_config()
        one.envelope = "all" if one.envelope == "arch" else "arch"
        replays[f"frontier, envelope {one.envelope} (replay)"] = one
        for name, cfg in replays.items():
            rp = replay_sweep(args.output / "bench-off", cfg)
            hindsight[name] = rp.hindsight
            rows[name] = {
                "flops": rp.spent,
                "alpha": rp.frontier.get("alpha", math.nan),
                "L_inf": rp.frontier.get("L_inf", math.nan),
                "wall": math.nan,
                "stopped": {r: d["compute"] for r, d in rp.stops.items()},
                "by_arch": {
                    a: (k.get("alpha", math.nan), k.get("L_inf", math.nan)) for a, (_, k) in rp.by_group.items()
                },
            }

    base = rows.get("off")
    table = Table(
        title="bench_sweep: compute spent and fitted frontier, against no pruning (same invocation)",
        title_justify="left",
        header_style="bold",
    )
    for col in (
        "mode",
        "FLOPs",
        "x off",
        "wall",
        "x off",
        "alpha_C",
        "d alpha",
        "L_inf",
        "d L_inf",
        "stopped",
        "wrong stops",
        "targets",
    ):
        table.add_column(col, justify="left" if col in ("mode", "targets") else "right")
    verdict = {}
    for mode, r in rows.items():
        if base is None:
            break
        c_ratio = r["flops"] / base["flops"]
        w_ratio = r["wall"] / base["wall"] if math.isfinite(r["wall"]) else math.nan
        da = (r["alpha"] - base["alpha"]) / base["alpha"] if base["alpha"] else math.nan
        dl = (r["L_inf"] - base["L_inf"]) / base["L_inf"] if base["L_inf"] else math.nan
        per_arch = recipe.pruning.envelope == "arch"
        wrong = wrong_stops(r["stopped"], truth, per_arch) if truth is not None and mode != "off" else []
        ok = (c_ratio <= TARGET_COMPUTE, abs(da) <= TARGET_ALPHA, abs(dl) <= TARGET_LINF)
        verdict[mode] = {
            "compute_ratio": c_ratio,
            "wall_ratio": w_ratio,
            "alpha_change": da,
            "L_inf_change": dl,
            "meets": ok,
            "wrong_stops": wrong,
        }
        marks = (
            ""
            if mode == "off"
            else " ".join(
                f"{name} {'ok' if good else 'MISSED'}" for name, good in zip(("compute", "alpha", "L_inf"), ok)
            )
        )
        table.add_row(
            mode,
            f"{r['flops']:.3g}",
            f"{c_ratio:.2f}",
            f"{r['wall']:.0f}s" if math.isfinite(r["wall"]) else "-",
            f"{w_ratio:.2f}" if math.isfinite(w_ratio) else "-",
            f"{r['alpha']:.4f}",
            f"{da:+.1%}",
            f"{r['L_inf']:.4f}",
            f"{dl:+.2%}",
            str(len(r["stopped"])),
            str(len(wrong)) if mode != "off" else "-",
            marks,
        )
    console.print()
    console.print(table)
    if base is not None and base.get("by_arch"):
        per = Table(
            title="the frontier of each architecture (the study compares them): change against no pruning",
            title_justify="left",
            header_style="bold",
        )
        per.add_column("mode")
        for arch in base["by_arch"]:
            per.add_column(f"{arch} alpha_C", justify="right")
            per.add_column(f"{arch} L_inf", justify="right")
        for mode, r in rows.items():
            cells = [mode]
            for arch, (a0, l0) in base["by_arch"].items():
                a, l = r.get("by_arch", {}).get(arch, (math.nan, math.nan))
                cells += [
                    f"{a:.4f} ({(a - a0) / a0:+.1%})" if math.isfinite(a) else "not fitted",
                    f"{l:.4f} ({(l - l0) / l0:+.1%})" if math.isfinite(l) and l0 else "not fitted",
                ]
                verdict.setdefault(mode, {}).setdefault("by_arch", {})[arch] = {"alpha": a, "L_inf": l}
            per.add_row(*cells)
        console.print(per)
    if base is not None and base.get("joint") is not None:
        inside = Table(
            title="laws of each pruned sweep against the no-pruning sweep's 90% intervals "
            "(issue 11's target: every parameter inside)",
            title_justify="left",
            header_style="bold",
        )
        for col in ("mode", "law", "parameters inside the no-pruning intervals", "outside"):
            inside.add_column(col)
        for mode, r in rows.items():
            if mode == "off" or "joint" not in r:
                continue
            for kind, key in (("L(N, D)", "joint"), ("L(C)", "frontiers")):
                for arch, (ref_params, ref_iv) in base[key].items():
                    got = r[key].get(arch)
                    if got is None:
                        inside.add_row(mode, f"{kind} {arch}", "not fitted", "-")
                        verdict.setdefault(mode, {}).setdefault("laws_inside", {})[f"{kind} {arch}"] = False
                        continue
                    out = [
                        f"{k} {v:.4g} not in [{ref_iv[k][0]:.4g}, {ref_iv[k][1]:.4g}]"
                        for k, v in got[0].items()
                        if k in ref_iv and not (ref_iv[k][0] <= v <= ref_iv[k][1])
                    ]
                    inside.add_row(
                        mode, f"{kind} {arch}", f"{len(got[0]) - len(out)} of {len(got[0])}", "; ".join(out) or "-"
                    )
                    verdict.setdefault(mode, {}).setdefault("laws_inside", {})[f"{kind} {arch}"] = not out
        console.print(inside)
    console.print(
        f"targets: frontier pruning <= {TARGET_COMPUTE:.0%} of the no-pruning compute, |d alpha_C| <= "
        f"{TARGET_ALPHA:.0%}, |d L_inf| <= {TARGET_LINF:.0%}; ASHA worse on that trade"
    )
    for name, h in hindsight.items():
        console.print(
            f"{name}: a policy with hindsight of every final curve (same minimum fractions, same envelope, "
            f"each run stopped once it never again reaches the envelope) "
            f"would spend {h:.0%} of the no-pruning compute"
        )
    if "frontier" in verdict and "asha" in verdict:
        f, a = verdict["frontier"], verdict["asha"]
        fit_ok = lambda v: v["meets"][1] and v["meets"][2]  # noqa: E731
        console.print(
            f"frontier pruning: {f['compute_ratio']:.0%} of the no-pruning compute, frontier fit "
            f"{'within' if fit_ok(f) else 'OUTSIDE'} the tolerances, {len(f['wrong_stops'])} wrong stops; "
            f"compute target {'met' if f['meets'][0] else 'MISSED'}"
        )
        console.print(
            f"ASHA: {a['compute_ratio']:.0%} of the compute, frontier fit {'within' if fit_ok(a) else 'OUTSIDE'} "
            f"the tolerances (alpha_C {a['alpha_change']:+.0%}, L_inf {a['L_inf_change']:+.0%}), "
            f"{len(a['wrong_stops'])} wrong stops"
        )
        if fit_ok(f) and not fit_ok(a):
            trade = "ASHA is worse on the trade: it saves more compute but the frontier it leaves is not the frontier"
        elif fit_ok(f) and fit_ok(a):
            trade = (
                f"both keep the fit; ASHA {'spends less' if a['compute_ratio'] < f['compute_ratio'] else 'spends more'}"
            )
        elif not fit_ok(f) and fit_ok(a):
            trade = "ASHA is better on the trade here"
        else:
            trade = "neither keeps the frontier fit within the tolerances"
        console.print(trade)
    out = args.output / "bench_sweep.json"
    out.write_text(
        json.dumps(
            {
                "rows": rows,
                "verdict": verdict,
                "hindsight": hindsight,
                "plan_runs": len(plan.runs),
                "grid": args.grid,
                "subsets": [str(x) for x in recipe.grid.subsets],
                "frames": recipe.train_budget.frames,
            },
            indent=1,
            default=str,
        )
    )
    console.print(f"figures in {out}; sweeps in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
