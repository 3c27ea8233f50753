"""The `apcscale` command: one console script, a subcommand per entry point.

    apcscale sweep [RECIPE] [--dry-run] ...     python -m apcscale.recipes.sweep
    apcscale train [RECIPE] ...                 python -m apcscale.recipes.train
    apcscale prepare SOURCE OUT_DIR ...         python -m apcscale.recipes.prepare
    apcscale fit TABLE ...                      python -m apcscale.recipes.fit
    apcscale export RUN_DIR OUT                 python -m apcscale.recipes.export
    apcscale features AUDIO OUT --model EXPORT  python -m apcscale.recipes.features
    apcscale probe SWEEP_DIR | --model EXPORT   python -m apcscale.recipes.probe
    apcscale recipes list | cp NAME DEST        python -m apcscale.recipes.catalog

Each subcommand hands the rest of the command line to its entry point's `main(argv)`, so both
forms take the same flags. A new subcommand is one line in COMMANDS and a module with a main().
"""

from __future__ import annotations

import difflib
import importlib
import sys

# name -> (module with main(argv) -> int, one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "sweep": (
        "apcscale.recipes.sweep",
        "a scaling study: plan within a budget, train the grid on Ray Tune with frontier pruning, fit the laws",
    ),
    "train": ("apcscale.recipes.train", "one training run from a recipe"),
    "prepare": (
        "apcscale.recipes.prepare",
        "audio (a folder, a Kaldi data directory, a lhotse manifest) to log-Mel WebDataset shards",
    ),
    "fit": ("apcscale.recipes.fit", "fit scaling laws to a table of runs, with intervals and plots"),
    "export": (
        "apcscale.recipes.export",
        "a run's encoder as a self-contained directory (weights, config, feature settings, statistics)",
    ),
    "features": ("apcscale.recipes.features", "per-utterance context vectors of audio from an exported encoder"),
    "probe": (
        "apcscale.recipes.probe",
        "linear probes (digit, speaker, gender, age) of a sweep's best encoders or an export, beside log-Mel",
    ),
    "recipes": ("apcscale.recipes.catalog", "the recipes: `recipes list`, `recipes cp NAME DEST` to copy one to edit"),
}


def version() -> str:
    try:
        from importlib.metadata import PackageNotFoundError
        from importlib.metadata import version as dist_version
    except ImportError:  # pragma: no cover - Python >= 3.8 has it
        return "unknown"
    try:
        return dist_version("apcscale")
    except PackageNotFoundError:
        return "unknown (not installed)"


def usage() -> str:
    width = max(len(name) for name in COMMANDS) + 2
    lines = [
        "usage: apcscale COMMAND [ARGS ...]",
        "",
        "Scaling laws of Autoregressive Predictive Coding speech models.",
        "",
        "commands:",
    ]
    lines += [f"  {name:{width}s}{text}" for name, (_, text) in COMMANDS.items()]
    lines += [
        "",
        "`apcscale COMMAND --help` describes a command's arguments.",
        "`apcscale --version` prints the version.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from apcscale.utils.log import cli_logging

    cli_logging()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    first = argv[0]
    if first in ("-h", "--help", "help"):
        print(usage())
        return 0
    if first in ("-V", "--version"):
        print(f"apcscale {version()}")
        return 0
    if first not in COMMANDS:
        close = difflib.get_close_matches(first, list(COMMANDS), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        print(f"apcscale: unknown command '{first}'{hint}; commands: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[first][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
