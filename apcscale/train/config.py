"""The training recipe: one YAML file describes one training run.

    name: lstm-fsdd
    data: {subset: d7, crop_frames: 256, batch_frames: 8192}
    model: {arch: lstm, width: 256, depth: 3}
    optim: {lr: 2.0e-3, schedule: wsd}
    budget: {frames: 2000000}
    eval: {points: 12}
    trainer: {precision: auto}

Every field is checked (names, types, cross-field rules) by `load_train_recipe`
before any data is touched or any model is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from apcscale.models.config import ModelConfig
from apcscale.models.optim import OptimConfig
from apcscale.train.budget import BudgetConfig, EvalConfig
from apcscale.train.stopping import StoppingConfig
from apcscale.utils.schema import check, load_recipe


@dataclass
class DataConfig:
    """Where the training data comes from and how it is streamed.

    manifest: a prepared manifest.json (python -m apcscale.recipes.prepare).
    audio: else, audio to prepare: a folder of audio, a Kaldi data directory or a lhotse manifest
        (default: FSDD, see apcscale.data.resolve_audio and apcscale.data.inputs).
    prepared_dir: where to prepare it (default: <cache>/prepared/<audio folder name>).
    subset: a nested training subset of the manifest (d0 = smallest ... ; default: the largest).
    dev_by: when preparing audio, how the dev split is held out: auto (whole speakers when known),
        speaker, or utterance (see `python -m apcscale.recipes.prepare --help`).
    crop_frames: training crops are at most this long (random-offset tiles of each utterance).
    batch_size: crops per batch; or batch_frames: frames per batch, counted as the network
        computes them (rows x steps of the batch tensor, padding included), so that the
        optimiser sees batches of about the same number of frames whatever the corpus; give one
        (neither: 32 crops).
    batching: bucket (sort each window of shuffled crops by length, batch neighbours: little
        padding, dense kernels), pack (crops back to back in rows of crop_frames; needs
        batch_frames) or random (stream order, padded: the old way). See apcscale.data.batching.
    shuffle_buffer: crops in the shuffle buffer, and in each window the batches are made from.
    """

    manifest: str | None = None
    audio: str | None = None
    prepared_dir: str | None = None
    n_mels: int | None = None
    dev_by: Literal["auto", "speaker", "utterance"] = "auto"
    subset: str | None = None
    crop_frames: int = 256
    batch_size: int | None = None
    batch_frames: int | None = None
    batching: Literal["bucket", "pack", "random"] = "bucket"
    num_workers: int = 2
    shuffle_buffer: int = 1000
    eval_crop_frames: int = 2000
    seed: int = 0

    def validate(self) -> None:
        check(not (self.manifest and self.audio), "manifest", "give either manifest or audio, not both")
        check(self.crop_frames >= 8, "crop_frames", f"must be at least 8, got {self.crop_frames}")
        if self.batch_size is not None:
            check(self.batch_size >= 1, "batch_size", f"must be positive, got {self.batch_size}")
        if self.batch_frames is not None:
            check(
                self.batch_size is None,
                "batch_frames",
                f"give batch_size (crops per batch) or batch_frames (frames per batch), not both "
                f"(got batch_size {self.batch_size} and batch_frames {self.batch_frames})",
            )
            check(
                self.batch_frames >= self.crop_frames,
                "batch_frames",
                f"must hold at least one crop of crop_frames = {self.crop_frames}, got {self.batch_frames}",
            )
        check(
            self.batching != "pack" or self.batch_frames is not None,
            "batching",
            "pack fills batches by frames: set batch_frames",
        )
        check(self.num_workers >= 0, "num_workers", f"must be >= 0, got {self.num_workers}")
        check(self.shuffle_buffer >= 1, "shuffle_buffer", f"must be positive, got {self.shuffle_buffer}")
        check(self.eval_crop_frames >= 8, "eval_crop_frames", f"must be at least 8, got {self.eval_crop_frames}")
        if self.n_mels is not None:
            check(self.n_mels >= 1, "n_mels", f"must be positive, got {self.n_mels}")

    def frames_per_batch(self, mean_crop: float) -> float:
        """About how many counted frames a batch holds, for crops of mean_crop frames on average."""
        if self.batch_frames is not None:
            return float(self.batch_frames)
        return (self.batch_size or 32) * mean_crop

    def stream_options(self) -> dict:
        """The APCDataModule arguments that decide the training batches."""
        return {
            "crop_frames": self.crop_frames,
            "batch_size": self.batch_size,
            "batch_frames": self.batch_frames,
            "batching": self.batching,
            "shuffle_buffer": self.shuffle_buffer,
        }


@dataclass
class TrainerConfig:
    """Lightning Trainer settings.

    precision "auto": bf16-mixed on a CUDA GPU, 32-true on CPU.
    compile: torch.compile the context network (GPU runs; slow to start on CPU).
    loggers: Lightning loggers, any of csv, tensorboard, mlflow (see apcscale.train.loggers); [] for none.
    """

    accelerator: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str = "auto"
    compile: bool = False
    seed: int = 0
    log_every_n_steps: int = 20
    checkpoint: bool = True
    loggers: list[Literal["csv", "tensorboard", "mlflow"]] = field(default_factory=lambda: ["csv"])

    def validate(self) -> None:
        check(
            self.accelerator in ("auto", "cpu", "gpu", "cuda", "mps"),
            "accelerator",
            f"must be auto, cpu, gpu, cuda or mps, got {self.accelerator!r}",
        )
        allowed = ("auto", "32-true", "32", "bf16-mixed", "16-mixed", "bf16-true")
        check(self.precision in allowed, "precision", f"must be one of {', '.join(allowed)}, got {self.precision!r}")
        check(self.log_every_n_steps >= 1, "log_every_n_steps", "must be positive")
        check(len(set(self.loggers)) == len(self.loggers), "loggers", f"names a logger twice: {self.loggers}")
        from apcscale.train.loggers import missing_backend

        for i, name in enumerate(self.loggers):
            problem = missing_backend(name)
            check(problem is None, f"loggers[{i}]", problem or "")


@dataclass
class TrainRecipe:
    name: str = "train"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    budget: BudgetConfig = field(default_factory=lambda: BudgetConfig(epochs=10))
    eval: EvalConfig = field(default_factory=EvalConfig)
    # train until the dev loss stops improving (then cool down), or until the budget: the budget is a cap
    stopping: StoppingConfig = field(default_factory=StoppingConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    output_dir: str = "runs"
    # a cooldown branch: start from another run's checkpoint (its weights, optimiser state, frames
    # and FLOPs so far) and train on to this recipe's budget under this recipe's schedule; with WSD,
    # a checkpoint of the stable phase at (1 - decay) of this budget makes the rest a cooldown
    init_from: str | None = None

    def validate(self) -> None:
        check(
            bool(self.name) and "/" not in self.name, "name", f"must be a non-empty name without '/', got {self.name!r}"
        )


def load_train_recipe(path: str | Path, overrides: list[str] | None = None) -> TrainRecipe:
    """Read and validate a training recipe; `overrides` are "a.b=value" strings."""
    return load_recipe(TrainRecipe, path, overrides)
