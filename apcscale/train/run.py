"""One training run: recipe in, learning curve, checkpoints and a summary out.

    run_dir/
      summary.json      N, C, D, status and why it ended, final and best dev loss, the whole curve
      curve.csv         one row per dev evaluation (frames, FLOPs, steps, wall time, dev loss)
      logs/version_k/   Lightning's CSVLogger (metrics.csv: train loss per step, dev metrics per
                        evaluation; hparams.yaml); each resume of the run adds a version
      tensorboard/      with trainer.loggers [csv, tensorboard]: TensorBoard event files, likewise
                        (apcscale.train.loggers: csv, tensorboard, mlflow)
      recipe.yaml       the validated recipe, with every default filled in
      checkpoints/      last.ckpt and best.ckpt (lowest dev loss)

summary.json and curve.csv are read and written only through `apcscale.train.rundir.RunDir`,
which owns the run's status: running from the start; finished only when the budget is spent;
failed (end "diverged") when the loss turns NaN; interrupted, with the error, on any other
exception or a signal (Ctrl-C, SIGTERM); stopped when the caller's `stopped_by` names the
scheduler decision that ended it.

Used by `python -m apcscale.recipes.train` and, inside Ray Tune trials, by the sweep.
"""

from __future__ import annotations

import hashlib
import math
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint

from apcscale.models.apc import APCModule, NonFiniteLossError
from apcscale.train.budget import evaluation_points
from apcscale.train.callbacks import CurveRecorder, FramesProgressBar
from apcscale.train.config import DataConfig, TrainerConfig, TrainRecipe
from apcscale.train.loggers import build_loggers
from apcscale.train.loop import IntervalDataModule
from apcscale.train.rundir import RunDir, RunDirError  # noqa: F401 - RunDirError: part of this API
from apcscale.train.stopping import EarlyStopping, stopping_summary
from apcscale.utils.log import get_logger
from apcscale.utils.schema import RecipeError, to_dict

_log = get_logger(__name__)

# the module's on_before_batch_transfer (FLOP counting on CPU lengths) is meant to run with a datamodule
warnings.filterwarnings("ignore", message=r".*overridden `on_before_batch_transfer`.*")


@dataclass
class TrainResult:
    run_dir: Path
    status: str  # finished (the only status a run_training that returns can leave)
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
    stopped_by: Callable[[], dict[str, Any] | None] | None = None,
) -> TrainResult:
    """Train one APC model as the recipe says; returns when its budget is spent (status finished).

    Anything else that ends training propagates, after the run's summary records it: a NaN
    loss raises NonFiniteLossError (status failed), any other exception or a signal leaves the
    run interrupted (resumable with resume=True). `stopped_by`, asked when training is ended by
    a SystemExit or KeyboardInterrupt (how Ray Tune ends a trial), returns the scheduler's
    decision if it was one (status stopped) or None (interrupted). Everything already written
    (curve, checkpoints, logs) stays."""
    run_dir = Path(run_dir) if run_dir is not None else Path(recipe.output_dir) / recipe.name
    run = RunDir(run_dir)
    manifest = Path(manifest) if manifest is not None else resolve_manifest(recipe.data, progress=progress)
    if primary:  # one process of a multi-process run owns the directory
        resume_from = run.prepare(resume, overwrite)
        (run_dir / "recipe.yaml").write_text(yaml.safe_dump(to_dict(recipe), sort_keys=False))
    else:
        resume_from = run.last_checkpoint if resume and run.last_checkpoint.is_file() else None

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
    curve = CurveRecorder(run)
    if resume_from is not None:
        curve.load_existing()
    cbs: list[L.Callback] = [curve]
    if recipe.stopping.enabled:  # after the curve is recorded, before anyone reports the evaluation
        cbs.append(EarlyStopping(recipe.stopping, recipe.optim.schedule, recipe.optim.decay))
    cbs += list(callbacks)
    branch = None
    if recipe.init_from and resume_from is None:  # a resumed branch has its own last.ckpt
        branch = BranchStart(recipe.init_from, module, total)
        cbs.append(branch)
    if recipe.trainer.checkpoint:
        cbs.append(
            ModelCheckpoint(
                dirpath=run_dir / "checkpoints",
                filename="best",
                monitor="dev/loss",
                mode="min",
                save_top_k=1,
                save_last=True,
                enable_version_counter=False,
            )
        )
    if progress:
        cbs.append(FramesProgressBar(label=recipe.name))
    settings = trainer_settings(recipe.trainer)
    kwargs: dict[str, Any] = dict(
        **settings,
        max_epochs=-1,
        max_steps=-1,
        num_sanity_val_steps=0,
        gradient_clip_val=recipe.optim.grad_clip or None,
        logger=build_loggers(recipe.trainer.loggers, run_dir, experiment=recipe.name) or False,
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
        _log.info(_describe(summary))
    owner = trainer.is_global_zero  # one process of a multi-process run writes the summary
    if owner:
        run.start(**summary)
    started = time.perf_counter()

    def record(end_status: str, **fields: Any) -> dict[str, Any]:
        summary.update(_summary_tail(module, curve.points, time.perf_counter() - started))
        # why a finished run ended: its budget, or (stopping rule on) the rule or its cap; converged or not
        ends = stopping_summary(module, recipe.stopping, reached_end=end_status == "finished")
        summary.update({k: v for k, v in ends.items() if k != "end"})
        if end_status == "finished":
            fields["end"] = ends["end"] or "budget"
        if not owner:
            return summary
        if end_status == "finished":
            return run.finish(**summary, **fields)
        if end_status == "stopped":
            return run.stop(**summary, **fields)
        if end_status == "failed":
            return run.fail(**summary, **fields)
        return run.interrupt(**summary, **fields)

    try:
        if resume_from is None and recipe.eval.at_start and 0 in points:
            # the untrained model (a branch: its parent's state): the curve's start
            trainer.validate(module, datamodule=wrapped, verbose=False)
            module.clock.mark_evaluated(module.frames_seen, 0)
        trainer.fit(module, datamodule=wrapped, ckpt_path=str(resume_from) if resume_from else None)
    except NonFiniteLossError as exc:
        record("failed", error=str(exc), end="diverged")
        raise
    except Exception as exc:
        record("interrupted", error=f"{type(exc).__name__}: {exc}", end="error")
        raise
    except BaseException as exc:  # SystemExit, KeyboardInterrupt: a signal, or Ray Tune ending the trial
        if _budget_spent(module, trainer):
            record("finished")
        else:
            decision = stopped_by() if stopped_by is not None else None
            if decision is not None:
                record("stopped", decision=decision)
            else:
                record("interrupted", error=_interruption(exc, stopped_by is not None), end="signal")
        raise
    if _budget_spent(module, trainer):  # its budget, or the end of the cooldown its stopping rule set
        final = record("finished")
    else:  # the trainer returned early, and nothing said why
        record(
            "interrupted",
            end="error",
            error=f"training ended at {module.frames_seen:,} frames, before its budget of {total:,} {unit}",
        )
        raise RuntimeError(
            f"{recipe.name}: training ended before its budget was spent; the run is recorded "
            f"as interrupted in {run.summary_path}"
        )
    return TrainResult(run_dir=run_dir, status=final.get("status", "finished"), summary=final, curve=list(curve.points))


def _budget_spent(module: APCModule, trainer: L.Trainer) -> bool:
    """The run trained its whole budget (and its final evaluation was made)."""
    clock = module.clock
    if clock is None:
        return False
    return clock.done(module.frames_seen, trainer.global_step) and clock.next_index >= len(clock.points)


def _interruption(exc: BaseException, in_sweep: bool) -> str:
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    if isinstance(exc, SIGTERMException):
        return "interrupted by SIGTERM"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted by Ctrl-C (SIGINT)"
    if in_sweep:
        return "interrupted: the sweep ended the trial without a scheduler decision (Ctrl-C or the driver stopping)"
    code = getattr(exc, "code", None)
    return f"interrupted ({type(exc).__name__}{'' if code is None else f' {code}'}: Ctrl-C, or a signal)"


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
            raise RecipeError(
                "init_from", f"{path} is not a readable checkpoint ({type(exc).__name__}: {exc})"
            ) from None
        hp, state = ckpt.get("hyper_parameters", {}), ckpt.get("apcscale")
        if state is None or "state_dict" not in ckpt:
            raise RecipeError("init_from", f"{path} is not an apcscale run's checkpoint")
        mine = {"feature_dim": module.hparams["feature_dim"], "model": module.hparams["model"]}
        theirs = {"feature_dim": hp.get("feature_dim"), "model": hp.get("model")}
        if mine != theirs:
            raise RecipeError("init_from", f"{path} holds a different model: {theirs} (this run: {mine})")
        self.frames = int(state.get("frames_seen", 0))
        if self.frames >= total:
            raise RecipeError(
                "init_from",
                f"{path} has already trained {self.frames} frames, not fewer than this run's budget of {total}",
            )
        module.load_state_dict(ckpt["state_dict"])
        module.frames_seen, module.flops_seen = self.frames, float(state.get("flops_seen", 0.0))
        module.frames_executed, module.frames_tracked = (
            int(state.get(k, 0)) for k in ("frames_executed", "frames_tracked")
        )
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


def _summary_tail(module: APCModule, points: list[dict], seconds: float) -> dict:
    losses = [p["dev/loss"] for p in points]
    finite = [x for x in losses if math.isfinite(x)]
    return {
        "frames": module.frames_seen,
        "flops": module.flops_seen,
        "executed_per_counted": module.executed_per_counted,  # frames computed on (padding included) per frame counted
        "steps": int(points[-1]["steps"]) if points else 0,
        "wall_time": module.wall_time,
        "train_time": module.train_time,
        "seconds": seconds,
        "final_dev_loss": losses[-1] if losses else math.nan,
        "min_dev_loss": min(finite) if finite else math.nan,
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
