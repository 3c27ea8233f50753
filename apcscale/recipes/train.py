"""Train one APC model from a recipe file.

    python -m apcscale.recipes.train train_lstm_fsdd                  # a shipped recipe, by name
    python -m apcscale.recipes.train my_recipe.yaml --set model.width=128 --set budget.frames=500000
    python -m apcscale.recipes.train --list

The recipe is validated before any work starts. With no recipe, the default
(train_lstm_fsdd) runs on FSDD (downloaded once, or --audio DIR /
APCSCALE_AUDIO for local audio).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from apcscale.recipes.catalog import PACKAGED, list_recipes  # noqa: F401 - list_recipes is used by sweep.py too
from apcscale.recipes.catalog import find_recipe as _find_recipe
from apcscale.utils.schema import RecipeError

RECIPES_DIR = PACKAGED  # the shipped recipes; names are also looked up in the user's folders (catalog.py)
DEFAULT = "train_lstm_fsdd.yaml"


def find_recipe(name: str | None, prefix: str = "train_") -> Path:
    """A recipe by path, or by name ("train_lstm_fsdd" or "train_lstm_fsdd.yaml"): see apcscale.recipes.catalog."""
    return _find_recipe(name or DEFAULT, prefix)


def main(argv: list[str] | None = None) -> int:
    from apcscale.utils.log import cli_logging

    cli_logging()
    parser = argparse.ArgumentParser(
        prog="python -m apcscale.recipes.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipe", nargs="?", help=f"recipe file, or a name from --list (default {DEFAULT})")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a recipe field, e.g. --set optim.lr=1e-3 (repeatable)",
    )
    parser.add_argument("--audio", help="folder of audio to prepare and train on (overrides data.audio)")
    parser.add_argument("--manifest", help="a prepared manifest.json (overrides data.manifest)")
    parser.add_argument("--output", help="output directory (overrides output_dir)")
    parser.add_argument("--resume", action="store_true", help="continue the run from its last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="start over if the run directory exists")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--list", action="store_true", help="list the training recipes and exit")
    args = parser.parse_args(argv)

    if args.list:
        list_recipes("train_")
        return 0

    from apcscale.data import DataError
    from apcscale.models.apc import NonFiniteLossError
    from apcscale.train.config import load_train_recipe
    from apcscale.train.run import RunDirError, run_training
    from apcscale.train.rundir import RunDir

    overrides = list(args.overrides)
    if args.audio:
        overrides += [f"data.audio={args.audio}", "data.manifest=null"]
    if args.manifest:
        overrides += [f"data.manifest={args.manifest}", "data.audio=null"]
    if args.output:
        overrides.append(f"output_dir={args.output}")
    run_dir = None
    try:
        recipe = load_train_recipe(find_recipe(args.recipe), overrides)
        run_dir = RunDir(Path(recipe.output_dir) / recipe.name)
        result = run_training(recipe, progress=not args.no_progress, resume=args.resume, overwrite=args.overwrite)
    except (RecipeError, RunDirError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NonFiniteLossError as exc:
        print(f"error: {exc}; recorded failed in {run_dir.summary_path}", file=sys.stderr)
        return 1
    except DataError as exc:
        print(f"error: {exc}" + _recorded(run_dir, fix="re-prepare the data"), file=sys.stderr)
        return 2
    except (
        KeyboardInterrupt,
        SystemExit,
    ) as exc:  # Lightning turns Ctrl-C into SystemExit(1), SIGTERM into a SystemExit
        sigterm = type(exc).__name__ == "SIGTERMException"
        print(
            f"interrupted by {'SIGTERM' if sigterm else 'Ctrl-C'}"
            + (_recorded(run_dir) or "; nothing was trained yet"),
            file=sys.stderr,
        )
        return 143 if sigterm else 130
    except Exception as exc:  # a crash the run recorded (interrupted): one line here, the traceback in the run
        if run_dir is None or run_dir.status != "interrupted":
            raise
        import traceback

        path = run_dir.write_traceback(traceback.format_exc())
        print(f"error: {type(exc).__name__}: {exc} (traceback in {path})" + _recorded(run_dir), file=sys.stderr)
        return 1
    s = result.summary
    print(
        json.dumps(
            {
                k: s[k]
                for k in (
                    "name",
                    "label",
                    "N",
                    "frames",
                    "flops",
                    "final_dev_loss",
                    "copy_baseline",
                    "wall_time",
                    "status",
                )
            },
            indent=1,
        )
    )
    print(
        f"dev L1 {s['final_dev_loss']:.4f} vs copy-last-frame baseline {s['copy_baseline']:.4f}; "
        f"run directory {result.run_dir}"
    )
    return 0


def _recorded(run_dir, fix: str = "") -> str:
    """Where the run stands after an error or a signal (its summary, through RunDir)."""
    if run_dir is None or run_dir.read_summary() is None:
        return ""
    status = run_dir.status
    if status == "interrupted":
        return (
            f"; the run is recorded interrupted in {run_dir.summary_path}: "
            + (f"{fix}, then " if fix else "")
            + "--resume continues it from its last checkpoint"
        )
    return f"; the run is recorded {status} in {run_dir.summary_path}"


if __name__ == "__main__":
    sys.exit(main())
