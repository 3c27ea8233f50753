"""Lightning callbacks of a training run: the learning curve on disk and a progress bar in frames."""

from __future__ import annotations

import math
import time

import lightning as L
from lightning.pytorch.callbacks import ProgressBar
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from apcscale.train.rundir import CURVE_FIELDS, RunDir


class CurveRecorder(L.Callback):
    """Keeps every dev evaluation (the run's learning curve) and appends it to the run
    directory's curve.csv (through `RunDir`, which owns the file)."""

    def __init__(self, run_dir: RunDir | None = None):
        self.run_dir = run_dir
        self.points: list[dict[str, float]] = []

    def load_existing(self) -> None:
        """On resume: the points already on disk stay part of the curve."""
        if self.run_dir is not None:
            self.points = self.run_dir.read_curve()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or not getattr(pl_module, "last_eval", None):
            return
        point = {k: float(pl_module.last_eval[k]) for k in CURVE_FIELDS}
        if self.points and self.points[-1]["frames"] == point["frames"] and self.points[-1]["steps"] == point["steps"]:
            return  # the same point evaluated twice (e.g. a resumed run re-validating)
        self.points.append(point)
        if self.run_dir is not None and trainer.is_global_zero:
            self.run_dir.append_point(point)


def _si(x: float) -> str:
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{unit}"
    return f"{x:.3g}"


class FramesProgressBar(ProgressBar):
    """A rich progress bar over the run's budget (frames or steps), with train and dev loss.

    Lightning's own bars count batches per epoch; here an epoch is an evaluation
    interval and the budget is in frames, so the bar counts what the run counts.
    """

    def __init__(self, label: str = "train", refresh_every: int = 10, console: Console | None = None):
        super().__init__()
        self.label = label
        self.refresh_every = refresh_every
        self.console = console
        self._enabled = True
        self._progress: Progress | None = None
        self._task = None
        self._dev = ""
        self._started = 0.0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _position(self, module) -> int:
        return module.clock.position(module.frames_seen, module.trainer.global_step)

    def on_train_start(self, trainer, pl_module) -> None:
        if not self._enabled or not trainer.is_global_zero or pl_module.clock is None:
            return
        clock = pl_module.clock
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[where]}"),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=False,
        )
        self._task = self._progress.add_task(
            self.label, total=clock.total, completed=self._position(pl_module), where="", info=""
        )
        self._progress.start()
        self._started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._progress is None:
            return
        info = None
        if trainer.global_step % self.refresh_every == 0:
            loss = trainer.callback_metrics.get("train/loss")
            if loss is not None:
                info = f"train {float(loss):.4f}{self._dev}"
        unit = pl_module.clock.unit
        where = f"{_si(pl_module.frames_seen)} frames" if unit == "frames" else f"{trainer.global_step} steps"
        fields = {"where": where + f" · {_si(pl_module.flops_seen)}FLOP"}
        if info is not None:
            fields["info"] = info
        self._progress.update(self._task, completed=self._position(pl_module), **fields)

    def on_validation_end(self, trainer, pl_module) -> None:
        if self._progress is None or trainer.sanity_checking or not pl_module.last_eval:
            return
        ev = pl_module.last_eval
        self._dev = f" · dev {ev['dev/loss']:.4f}"
        ratio = ev["dev/loss"] / ev["dev/copy_baseline"] if ev["dev/copy_baseline"] > 0 else math.nan
        self._progress.console.print(
            f"  eval  frames {_si(ev['frames']):>7}  FLOPs {_si(ev['flops']):>7}  step {int(ev['steps']):>6}  "
            f"dev L1 {ev['dev/loss']:.4f}  (copy-last-frame {ev['dev/copy_baseline']:.4f}, ratio {ratio:.3f})  "
            f"{ev['wall_time']:.0f}s"
        )

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def on_train_end(self, trainer, pl_module) -> None:
        self._stop()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._stop()
