"""The driver's part of a run's status: a run whose trial Tune gave up on is failed.

A crash leaves its run interrupted (apcscale.train.run records it), and a dead worker leaves it
running; Tune then retries the trial from the run's last checkpoint up to `ray.max_failures`
times. When it gives up, only the driver knows: this callback (and, for trials restored as
errored after --resume, `run_sweep` once Tune returns) records the run failed, with the error
the run recorded itself when there is one.
"""

from __future__ import annotations

from pathlib import Path

from ray.tune import Callback

from apcscale.train.rundir import ENDED, RunDir


def mark_failed(sweep_dir: Path, run_id: str, error: str) -> None:
    """A run whose trial Tune gave up on (its retries spent): failed, with the run's own
    error if it recorded one (it is left interrupted by a crash, or running by a dead worker)."""
    rd = RunDir(sweep_dir / "runs" / run_id)
    if rd.status in ENDED:
        return
    summary = rd.read_summary() or {}
    rd.fail(str(summary.get("error") or error), end="error")


class RunStatusCallback(Callback):
    """A Ray Tune callback: a trial Tune gave up on leaves its run failed."""

    def __init__(self, sweep_dir: Path):
        self.sweep_dir = Path(sweep_dir)

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        run_id = trial.config.get("run_id")
        if run_id:
            mark_failed(self.sweep_dir, run_id, _error_line(trial))


def _error_line(trial) -> str:
    path = getattr(trial, "error_file", None) or ""
    try:
        text = Path(path).read_text().strip().splitlines() if path else []
    except OSError:
        text = []
    return text[-1][:300] if text else "the trial failed (no error recorded)"


__all__ = ["RunStatusCallback", "mark_failed"]
