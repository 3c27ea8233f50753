"""A training run's directory: the one owner of its summary, its learning curve and its status.

    run_dir/
      summary.json      N, C, D, status, why it ended, final and best dev loss, the whole curve
      curve.csv         one row per dev evaluation (frames, FLOPs, steps, wall time, dev loss, ...)
      checkpoints/      last.ckpt (every evaluation) and best.ckpt (lowest dev loss)
      traceback.txt     the traceback of the crash that interrupted the run (the train command)
      recipe.yaml, logs/  written by apcscale.train.run

Every module that reads or writes summary.json or curve.csv goes through `RunDir`; nothing
else parses them. The status machine:

    planned -> running -> finished      its budget spent (end "budget"), or, with a stopping rule
                                        (apcscale.train.stopping), its rule met ("stopping_rule") or its cap
                                        reached ("cap"), with `converged`
                       -> stopped       by the sweep's scheduler, with its decision record
                       -> failed        its loss turned NaN (end "diverged"), or it crashed more often
                                        than the sweep retries a trial (end "error"), with the error
                       -> interrupted   a crash, a signal, Ctrl-C, the sweep's driver going away:
                                        resumable from the last checkpoint (`--resume`)
    interrupted -> running (resumed) | failed (no retries left) | stopped (a stop that came as
                   a multi-process run's workers were torn down)

A run killed outright (kill -9, a lost node) cannot write anything: its summary still says
"running", and `effective_status` reads that as interrupted when no live process owns it.
finished, stopped and failed are final: such a run is never trained again.

Conventions: summary.json is strict JSON (a non-finite number is written as null and read back
as NaN) and replaced atomically (a temporary file, then os.replace), so a reader never sees
half of it. In curve.csv a non-finite value is an empty cell; "nan", "NaN" and "" all read back
as float NaN. Torch is imported only to read a checkpoint's frame count.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

PLANNED, RUNNING, FINISHED, STOPPED, FAILED, INTERRUPTED = (
    "planned",
    "running",
    "finished",
    "stopped",
    "failed",
    "interrupted",
)
STATUSES = (PLANNED, RUNNING, FINISHED, STOPPED, FAILED, INTERRUPTED)
#: final: a run in one of these is never trained again
ENDED = (FINISHED, STOPPED, FAILED)

#: the statuses a status may move to (anything may be deleted and started over with --overwrite)
TRANSITIONS = {
    PLANNED: (RUNNING, FAILED),
    # running -> running: a restart after an attempt that died without a word (kill -9, a lost node)
    RUNNING: (RUNNING, FINISHED, STOPPED, FAILED, INTERRUPTED),
    # interrupted -> stopped: a multi-process run whose workers were torn down as the scheduler's stop came
    INTERRUPTED: (RUNNING, STOPPED, FAILED),
    FINISHED: (),
    STOPPED: (),
    FAILED: (),
}

CURVE_FIELDS = ("frames", "flops", "steps", "wall_time", "train_time", "dev/loss", "dev/copy_baseline", "lr")
#: summary fields that are numbers (null in the file reads back as NaN)
_FLOAT_FIELDS = ("final_dev_loss", "min_dev_loss", "copy_baseline", "flops", "wall_time", "train_time", "seconds")


class RunStateError(RuntimeError):
    """A status change the machine does not allow (e.g. finishing a run already stopped)."""


class RunDirError(RuntimeError):
    """The run directory holds a previous run and neither resume nor overwrite was asked for."""


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def _number(text: str | float | None) -> float:
    if text is None or text == "":
        return math.nan
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def write_json_atomic(path: Path, data: Any) -> None:
    """Write `data` as strict JSON (non-finite numbers as null), replacing `path` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(_finite_or_none(data), indent=2, allow_nan=False, default=str) + "\n")
    os.replace(tmp, path)


class RunDir:
    """One run's directory (it need not exist yet)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # ----- paths ----------------------------------------------------------------------------
    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @property
    def curve_path(self) -> Path:
        return self.path / "curve.csv"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoint_dir / "last.ckpt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoint_dir / "best.ckpt"

    # ----- summary and status ---------------------------------------------------------------
    def read_summary(self) -> dict[str, Any] | None:
        """The summary, or None when there is none (or it cannot be read: never half-written
        by this layer, but a disk can fill up or a user can edit it)."""
        try:
            data = json.loads(self.summary_path.read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        for key in _FLOAT_FIELDS:
            if key in data and data[key] is None:
                data[key] = math.nan
        if isinstance(data.get("curve"), list):
            data["curve"] = [
                {k: (math.nan if v is None else v) for k, v in p.items()} for p in data["curve"] if isinstance(p, dict)
            ]
        return data

    @property
    def status(self) -> str:
        """The recorded status: planned when nothing is recorded (or the record is unreadable)."""
        summary = self.read_summary()
        status = (summary or {}).get("status", PLANNED)
        return status if status in STATUSES else PLANNED

    def effective_status(self, live: bool = False) -> str:
        """The status as a report should show it: "running" with no live process to own it (a
        killed worker or driver wrote nothing more) is interrupted."""
        status = self.status
        if status == PLANNED and self.path.is_dir() and any(self.path.iterdir()):
            return INTERRUPTED  # files of an attempt that never wrote its summary
        return INTERRUPTED if status == RUNNING and not live else status

    def ended(self) -> dict[str, Any] | None:
        """The summary of a run that ended for good (finished, stopped or failed), else None."""
        summary = self.read_summary()
        return summary if summary is not None and summary.get("status") in ENDED else None

    def _move(self, status: str, fields: dict[str, Any], clear: tuple[str, ...] = ()) -> dict[str, Any]:
        summary = self.read_summary() or {}
        before = summary.get("status", PLANNED)
        if before not in STATUSES:
            before = PLANNED
        if status not in TRANSITIONS[before]:
            raise RunStateError(f"{self.path.name}: cannot go from {before} to {status}")
        for key in clear:
            summary.pop(key, None)
        summary.update(fields)
        summary["status"] = status
        if status != RUNNING:
            summary["ended_at"] = time.time()
        write_json_atomic(self.summary_path, summary)
        return summary

    def start(self, **fields: Any) -> dict[str, Any]:
        """planned or interrupted -> running. `fields`: what is known at the start (N, budget, ...).
        What an earlier attempt recorded about its end (error, end) is cleared."""
        return self._move(
            RUNNING, {**fields, "started_at": time.time()}, clear=("error", "end", "decision", "ended_at")
        )

    def finish(self, end: str = "budget", **fields: Any) -> dict[str, Any]:
        """running -> finished. end: why ("budget", "stopping_rule", "cap"); fields: e.g. converged."""
        return self._move(FINISHED, {**fields, "end": end, "error": None})

    def stop(self, decision: dict[str, Any], **fields: Any) -> dict[str, Any]:
        """running -> stopped, by the sweep's scheduler; `decision` is its record (decisions.jsonl)."""
        reason = decision.get("reason") or "stopped by the sweep's scheduler"
        return self._move(
            STOPPED,
            {
                **fields,
                "end": "scheduler",
                "decision": decision,
                "error": f"stopped by the sweep's scheduler: {reason}",
            },
        )

    def fail(self, error: str, end: str = "error", **fields: Any) -> dict[str, Any]:
        """-> failed, with the error. end: "diverged" (a non-finite loss) or "error"."""
        return self._move(FAILED, {**fields, "end": end, "error": error})

    def interrupt(self, error: str, end: str = "error", **fields: Any) -> dict[str, Any]:
        """running -> interrupted (resumable). end: "error" (an exception), "signal" (SIGINT,
        SIGTERM, Tune ending the trial without a decision)."""
        return self._move(INTERRUPTED, {**fields, "end": end, "error": error})

    def write_traceback(self, text: str) -> Path:
        """Keep the traceback of the crash that interrupted the run (traceback.txt); returns its path."""
        path = self.path / "traceback.txt"
        self.path.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    # ----- the learning curve ---------------------------------------------------------------
    def read_curve(self) -> list[dict[str, float]]:
        """Every evaluation on disk, as floats (NaN for empty or non-numeric cells), one per
        (frames, steps) (the last one kept), ordered by compute."""
        try:
            with self.curve_path.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
        except OSError:
            return []
        points: dict[tuple[float, float], dict[str, float]] = {}
        for row in rows:
            point = {k: _number(v) for k, v in row.items() if k is not None}
            if not math.isfinite(point.get("frames", math.nan)):
                continue  # a row torn by a kill
            points.pop((point["frames"], point.get("steps", math.nan)), None)
            points[(point["frames"], point.get("steps", math.nan))] = point
        return sorted(points.values(), key=lambda p: (_sort_key(p.get("flops")), p["frames"]))

    def append_point(self, point: dict[str, float]) -> None:
        """Append one evaluation to curve.csv (the header first, if the file is new)."""
        self.path.mkdir(parents=True, exist_ok=True)
        new = not self.curve_path.is_file() or self.curve_path.stat().st_size == 0
        with self.curve_path.open("a", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=CURVE_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: _cell(point.get(k)) for k in CURVE_FIELDS})
            fh.flush()

    def write_curve(self, points: Iterable[dict[str, float]]) -> None:
        """Replace curve.csv (atomically) with `points`."""
        self.path.mkdir(parents=True, exist_ok=True)
        tmp = self.curve_path.with_name(f".curve.csv.tmp-{os.getpid()}")
        with tmp.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=CURVE_FIELDS, extrasaction="ignore")
            writer.writeheader()
            for p in points:
                writer.writerow({k: _cell(p.get(k)) for k in CURVE_FIELDS})
        os.replace(tmp, self.curve_path)

    # ----- checkpoints and restarts ---------------------------------------------------------
    def checkpoint_frames(self, path: Path | None = None) -> float | None:
        """Frames trained when the checkpoint was written; None if it is missing or unreadable."""
        path = path or self.last_checkpoint
        if not path.is_file():
            return None
        import torch

        try:
            state = torch.load(path, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001 - a torn or foreign file: not a checkpoint to resume from
            return None
        return float((state.get("apcscale") or {}).get("frames_seen", math.nan))

    def prepare(self, resume: bool, overwrite: bool) -> Path | None:
        """Make the directory ready for a run (apcscale.train.run); returns the checkpoint to
        resume from, if any. A directory holding a run is refused unless resume or overwrite;
        resuming a run that ended for good is refused; resuming is otherwise `prepare_restart`
        (evaluations after the last checkpoint are dropped; no readable checkpoint: start over)."""
        if resume:
            status = self.status
            if status in ENDED:
                raise RunDirError(
                    f"{self.path} holds a run that has {status}: there is nothing to resume; --overwrite starts it over"
                )
            resumable, _ = self.prepare_restart()
            if resumable:
                return self.last_checkpoint
        elif self.path.exists() and any(self.path.iterdir()):
            if not overwrite:
                raise RunDirError(
                    f"{self.path} already holds a run ({self.effective_status()}); pass --resume to continue it, "
                    "--overwrite to start over, or choose another name/output directory"
                )
            shutil.rmtree(self.path)
        self.path.mkdir(parents=True, exist_ok=True)
        return None

    def prepare_restart(self) -> tuple[bool, list[dict[str, float]]]:
        """Make the directory of a sweep run ready to (re)start: (resume?, curve points kept).

        With a readable last checkpoint, evaluations recorded after it (the process died
        between writing the curve and the checkpoint) are dropped, since they will be redone.
        Without one, whatever a dead attempt left is cleared, so the run starts clean."""
        frames = self.checkpoint_frames()
        if frames is None:
            if self.path.exists():
                shutil.rmtree(self.path)
            return False, []
        points = self.read_curve()
        kept = [p for p in points if p["frames"] <= frames + 0.5]
        if len(kept) != len(points) or (self.curve_path.is_file() and not points):
            self.write_curve(kept)
        return True, kept


def _sort_key(value: float | None) -> float:
    return value if value is not None and math.isfinite(value) else math.inf


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    return value


__all__ = [
    "RunDir",
    "RunDirError",
    "RunStateError",
    "STATUSES",
    "ENDED",
    "CURVE_FIELDS",
    "PLANNED",
    "RUNNING",
    "FINISHED",
    "STOPPED",
    "FAILED",
    "INTERRUPTED",
    "write_json_atomic",
]
