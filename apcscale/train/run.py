"""One training run: recipe in, learning curve, checkpoints and a summary out.

    run_dir/
      summary.json      N, C, D, final and best dev loss, status, the whole curve
      curve.csv         one row per dev evaluation (frames, FLOPs, steps, wall time, dev loss)
      logs/version_k/   Lightning's CSVLogger (metrics.csv: train loss per step, dev metrics per
                        evaluation; hparams.yaml); each resume of the run adds a version
      recipe.yaml       the validated recipe, with every default filled in
      checkpoints/      last.ckpt and best.ckpt (lowest dev loss)

Used by `python -m apcscale.recipes.train` and, inside Ray Tune trials, by the sweep.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import lightning as L
import torch
import warnings
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from apcscale.models.apc import APCModule, NonFiniteLossError
from apcscale.train.budget import evaluation_points
from apcscale.train.callbacks import CurveRecorder, FramesProgressBar
from apcscale.train.config import DataConfig, TrainerConfig, TrainRecipe
from apcscale.train.loop import IntervalDataModule
from apcscale.utils.schema import RecipeError, to_dict


# the module's on_before_batch_transfer (FLOP counting on CPU lengths) is meant to run with a datamodule
warnings.filterwarnings("ignore", message=r".*overridden `on_before_batch_transfer`.*")


class RunDirError(RuntimeError):
    """The run directory holds a previous run and neither resume nor overwrite was asked for."""


@dataclass
class TrainResult:
    run_dir: Path
    status: str  # finished | failed
    summary: dict[str, Any]
    curve: list[dict[str, float]] = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        return self.summary.get("final_dev_loss", math.nan)


def resolve_manifest(data: DataConfig, *, progress: bool = True) -> Path:
    """The manifest a run trains on: given, or prepared (once, then reused) from audio."""
    from apcscale.data import ensure_prepared, resolve_audio
    from apcscale.data.source import cache_dir

    if data.manifest:
        path = Path(data.manifest).expanduser()
        if not path.is_file():
            raise RecipeError("data.manifest", f"manifest not found: {path}")
        return path
    audio = resolve_audio(data.audio)
    if data.prepared_dir:
        out = Path(data.prepared_dir).expanduser()
    else:
        key = f"{Path(audio).resolve()}|{data.n_mels}" + ("" if data.dev_by == "auto" else f"|{data.dev_by}")
        tag = hashlib.sha256(key.encode()).hexdigest()[:8]
        out = cache_dir() / "prepared" / f"{Path(audio).name}-{tag}"
    return ensure_prepared(audio, out, n_mels=data.n_mels, progress=progress, dev_by=data.dev_by)


def trainer_settings(cfg: TrainerConfig) -> dict[str, Any]:
    """Accelerator, devices, strategy and precision with "auto" resolved the apcscale way."""
    gpu = torch.cuda.is_available() and cfg.accelerator in ("auto", "gpu", "cuda")
    precision = cfg.precision
    if precision == "auto":
        precision = "bf16-mixed" if gpu and torch.cuda.is_bf16_supported() else ("16-mixed" if gpu else "32-true")
    return {"accelerator": cfg.accelerator, "devices": cfg.devices, "strategy": cfg.strategy, "precision": precision}


def build_datamodule(recipe: TrainRecipe, manifest: Path):
    from apcscale.data import APCDataModule

    d = recipe.data
    return APCDataModule(
        manifest,
        subset=d.subset,
        **d.stream_options(),
        num_workers=d.num_workers,
        seed=d.seed,
        eval_crop_frames=d.eval_crop_frames,
        pin_memory=torch.cuda.is_available(),
    )


def subset_info(manifest: Path, subset: str | None) -> dict[str, Any]:
    """Name, frames and feature size of the training subset (default: the largest)."""
    from apcscale.data import Manifest

    m = Manifest.load(manifest)
    name = subset or m.largest_subset
    entry = m.subset(name)
    return {"subset": name, "frames": int(entry["frames"]), "feature_dim": m.feature_dim}


def _prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> Path | None:
    """Returns the checkpoint to resume from, if any."""
    last = run_dir / "checkpoints" / "last.ckpt"
    if resume and last.is_file():
        return last
    if run_dir.exists() and any(run_dir.iterdir()) and not resume:
        if not overwrite:
            raise RunDirError(
                f"{run_dir} already holds a run; pass --resume to continue it, --overwrite to start over, "
                "or choose another name/output directory"
            )
        import shutil

        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return None


def run_training(
    recipe: TrainRecipe,
    *,
    run_dir: str | Path | None = None,
    callbacks: Iterable[L.Callback] = (),
    progress: bool = True,
    resume: bool = False,
    overwrite: bool = False,
    manifest: str | Path | None = None,
    trainer_overrides: dict[str, Any] | None = None,
    trainer_hook: Callable[[L.Trainer], L.Trainer] | None = None,
    primary: bool = True,
) -> TrainResult:
    """Train one APC model as the recipe says. Raises NonFiniteLossError (after saving the
    summary, with status "failed") if the loss turns NaN; everything already written stays."""
    run_dir = Path(run_dir) if run_dir is not None else Path(recipe.output_dir) / recipe.name
    manifest = Path(manifest) if manifest is not None else resolve_manifest(recipe.data, progress=progress)
    if primary:  # one process of a multi-process run owns the directory
        resume_from = _prepare_run_dir(run_dir, resume, overwrite)
        (run_dir / "recipe.yaml").write_text(yaml.safe_dump(to_dict(recipe), sort_keys=False))
    else:
        last = run_dir / "checkpoints" / "last.ckpt"
        resume_from = last if resume and last.is_file() else None

    L.seed_everything(recipe.trainer.seed, workers=True, verbose=False)
    data = build_datamodule(recipe, manifest)
    info = subset_info(manifest, recipe.data.subset)
    unit, total = recipe.budget.resolve(info["frames"])
    points = evaluation_points(total, recipe.eval)
    module = APCModule(
        feature_dim=info["feature_dim"],
        model=recipe.model,
        optim=recipe.optim,
        clock={"unit": unit, "total": total, "points": points},
        compile=recipe.trainer.compile,
    )
    curve = CurveRecorder(run_dir / "curve.csv")
    if resume_from is not None:
        curve.load_existing()
    cbs: list[L.Callback] = [curve, *callbacks]
    branch = None
    if recipe.init_from and resume_from is None:  # a resumed branch has its own last.ckpt
        branch = BranchStart(recipe.init_from, module, total)
        cbs.append(branch)
    if recipe.trainer.checkpoint:
        cbs.append(ModelCheckpoint(
            dirpath=run_dir / "checkpoints", filename="best", monitor="dev/loss", mode="min",
            save_top_k=1, save_last=True, enable_version_counter=False,
        ))
    if progress:
        cbs.append(FramesProgressBar(label=recipe.name))
    settings = trainer_settings(recipe.trainer)
    kwargs: dict[str, Any] = dict(
        **settings,
        max_epochs=-1,
        max_steps=-1,
        num_sanity_val_steps=0,
        gradient_clip_val=recipe.optim.grad_clip or None,
        logger=CSVLogger(run_dir, name="logs"),  # logs/version_<k>: a resumed run adds a version
        log_every_n_steps=recipe.trainer.log_every_n_steps,
        callbacks=cbs,
        enable_progress_bar=progress,
        enable_model_summary=False,
        enable_checkpointing=recipe.trainer.checkpoint,
        default_root_dir=run_dir,
    )
    kwargs.update(trainer_overrides or {})
    trainer = L.Trainer(**kwargs)
    if trainer_hook is not None:
        trainer = trainer_hook(trainer)
    wrapped = IntervalDataModule(data, module)

    summary = _summary_head(recipe, module, info, unit, total, settings)
    if recipe.init_from:  # a resumed branch goes on from its own checkpoint; the start is in its curve
        summary["init_from"] = {"checkpoint": str(recipe.init_from), "frames": branch.frames if branch else None}
    if progress and trainer.is_global_zero:
        print(_describe(summary))
    started = time.perf_counter()
    status, error = "finished", None
    try:
        if resume_from is None and recipe.eval.at_start and 0 in points:
            # the untrained model (a branch: its parent's state): the curve's start
            trainer.validate(module, datamodule=wrapped, verbose=False)
            module.clock.mark_evaluated(module.frames_seen, 0)
        trainer.fit(module, datamodule=wrapped, ckpt_path=str(resume_from) if resume_from else None)
    except NonFiniteLossError as exc:
        status, error = "failed", str(exc)
        raise
    finally:
        summary.update(_summary_tail(module, curve.points, status, error, time.perf_counter() - started))
        if trainer.is_global_zero:
            (run_dir / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=True))
    return TrainResult(run_dir=run_dir, status=status, summary=summary, curve=list(curve.points))


class BranchStart(L.Callback):
    """Starts a run from another run's checkpoint (a cooldown branch, TrainRecipe.init_from).

    Before fit: the weights, the frames and FLOPs the parent had trained (the branch's compute
    includes the prefix it shares), and the branch's evaluation points up to there marked done.
    At the start of training: the parent's optimiser state (AdamW moments). The branch keeps its
    own clock, so its learning-rate schedule reads the fraction of *its* budget already spent;
    everything else (data stream, step count, wall time) starts afresh."""

    def __init__(self, path: str | Path, module: APCModule, total: int):
        path = Path(path)
        if not path.is_file():
            raise RecipeError("init_from", f"no checkpoint at {path}")
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:
            raise RecipeError("init_from", f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})") from None
        hp, state = ckpt.get("hyper_parameters", {}), ckpt.get("apcscale")
        if state is None or "state_dict" not in ckpt:
            raise RecipeError("init_from", f"{path} is not an apcscale run's checkpoint")
        mine = {"feature_dim": module.hparams["feature_dim"], "model": module.hparams["model"]}
        theirs = {"feature_dim": hp.get("feature_dim"), "model": hp.get("model")}
        if mine != theirs:
            raise RecipeError("init_from", f"{path} holds a different model: {theirs} (this run: {mine})")
        self.frames = int(state.get("frames_seen", 0))
        if self.frames >= total:
            raise RecipeError("init_from", f"{path} has already trained {self.frames} frames, not fewer than this "
                                           f"run's budget of {total}")
        module.load_state_dict(ckpt["state_dict"])
        module.frames_seen, module.flops_seen = self.frames, float(state.get("flops_seen", 0.0))
        module.frames_executed, module.frames_tracked = (int(state.get(k, 0)) for k in ("frames_executed", "frames_tracked"))
        if module.clock is not None:
            module.clock.mark_evaluated(self.frames - 1, 0)  # points before the branch are the parent's
        self._optimizer_states = ckpt.get("optimizer_states") or []

    def on_train_start(self, trainer, pl_module) -> None:
        for optimizer, saved in zip(trainer.optimizers, self._optimizer_states):
            lrs = [g["lr"] for g in optimizer.param_groups]  # set by this run's schedule
            optimizer.load_state_dict(saved)
            for group, lr in zip(optimizer.param_groups, lrs):
                group["lr"] = lr
        self._optimizer_states = []


def _summary_head(recipe, module: APCModule, info: dict, unit: str, total: int, settings: dict) -> dict:
    return {
        "name": recipe.name,
        "arch": recipe.model.arch,
        "width": recipe.model.width,
        "depth": recipe.model.depth,
        "label": recipe.model.label,
        "N": module.size.n_context,
        "N_total": module.size.n_total,
        "flops_per_frame": module.flops_per_frame(recipe.data.crop_frames),
        "subset": info["subset"],
        "subset_frames": info["frames"],
        "subset_hours": info["frames"] / 360_000.0,
        "budget_unit": unit,
        "budget_total": total,
        "precision": settings["precision"],
        "accelerator": settings["accelerator"],
    }


def _summary_tail(module: APCModule, points: list[dict], status: str, error: str | None, seconds: float) -> dict:
    losses = [p["dev/loss"] for p in points]
    return {
        "status": status,
        "error": error,
        "frames": module.frames_seen,
        "flops": module.flops_seen,
        "executed_per_counted": module.executed_per_counted,  # frames computed on (padding included) per frame counted
        "steps": int(points[-1]["steps"]) if points else 0,
        "wall_time": module.wall_time,
        "train_time": module.train_time,
        "seconds": seconds,
        "final_dev_loss": losses[-1] if losses else math.nan,
        "min_dev_loss": min(losses) if losses else math.nan,
        "copy_baseline": points[-1]["dev/copy_baseline"] if points else math.nan,
        "curve": points,
    }


def _describe(s: dict) -> str:
    hours = s["subset_hours"]
    return (
        f"{s['name']}: {s['label']}  N={s['N']:,} (total {s['N_total']:,})  "
        f"{s['flops_per_frame'] / 1e6:.2f} MFLOP/frame  subset {s['subset']} ({s['subset_frames']:,} frames, "
        f"{hours * 60:.1f} min)  budget {s['budget_total']:,} {s['budget_unit']}  precision {s['precision']}"
    )
