"""Run a scaling sweep from a recipe: plan, train on Ray Tune with frontier pruning, fit, report.

    python -m apcscale.recipes.sweep                          # the default: FSDD, LSTM + Transformer, a few CPU minutes
    python -m apcscale.recipes.sweep --list                   # the sweep recipes (shipped, and yours)
    python -m apcscale.recipes.sweep sweep_librispeech_gpu --dry-run     # print the plan only
    python -m apcscale.recipes.sweep RECIPE --pruning off     # ground truth (the policy runs in the shadow)
    python -m apcscale.recipes.sweep RECIPE --resume          # continue an interrupted sweep
    python -m apcscale.recipes.sweep RECIPE --address auto    # on an existing Ray cluster
    python -m apcscale.recipes.sweep --replay sweeps/fsdd-default --set pruning.min_fraction=0.3
    python -m apcscale.recipes.sweep --report sweeps/fsdd-default        # rebuild tables, fits, plots, report

The recipe is validated, the data prepared if needed and the plan printed
before any trial starts; every mistake in a recipe fails there with the field
that is wrong. Results go to <output_dir>/<name>/ (see apcscale.sweep.runner).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import yaml
from rich.markup import escape

from apcscale.recipes.train import find_recipe, list_recipes
from apcscale.utils.schema import RecipeError, apply_override, from_dict, to_dict

DEFAULT = "sweep_default.yaml"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m apcscale.recipes.sweep",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("recipe", nargs="?", help=f"recipe file, or a name from --list (default {DEFAULT})")
    p.add_argument("--list", action="store_true", help="list the sweep recipes and exit")
    p.add_argument("--dry-run", action="store_true", help="validate, prepare the data, print the plan, and stop")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a recipe field, e.g. --set budget.cpu_hours=0.1 (repeatable)",
    )
    p.add_argument("--pruning", choices=("frontier", "off", "asha"), help="override pruning.policy")
    p.add_argument("--audio", help="folder of audio to prepare and use (overrides data.audio)")
    p.add_argument("--manifest", help="a prepared manifest.json (overrides data.manifest)")
    p.add_argument("--output", help="output directory (overrides output_dir); the sweep goes to OUTPUT/<name>")
    p.add_argument(
        "--address", help="an existing Ray cluster ('auto' on one of its nodes, or 'head:6379'); default: a local Ray"
    )
    p.add_argument("--resume", action="store_true", help="continue the interrupted sweep in the output directory")
    p.add_argument("--overwrite", action="store_true", help="replace a previous sweep of the same name")
    p.add_argument("--no-probe", action="store_true", help="estimate times from FLOPs instead of a throughput probe")
    p.add_argument("--no-progress", action="store_true", help="one line per event instead of the live table")
    p.add_argument("--report", metavar="SWEEP_DIR", help="rebuild the results of a sweep directory and exit")
    p.add_argument(
        "--replay",
        metavar="SWEEP_DIR",
        help="replay the recipe's pruning policy over a finished sweep's curves and exit",
    )
    p.add_argument(
        "--timeline",
        choices=("recorded", "complete"),
        default="recorded",
        help="--replay: feed evaluations in their recorded order, or with every other run complete",
    )
    return p


def _overrides(args) -> list[str]:
    out = list(args.overrides)
    if args.audio:
        out += [f"data.audio={args.audio}", "data.manifest=null"]
    if args.manifest:
        out += [f"data.manifest={args.manifest}", "data.audio=null"]
    if args.output:
        out.append(f"output_dir={args.output}")
    if args.pruning:
        out.append(f"pruning.policy='{args.pruning}'")
    if args.address:
        out.append(f"ray.address='{args.address}'")
    return out


def main(argv: list[str] | None = None) -> int:
    from apcscale.utils.log import cli_logging

    cli_logging()
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.list:
        list_recipes("sweep_", width=28)
        return 0

    from rich.console import Console

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    try:
        if args.report:
            return _report_only(console, Path(args.report))
        if args.replay:
            return _replay(console, Path(args.replay), args)
        return _run(console, args)
    except RecipeError as exc:
        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C before the sweep's trials started (reading, preparing, planning) or after they ended
        console.print(f"[yellow]interrupted[/]: {escape(_interrupted_hint(args))}", soft_wrap=True)
        return 130
    except Exception as exc:
        from apcscale.data.errors import DataError  # (not apcscale.data: that imports torch)
        from apcscale.sweep.lock import SweepLockError
        from apcscale.sweep.runner import ClusterConnectionError, SweepStateError

        if isinstance(exc, (SweepStateError, ClusterConnectionError, DataError, SweepLockError)):
            console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
            return 2
        raise


def _interrupted_hint(args) -> str:
    """What to do after a Ctrl-C outside the training (the shards prepared so far are kept)."""
    command = "python -m apcscale.recipes.sweep " + " ".join(a for a in (args.recipe or "",) if a)
    sweep_dir = getattr(args, "sweep_dir", None)  # known once the recipe was read (_run)
    planned = sweep_dir is not None and (sweep_dir / "plan.json").is_file()
    started = sweep_dir is not None and (sweep_dir / "tune").is_dir()
    out = f" --output {args.output}" if args.output else ""
    if started:
        return f"continue with  {command} --resume{out}"
    import shlex

    same = "python -m apcscale.recipes.sweep " + shlex.join(a for a in args.argv if a != "--overwrite")
    if planned:
        return f"nothing was trained; start it again with  {same} --overwrite  (data already prepared is reused)"
    return f"nothing was trained; run the same command again (data already prepared is reused):  {same}"


def _load(args, console):
    from apcscale.sweep.recipe import load_sweep_recipe

    path = find_recipe(args.recipe or DEFAULT, prefix="sweep_")
    recipe = load_sweep_recipe(path, _overrides(args))
    if recipe.name is None:  # named after the corpus: <corpus>-<recipe>
        from apcscale.sweep.design import study_name

        recipe.name = study_name(recipe.data, path)
    return path, recipe


def _run(console, args) -> int:
    from apcscale.sweep.lock import SweepLock

    started = time.time()
    path, recipe = _load(args, console)
    sweep_dir = args.sweep_dir = recipe.sweep_dir.resolve()
    if args.resume and args.overwrite:
        raise RecipeError("", "--resume continues the sweep and --overwrite deletes it: give one of them")
    if args.dry_run:
        return _plan(console, args, path, recipe, sweep_dir, started)
    # before anything is read, prepared, deleted or written: a live driver of this sweep fails us here
    with SweepLock(sweep_dir).acquire(command=" ".join(sys.argv)) as lock:
        if lock.stale_message():
            console.print(f"[yellow]{escape(lock.stale_message())}[/]", soft_wrap=True)
        if args.resume:
            return _resume(console, args, sweep_dir, started)
        return _plan(console, args, path, recipe, sweep_dir, started)


def _resume(console, args, sweep_dir: Path, started: float) -> int:
    from apcscale.sweep.plan import Plan
    from apcscale.sweep.recipe import SweepRecipe
    from apcscale.sweep.runner import SweepStateError

    saved = sweep_dir / "recipe.yaml"
    if not (sweep_dir / "plan.json").is_file() or not saved.is_file():
        raise SweepStateError(f"nothing to resume in {sweep_dir} (no plan.json); start it without --resume")
    data = yaml.safe_load(saved.read_text())
    for item in args.overrides:  # only settings that do not change the plan may differ on resume
        key = item.split("=", 1)[0]
        if not key.startswith(("ray.", "output_dir")):
            raise RecipeError(key, "cannot change the recipe of a sweep being resumed (only ray.* settings)")
        apply_override(data, item)
    ran_with = (data.get("pruning") or {}).get("policy", "frontier")
    ran_with = {True: "frontier", False: "off"}.get(ran_with, ran_with)
    if args.pruning and args.pruning != ran_with:
        raise RecipeError(
            "pruning.policy",
            f"the sweep ran with pruning {ran_with!r}; --resume continues it so "
            "(its scheduler is restored with the sweep's Tune state); start a new "
            f"sweep (another --output or name) for --pruning {args.pruning}",
        )
    for flag, value in (("--audio", args.audio), ("--manifest", args.manifest)):
        if value:
            raise RecipeError(
                "data", f"the sweep's data are fixed by its plan ({sweep_dir / 'plan.json'}): --resume takes no {flag}"
            )
    if args.address:
        data.setdefault("ray", {})["address"] = args.address
    recipe = from_dict(SweepRecipe, data)
    plan = Plan.load(sweep_dir / "plan.json")
    console.print(f"[bold]resuming sweep {recipe.name}[/] in {sweep_dir}")
    return _execute(console, recipe, plan, sweep_dir, resume=True, args=args, started=started)


def _plan(console, args, path, recipe, sweep_dir: Path, started: float) -> int:
    if sweep_dir.exists() and any(sweep_dir.iterdir()) and not args.dry_run:
        if not args.overwrite:
            raise RecipeError(
                "output_dir",
                f"{sweep_dir} already holds a sweep; --resume continues it, "
                "--overwrite replaces it, or choose another --output / name",
            )
    from apcscale.sweep.display import plan_summary, plan_table
    from apcscale.sweep.planner import build_plan
    from apcscale.train.run import resolve_manifest

    console.print(
        f"[bold]sweep {recipe.name}[/] from {path}" + (f": {recipe.description}" if recipe.description else "")
    )
    manifest = resolve_manifest(recipe.data, progress=True)
    capacity = None
    if recipe.ray.address:
        from apcscale.sweep.runner import init_ray

        capacity = init_ray(recipe, recipe.ray.address)
        console.print(
            f"on the Ray cluster at {recipe.ray.address}: {capacity['cpus']:g} CPUs, {capacity['gpus']:g} GPUs"
            + (" (Ray token authentication on)" if os.environ.get("RAY_AUTH_MODE") == "token" else "")
        )
    t0 = time.perf_counter()
    with console.status("planning: counting parameters and FLOPs, probing throughput..."):
        plan = build_plan(recipe, manifest, probe=not args.no_probe, capacity=capacity)
    console.print(plan_table(plan))
    for line in plan_summary(plan):
        console.print("  " + line)
    console.print(f"  planned in {time.perf_counter() - t0:.1f}s")
    if args.dry_run:
        return 0
    if sweep_dir.exists() and args.overwrite:
        import shutil

        shutil.rmtree(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / "recipe.yaml").write_text(yaml.safe_dump(to_dict(recipe), sort_keys=False))
    plan.save(sweep_dir / "plan.json")
    return _execute(console, recipe, plan, sweep_dir, resume=False, args=args, started=started)


def _execute(console, recipe, plan, sweep_dir: Path, *, resume: bool, args, started: float) -> int:
    from apcscale.sweep.results import collect
    from apcscale.sweep.runner import run_sweep

    t0 = time.perf_counter()
    outcome = run_sweep(
        recipe, plan, sweep_dir, resume=resume, address=recipe.ray.address, progress=False if args.no_progress else None
    )
    wall = time.perf_counter() - t0
    with console.status("fitting the scaling laws and drawing the plots..."):
        res = collect(sweep_dir, wall_seconds=wall, mode=recipe.pruning.policy)
    console.print(res.report, soft_wrap=True, markup=False)
    console.print(
        f"results in {sweep_dir / 'results'} (report.txt, points.csv, runs.csv, fit.json; figures: curves, "
        "compute, isoflop, law_nd as .png and .pdf)"
    )
    console.print(f"total {time.time() - started:.0f}s")
    if outcome.interrupted:
        console.print(
            "[yellow]interrupted[/]: continue with  python -m apcscale.recipes.sweep "
            + escape(f"{args.recipe or ''} --resume" + (f" --output {args.output}" if args.output else "")),
            soft_wrap=True,
        )
        return 130
    crashed = _crashed_runs(sweep_dir, plan)
    if crashed:  # a diverged run is a result; a run that crashed past its retries is an error
        console.print(
            f"[bold red]{len(crashed)} run(s) failed with an error[/] (not in the selection or the fits): "
            + escape("; ".join(f"{r}: {e}" for r, e in crashed)),
            soft_wrap=True,
        )
        return 1
    return 0


def _crashed_runs(sweep_dir: Path, plan) -> list[tuple[str, str]]:
    """(run id, error) of the runs that failed for an error other than a diverging loss."""
    from apcscale.train.rundir import RunDir

    out = []
    for r in [*plan.runs, *plan.backlog]:
        summary = RunDir(sweep_dir / "runs" / r.run_id).read_summary() or {}
        if summary.get("status") == "failed" and summary.get("end") != "diverged":
            out.append((r.run_id, str(summary.get("error") or "")[:200]))
    return out


def _report_only(console, sweep_dir: Path) -> int:
    from apcscale.sweep.results import collect

    if not (sweep_dir / "plan.json").is_file():
        from apcscale.sweep.runner import SweepStateError

        raise SweepStateError(f"{sweep_dir} is not a sweep directory (no plan.json)")
    res = collect(sweep_dir)
    console.print(res.report, soft_wrap=True, markup=False)
    return 0


def _replay(console, sweep_dir: Path, args) -> int:
    from apcscale.sweep.recipe import SweepRecipe
    from apcscale.sweep.replay import replay_sweep

    saved = sweep_dir / "recipe.yaml"
    if not saved.is_file():
        from apcscale.sweep.runner import SweepStateError

        raise SweepStateError(f"{sweep_dir} is not a sweep directory (no recipe.yaml)")
    data = yaml.safe_load(saved.read_text())
    for item in args.overrides:
        apply_override(data, item)
    recipe = from_dict(SweepRecipe, data)
    with console.status("replaying the policy over the recorded curves..."):
        result = replay_sweep(sweep_dir, recipe.pruning.policy_config(), timeline=args.timeline)
    console.print(result.summary(), soft_wrap=True, markup=False)
    out = sweep_dir / "results" / f"replay-{args.timeline}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    import json

    out.write_text(json.dumps(result.to_dict(), indent=1, default=str))
    console.print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
