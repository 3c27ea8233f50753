"""Multi-process (DDP) training runs through Ray Train's Lightning integration.

A run larger than one GPU trains as a `ray.train.torch.TorchTrainer` whose
workers each run `run_training` with Ray's DDP strategy and cluster
environment (`RayDDPStrategy`, `RayLightningEnvironment`, `prepare_trainer`).
Inside a Ray Tune trial, `ray.tune.integration.ray_train.TuneReportCallback`
forwards the workers' reports to Tune, so the sweep's scheduler sees a DDP run
exactly as it sees a single-process one.

Counting stays exact: the APC module all-reduces frames and FLOPs every step,
and the data module splits shards/samples by rank, so D and C are global.
On CPU the process group uses gloo, which is how CI tests this path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

from apcscale.train.config import TrainRecipe
from apcscale.utils.schema import from_dict, to_dict


def ddp_trainer_overrides(use_gpu: bool) -> dict[str, Any]:
    """Trainer settings for a Ray Train worker: Ray's DDP strategy and cluster environment."""
    from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment

    return {
        "strategy": RayDDPStrategy(find_unused_parameters=False),
        "plugins": [RayLightningEnvironment()],
        "devices": "auto",
        "accelerator": "gpu" if use_gpu else "cpu",
    }


class TrainReport(L.Callback):
    """For Ray Train workers: every rank reports each evaluation (Ray Train's report is
    collective); Tune receives rank 0's metrics through TuneReportCallback."""

    def __init__(self, extra: dict | None = None):
        self.extra = dict(extra or {})

    def on_validation_end(self, trainer, pl_module) -> None:
        import ray.train

        if trainer.sanity_checking or not pl_module.last_eval:
            return
        ev = pl_module.last_eval
        ray.train.report(
            {
                "dev_loss": ev["dev/loss"],
                "frames": ev["frames"],
                "flops": ev["flops"],
                "steps": ev["steps"],
                "wall_time": ev["wall_time"],
                **self.extra,
            }
        )


def _worker_loop(config: dict) -> None:
    import ray.train
    from ray.train.lightning import prepare_trainer

    from apcscale.train.run import run_training

    recipe = from_dict(TrainRecipe, config["recipe"])
    rank = ray.train.get_context().get_world_rank()
    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    run_training(
        recipe,
        run_dir=config["run_dir"],
        manifest=config["manifest"],
        callbacks=[TrainReport(config.get("extra")), *config.get("callbacks", [])],
        progress=False,
        resume=config.get("resume", False),
        overwrite=config.get("overwrite", False),
        trainer_overrides=ddp_trainer_overrides(config["use_gpu"]),
        trainer_hook=prepare_trainer,
        primary=rank == 0,
    )


def run_training_ddp(
    recipe: TrainRecipe,
    *,
    run_dir: str | Path,
    manifest: str | Path,
    num_workers: int,
    use_gpu: bool,
    cpus_per_worker: float = 1.0,
    storage_path: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    report_to_tune: bool = False,
    extra_metrics: dict | None = None,
    callbacks: list | None = None,
):
    """Train one run with `num_workers` DDP processes (GPUs if use_gpu, else CPU/gloo).

    Returns Ray Train's Result. With report_to_tune, call it from inside a Tune trial:
    each evaluation then reaches Tune's scheduler like a single-process report.
    """
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    run_callbacks = []
    if report_to_tune:
        from ray.tune.integration.ray_train import TuneReportCallback

        run_callbacks.append(TuneReportCallback())
    run_dir = Path(run_dir).resolve()
    trainer = TorchTrainer(
        _worker_loop,
        train_loop_config={
            "recipe": to_dict(recipe),
            "run_dir": str(run_dir),
            "manifest": str(Path(manifest).resolve()),
            "use_gpu": use_gpu,
            "threads": cpus_per_worker,
            "resume": resume,
            "overwrite": overwrite,
            "extra": extra_metrics or {},
            "callbacks": callbacks or [],
        },
        scaling_config=ScalingConfig(
            num_workers=num_workers, use_gpu=use_gpu, resources_per_worker={"CPU": cpus_per_worker}
        ),
        run_config=RunConfig(
            name=f"ddp-{run_dir.name}",
            storage_path=str(Path(storage_path or run_dir.parent / ".ray_train").resolve()),
            callbacks=run_callbacks,
        ),
    )
    return trainer.fit()
