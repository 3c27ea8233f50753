"""Linear probes of frozen encoders: digit, speaker, gender and age-group accuracy on held-out data.

    python -m apcscale.recipes.probe SWEEP_DIR                         # apcscale probe SWEEP_DIR
    python -m apcscale.recipes.probe SWEEP_DIR --task digit,speaker --layer 1
    python -m apcscale.recipes.probe --model EXPORT --audio DIR --task digit

A sweep: the best run (lowest minimum dev loss) of each (architecture, N) is probed on the sweep's
own corpus (or --audio), beside the same probe on the normalised log-Mel input and the majority
class; the table is printed and written to SWEEP_DIR/results/probe.csv with the figure probe.png
(accuracy against N and against the pretraining dev loss). An export (--model): the same table for
that encoder, written to --out if given.

Tasks (--task, comma-separated; default: every task the corpus has labels for): digit (FSDD file
names; held-out speakers), speaker (held-out utterances of the training speakers), gender and age
(age group; speakers.json beside the audio, as speechocean762; held-out speakers). The probe is
softmax regression with L2 on mean-pooled features, 5-fold cross-validated: docs/encoders.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from apcscale.utils.log import cli_logging

    cli_logging()
    parser = argparse.ArgumentParser(
        prog="python -m apcscale.recipes.probe",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("sweep_dir", nargs="?", help="a finished (or interrupted) sweep's directory")
    parser.add_argument("--model", metavar="EXPORT", help="probe one encoder export instead of a sweep")
    parser.add_argument("--audio", help="the corpus to probe on (default for a sweep: the audio it was prepared from)")
    parser.add_argument(
        "--task",
        action="append",
        metavar="TASKS",
        help="digit, speaker, gender, age (comma-separated or repeated; default: all with labels)",
    )
    parser.add_argument(
        "--layer",
        type=int,
        default=-1,
        help="0: the input projection, 1..depth: a context layer, -1: the last (default)",
    )
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="salt of the hashed fold assignment")
    parser.add_argument("--out", help="where probe.csv (and for a sweep probe.png) go; default SWEEP_DIR/results")
    parser.add_argument("--no-plot", action="store_true", help="no figure")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for the encoders (default 1: fastest for small models; 0: torch's default)",
    )
    args = parser.parse_args(argv)

    from apcscale.data.errors import DataError
    from apcscale.downstream.labels import ProbeError, parse_tasks
    from apcscale.downstream.probe import format_table, probe_encoders, probe_sweep
    from apcscale.models.export import ExportError, load_encoder

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        if args.folds < 2:
            raise ProbeError(f"--folds {args.folds}: at least 2")
        tasks = parse_tasks(args.task)
        if args.model and args.sweep_dir:
            raise ProbeError("give a sweep directory or --model EXPORT, not both")
        if args.model:
            if not args.audio:
                raise ProbeError("--model needs --audio: the corpus to probe on")
            if not Path(args.audio).expanduser().exists():
                raise ProbeError(f"--audio {args.audio}: no such file or folder")
            encoder = load_encoder(args.model)
            encoder.layer_index(args.layer)
            prov = encoder.config.get("provenance", {})
            model = {
                "model": prov.get("run_id") or Path(args.model).name,
                "encoder": encoder,
                "arch": encoder.net.cfg.arch,
                "N": encoder.config.get("N"),
                "subset": prov.get("subset"),
                "dev_loss": prov.get("min_dev_loss"),
            }
            table = probe_encoders(
                [model],
                args.audio,
                tasks,
                layer=args.layer,
                n_folds=args.folds,
                seed=args.seed,
                threads=args.threads or None,
                log=log,
            )
            files = []
            if args.out:
                out = Path(args.out)
                out.mkdir(parents=True, exist_ok=True)
                table.to_csv(out / "probe.csv", index=False)
                files = [out / "probe.csv"]
        elif args.sweep_dir:
            table, files = probe_sweep(
                args.sweep_dir,
                tasks,
                audio=args.audio,
                layer=args.layer,
                n_folds=args.folds,
                seed=args.seed,
                plot=not args.no_plot,
                out=args.out,
                threads=args.threads or None,
                log=log,
            )
        else:
            raise ProbeError("give a sweep directory, or --model EXPORT --audio DIR")
    except (ProbeError, ExportError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(table))
    print(
        "accuracy: pooled over the folds; majority: always answering the commonest label; held out: speakers "
        "(whole speakers unseen in training) or utterances (of the training speakers)"
    )
    if files:
        print(f"wrote {', '.join(str(f) for f in files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
