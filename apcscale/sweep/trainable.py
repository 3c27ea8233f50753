"""The Ray Tune function trainable: one grid point = one training run.

The trial's config carries the run's complete, validated training recipe (built
by the plan). The run lives in `<sweep>/runs/<run id>/`, a directory named by
the grid point, not by the Tune trial, so a retried trial (after a crash) or a
resumed sweep (`--resume`) continues the same run from its last checkpoint
instead of starting over.

Failures:
- a crash (an exception, a dead worker) propagates to Tune, which retries the
  trial up to `ray.max_failures` times, each retry resuming from the run's
  last checkpoint, then records it as errored; the sweep goes on;
- a loss that turns NaN is a property of the run's settings, not bad luck:
  retrying from the checkpoint before it would diverge again. The run's
  summary.json says "failed" with the reason, and the trial ends without retry.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from pathlib import Path
from typing import Any



def run_dir_of(sweep_dir: str | Path, run_id: str) -> Path:
    return Path(sweep_dir) / "runs" / run_id


def _checkpoint_frames(ckpt: Path) -> float | None:
    import torch

    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
    except Exception:
        return None
    return float(state.get("apcscale", {}).get("frames_seen", math.nan))


def prepare_resume(run_dir: Path) -> tuple[bool, list[dict[str, float]]]:
    """Make a run directory ready to (re)start: (resume?, curve points kept).

    With a last checkpoint, evaluations recorded after it (the process died between
    writing the curve and the checkpoint) are dropped, since they will be redone. Without one,
    whatever a dead attempt left is cleared, so the run starts clean.
    """
    last = run_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        if run_dir.exists():
            shutil.rmtree(run_dir)
        return False, []
    frames = _checkpoint_frames(last)
    if frames is None:  # a torn checkpoint: start over
        shutil.rmtree(run_dir)
        return False, []
    curve = run_dir / "curve.csv"
    kept: list[dict[str, float]] = []
    if curve.is_file():
        with curve.open() as fh:
            reader = csv.DictReader(fh)
            fields = reader.fieldnames or []
            rows = list(reader)
        kept_rows = [row for row in rows if float(row["frames"]) <= frames + 0.5]
        if len(kept_rows) != len(rows):
            with curve.open("w", newline="") as fh:
                writer = csv.DictWriter(fh, fieldnames=fields)
                writer.writeheader()
                writer.writerows(kept_rows)
        kept = [{k: float(v) for k, v in row.items()} for row in kept_rows]
    return True, kept


def finished_summary(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "summary.json"
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    return summary if summary.get("status") in ("finished", "failed", "stopped") else None


def load_planned_run(sweep_dir: str | Path, run_id: str) -> dict[str, Any]:
    """A run of the sweep's plan.json (recipe, counts, resources)."""
    from apcscale.sweep.plan import Plan

    return Plan.load(Path(sweep_dir) / "plan.json").run(run_id).to_dict()


def train_grid_point(config: dict[str, Any]) -> None:
    """Tune function trainable. config: run_id, sweep_dir, manifest, policy (level, min_points), resources."""
    import torch
    from ray import tune

    from apcscale.models.apc import NonFiniteLossError
    from apcscale.sweep.callback import TuneReportCallback
    from apcscale.train.config import TrainRecipe
    from apcscale.train.run import run_training
    from apcscale.utils.schema import from_dict

    run = config.get("run") or load_planned_run(config["sweep_dir"], config["run_id"])
    run_dir = run_dir_of(config["sweep_dir"], run["run_id"])
    extra = {"run_id": run["run_id"], "arch": run["arch"], "N": float(run["N"]), "D": float(run["D"]),
             "planned_flops": float(run["planned_flops"])}
    policy = config.get("policy") or {}
    callback = TuneReportCallback(extra=extra, planned_flops=run["planned_flops"],
                                  level=policy.get("level", 0.8), min_points=policy.get("min_points", 6))

    done = finished_summary(run_dir)
    if done is not None:
        # the run ended but the sweep was interrupted before Tune recorded it: report its end again
        curve = done.get("curve") or []
        if curve:
            callback.seed_curve(curve[:-1])
            callback.report_point(curve[-1])
        return

    resume, kept = prepare_resume(run_dir)
    callback.seed_curve(kept)
    log_attempt(Path(config["sweep_dir"]), run["run_id"], resumed_at=kept[-1]["frames"] if kept else 0.0)
    recipe = from_dict(TrainRecipe, run["recipe"])
    cpus = max(1, int(run.get("cpus", 1)))
    torch.set_num_threads(cpus)

    if int(run.get("workers", 1)) > 1:
        from apcscale.train.distributed import run_training_ddp

        run_training_ddp(
            recipe, run_dir=run_dir, manifest=config["manifest"], num_workers=int(run["workers"]),
            use_gpu=float(run.get("gpus", 0)) > 0, cpus_per_worker=float(run.get("cpus", 1)),
            storage_path=Path(config["sweep_dir"]) / "ddp", resume=resume, report_to_tune=True,
            extra_metrics=extra,
        )
        return
    try:
        run_training(recipe, run_dir=run_dir, manifest=config["manifest"], callbacks=[callback],
                     progress=False, resume=resume)
    except NonFiniteLossError:
        # recorded as failed in summary.json by run_training; deterministic, so no retry
        tune.report({**_last_metrics(callback), "diverged": 1.0})
    except SystemExit:
        # Tune ends a stopped trial's function by raising SystemExit inside its next report
        mark_stopped(run_dir)
        raise


def log_attempt(sweep_dir: Path, run_id: str, resumed_at: float) -> None:
    """One line per attempt at a run in <sweep>/attempts.jsonl: which process on which machine, from where."""
    import os
    import socket
    import time

    try:
        from ray import tune

        trial_id = tune.get_context().get_trial_id()
    except Exception:  # outside a Tune trial
        trial_id = None
    with (Path(sweep_dir) / "attempts.jsonl").open("a") as fh:
        fh.write(json.dumps({"run_id": run_id, "time": time.time(), "pid": os.getpid(), "host": socket.gethostname(),
                             "trial_id": trial_id, "resumed_at_frames": resumed_at}) + "\n")


def mark_stopped(run_dir: Path) -> None:
    """A run the scheduler stopped: its summary says so (run_training wrote "finished" on the way out)."""
    path = run_dir / "summary.json"
    try:
        summary = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return
    if summary.get("status") == "finished":
        summary.update(status="stopped", error="stopped by the sweep's scheduler (pruned)")
        path.write_text(json.dumps(summary, indent=2, allow_nan=True))


def _last_metrics(callback) -> dict[str, float]:
    """A closing report for a diverged run, repeating its last finite evaluation."""
    c = callback._compute[-1] if callback._compute else 0.0
    l = callback._losses[-1] if callback._losses else math.nan
    return {"dev_loss": l, "flops": c, **callback.extra}


__all__ = ["train_grid_point", "run_dir_of", "prepare_resume", "finished_summary"]
