"""Fit scaling laws to a table of runs and write fit.json, summary.txt and plots.

    python -m apcscale.recipes.fit runs.csv
    python -m apcscale.recipes.fit sweep/curves.parquet --group run --c flops --loss dev/loss --out fits/
    python -m apcscale.recipes.fit results.csv --n params --d tokens --loss val_loss --law hoffmann
    python -m apcscale.recipes.fit --demo --out /tmp/demo      # a synthetic sweep, no table needed

The columns present decide what is fitted: a compute column (with a run column
for whole learning curves) gives the compute frontier and L(C); N and D give
the joint L(N, D) and the compute-optimal allocation; N alone gives L(N), D
alone L(D). Column names are found by their usual names (n_params, flops,
dev/loss, run, ...) or given by the flags; `--c none` switches a role off.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m apcscale.recipes.fit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", nargs="?", help="CSV, TSV, Parquet or JSON-lines table of runs")
    parser.add_argument("--n", metavar="COL", help="model-size column (N)")
    parser.add_argument("--d", metavar="COL", help="training-set-size column (D)")
    parser.add_argument("--c", metavar="COL", help="compute column (C, FLOPs)")
    parser.add_argument("--loss", metavar="COL", help="loss column")
    parser.add_argument("--group", metavar="COL", help="run column (rows of one run share it)")
    parser.add_argument("--out", metavar="DIR", help="output directory (default: fit_<table name>/ next to the table)")
    parser.add_argument("--law", choices=("droppo", "hoffmann"), default="droppo", help="form of the joint L(N, D)")
    parser.add_argument("--reduce", choices=("min", "last"), default="min",
                        help="one row per run for L(N, D): its lowest loss (default) or its last row")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap refits (runs resampled; 0: normal approximation)")
    parser.add_argument("--level", type=float, default=0.9, help="interval level (default 0.9)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flops-per-param-frame", type=float, default=6.0, help="k in C = k N D for the compute-optimal table")
    parser.add_argument("--drop-bad", action="store_true", help="drop rows with NaN, infinite or non-positive values (named in the warnings)")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument("--demo", action="store_true", help="fit a synthetic sweep (writes the table too)")
    args = parser.parse_args(argv)

    from apcscale.scaling import FitError, fit_table
    from apcscale.scaling.tables import read_table

    if args.demo:
        from apcscale.scaling.synthetic import synthetic_sweep

        out = Path(args.out or "fit_demo")
        out.mkdir(parents=True, exist_ok=True)
        df = synthetic_sweep()
        table = out / "demo_sweep.csv"
        df.to_csv(table, index=False)
        source = str(table)
    elif args.table:
        source = args.table
        out = Path(args.out) if args.out else Path(args.table).parent / f"fit_{Path(args.table).stem}"
    else:
        parser.error("give a table (or --demo)")
    try:
        if not args.demo:
            df = read_table(args.table)
        columns = {"N": args.n, "D": args.d, "C": args.c, "loss": args.loss, "group": args.group}
        result = fit_table(df, {k: v for k, v in columns.items() if v}, out, law=args.law, reduce=args.reduce,
                           bootstrap=args.bootstrap, level=args.level, seed=args.seed, drop_bad=args.drop_bad,
                           plots=not args.no_plots, flops_per_param_frame=args.flops_per_param_frame, source=source)
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
    body.highlight_regex(r"^(Compute frontier|Joint L|L\([ND]\)|Not fitted|Table warnings)[^\n]*", "bold cyan")
    console.print(Panel(body, title=first, title_align="left", expand=False))


if __name__ == "__main__":
    sys.exit(main())
