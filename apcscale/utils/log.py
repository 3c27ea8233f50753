"""The package's logger, and how the command-line entry points show it.

The library reports through the standard `logging` module, under the "apcscale" logger (a run's
summary line, a download, the planner's probe messages); an application that embeds apcscale
configures logging as it likes. The commands (`apcscale ...`, `python -m apcscale.recipes.<name>`)
call :func:`cli_logging`, which prints INFO and above to the standard output as plain lines, next
to their own rich output.
"""

from __future__ import annotations

import logging
import sys

LOGGER = logging.getLogger("apcscale")


class _Stdout(logging.Handler):
    """Writes each record to the sys.stdout of the moment (a test's capture, a redirected stream)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:  # logging must never break the command
            self.handleError(record)


def cli_logging(level: int = logging.INFO) -> None:
    """Show the package's log on stdout as plain lines (once per process)."""
    if not any(isinstance(h, _Stdout) for h in LOGGER.handlers):
        handler = _Stdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        LOGGER.addHandler(handler)
        LOGGER.propagate = False  # shown here; not again by a root handler
    LOGGER.setLevel(level)


def get_logger(name: str) -> logging.Logger:
    """A child of the package logger: get_logger(__name__) in a module of apcscale."""
    return logging.getLogger(name if name.startswith("apcscale") else f"apcscale.{name}")


__all__ = ["LOGGER", "cli_logging", "get_logger"]
