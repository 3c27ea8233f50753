"""The library reports through `logging`, never print; the commands show the log on stdout once."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

from apcscale.utils.log import LOGGER, cli_logging, get_logger

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {ROOT / "apcscale" / "cli.py", *(ROOT / "apcscale" / "recipes").glob("*.py")}  # their output is theirs


def test_no_print_in_the_library():
    found = []
    for path in sorted((ROOT / "apcscale").rglob("*.py")):
        if path in COMMANDS:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.keyword) and isinstance(node.value, ast.Name) and node.value.id == "print":
                found.append(f"{path.relative_to(ROOT)}:{node.value.lineno} (print as a default callback)")
    assert not found, found


def test_the_commands_show_the_package_log_once_on_stdout(capsys):
    handlers, propagate, level = list(LOGGER.handlers), LOGGER.propagate, LOGGER.level
    try:
        cli_logging()
        cli_logging()  # a command calling another: still one line per record
        get_logger("apcscale.sweep.planner").info("probing 3 sizes")
        get_logger("train.run").debug("not shown at INFO")
        assert capsys.readouterr().out == "probing 3 sizes\n"
    finally:
        LOGGER.handlers[:] = handlers
        LOGGER.propagate, LOGGER.level = propagate, level
    assert logging.getLogger("apcscale.train.run").parent.name in ("apcscale.train", "apcscale")
