"""Fit scaling laws to a table of runs, or to a sweep's results, and write fit.json, summary.txt and plots.

    python -m apcscale.recipes.fit runs.csv
    python -m apcscale.recipes.fit sweep/curves.parquet --group run --c flops --loss dev/loss --out fits/
    python -m apcscale.recipes.fit results.csv --n params --d tokens --loss val_loss --law hoffmann --delta 1e-3
    python -m apcscale.recipes.fit SWEEP_DIR                   # or SWEEP_DIR/results/points.csv: one fit per arch
    python -m apcscale.recipes.fit --demo --out /tmp/demo      # a synthetic sweep, no table needed

The columns present decide what is fitted: a compute column (with a run column
for whole learning curves) gives the compute frontier and L(C); N and D give
the joint L(N, D) and the compute-optimal allocation; N alone gives L(N), D
alone L(D). Column names are found by their usual names (n_params, flops,
dev/loss, run, ...) or given by the flags; `--c none` switches a role off.
Naming a law (`--law hoffmann`) requires its N and D columns.

A sweep's results are recognised by their columns (run_id, arch, N, D, flops,
dev_loss): each architecture is fitted on its own (`--by none` pools them),
the start-of-run evaluations (compute 0) are dropped, L(N, D) uses the runs
that finished, and the compute-optimal table uses the sweep's FLOPs per frame
and data repetition.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _delta(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--delta must be 'auto' or a number > 0, not {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"--delta must be > 0, not {text}")
    return v


def _positive(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {text}")
    return v


def main(argv: list[str] | None = None) -> int:
    from apcscale.utils.log import cli_logging

    cli_logging()
    parser = argparse.ArgumentParser(
        prog="python -m apcscale.recipes.fit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("table", nargs="?", help="CSV, TSV, Parquet or JSON-lines table of runs, or a sweep directory")
    parser.add_argument("--n", metavar="COL", help="model-size column (N)")
    parser.add_argument("--d", metavar="COL", help="training-set-size column (D)")
    parser.add_argument("--c", metavar="COL", help="compute column (C, FLOPs)")
    parser.add_argument("--loss", metavar="COL", help="loss column")
    parser.add_argument("--group", metavar="COL", help="run column (rows of one run share it)")
    parser.add_argument(
        "--by", metavar="COL", help="fit each value of this column on its own (a sweep: arch; 'none': pool)"
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="output directory (default: fit_<table name>/ next to the table, or SWEEP_DIR/fit/)",
    )
    parser.add_argument(
        "--law",
        choices=("droppo", "hoffmann"),
        default=None,
        help="form of the joint L(N, D) (default droppo; naming it requires N and D columns)",
    )
    parser.add_argument(
        "--delta",
        type=_delta,
        default="auto",
        metavar="X",
        help="Huber delta of every fit: a number (1e-3 as Hoffmann et al. and Epoch AI) or 'auto' "
        "(default: 1.345 x the MAD scale of the residuals)",
    )
    parser.add_argument(
        "--reduce",
        choices=("min", "last"),
        default="min",
        help="one row per run for L(N, D): its lowest loss (default) or its last row",
    )
    parser.add_argument(
        "--bootstrap", type=int, default=200, help="bootstrap refits (runs resampled; 0: normal approximation)"
    )
    parser.add_argument("--level", type=float, default=0.9, help="interval level (default 0.9)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--flops-per-param-frame",
        type=_positive,
        default=6.0,
        help="k in C = k N D x passes for the compute-optimal table (default 6; a sweep uses its own counts)",
    )
    parser.add_argument(
        "--passes",
        type=_positive,
        default=None,
        help="passes over the data assumed by the compute-optimal table (default 1; a sweep: its own)",
    )
    parser.add_argument(
        "--d-unit", metavar="UNIT", help="unit of D on the plots (default: from the column name, e.g. tokens)"
    )
    parser.add_argument(
        "--drop-bad",
        action="store_true",
        help="drop rows with NaN, infinite or non-positive values (named in the warnings)",
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--demo", action="store_true", help="fit a synthetic sweep (writes the table too)")
    args = parser.parse_args(argv)

    from apcscale.scaling import FitError, fit_table
    from apcscale.scaling.frontier import TrainingCost
    from apcscale.scaling.report import fit_by
    from apcscale.scaling.sweep_input import find_points, is_sweep_table, read_sweep
    from apcscale.scaling.tables import read_table

    columns = {"N": args.n, "D": args.d, "C": args.c, "loss": args.loss, "group": args.group}
    columns = {k: v for k, v in columns.items() if v}
    options = dict(
        law=args.law,
        reduce=args.reduce,
        bootstrap=args.bootstrap,
        level=args.level,
        seed=args.seed,
        delta=args.delta,
        drop_bad=args.drop_bad,
        plots=not args.no_plots,
    )
    try:
        if args.demo:
            from apcscale.scaling.synthetic import synthetic_sweep

            out = Path(args.out or "fit_demo")
            out.mkdir(parents=True, exist_ok=True)
            df = synthetic_sweep()
            table = out / "demo_sweep.csv"
            df.to_csv(table, index=False)
            source, sweep = str(table), None
        elif args.table:
            source = args.table
            path = Path(args.table)
            points = find_points(path)
            if points is None:
                raise FitError(
                    f"{path}: a directory without results/points.csv; give a table, or write a sweep's "
                    f"tables first (python -m apcscale.recipes.sweep --report {path})"
                )
            df = read_table(points)
            sweep = read_sweep(points, passes=args.passes) if is_sweep_table(df) else None
            if path.is_dir():
                out = Path(args.out) if args.out else path / "fit"
            else:
                out = Path(args.out) if args.out else path.parent / f"fit_{path.stem}"
        else:
            parser.error("give a table, a sweep directory, or --demo")
        cost = TrainingCost(k=args.flops_per_param_frame, passes=args.passes or 1.0)
        if sweep is not None:
            by = None if (args.by or "").lower() == "none" else (args.by or sweep.by)
            common = dict(
                options, exclude_runs=sweep.exclude_runs, baselines=sweep.baselines, data_unit=args.d_unit or "frames"
            )
            cols = {**sweep.columns, **columns}
            if by:
                costs = sweep.costs if by == sweep.by else None
                result = fit_by(
                    sweep.points, by, cols, out, costs=costs, notes=sweep.notes, source=sweep.name or source, **common
                )
            else:
                result = fit_table(
                    sweep.points, cols, out, notes=sweep.notes, source=sweep.name or source, cost=cost, **common
                )
        elif args.by and args.by.lower() != "none":
            result = fit_by(df, args.by, columns, out, source=source, cost=cost, data_unit=args.d_unit, **options)
        else:
            result = fit_table(df, columns, out, cost=cost, data_unit=args.d_unit, source=source, **options)
    except FitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print(result["summary"])
    print(f"\nwrote {', '.join(result.get('files', []))}")
    return 0


def _print(text: str) -> None:
    try:
        from rich.console import Console
        from rich.panel import Panel
        from rich.text import Text
    except ImportError:  # pragma: no cover - rich is a dependency, but stay usable without it
        print(text)
        return
    console = Console(width=None if sys.stdout.isatty() else 110)
    first, _, rest = text.partition("\n")
    body = Text(rest)
    body.highlight_regex(r"NOT IDENTIFIABLE|! .*", "bold red")
    body.highlight_regex(r"(Doubling|Halving) [^\n]*", "bold green")
    body.highlight_regex(
        r"^(Compute frontier|Joint L|L\([ND]\)|Not fitted|Table warnings|apcscale fit)[^\n]*", "bold cyan"
    )
    console.print(Panel(body, title=first, title_align="left", expand=False))


if __name__ == "__main__":
    sys.exit(main())
