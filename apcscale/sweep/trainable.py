"""The Ray Tune function trainable: one grid point = one training run.

The trial's config carries the run's complete, validated training recipe (built
by the plan). The run lives in `<sweep>/runs/<run id>/`, a directory named by
the grid point, not by the Tune trial, so a retried trial (after a crash) or a
resumed sweep (`--resume`) continues the same run from its last checkpoint
instead of starting over.

The run's status is kept by `apcscale.train.rundir.RunDir` (see there):
- its budget spent: finished;
- the scheduler returned STOP: Tune ends the trial's function by raising
  SystemExit inside its next report. Ctrl-C at the driver (or the driver
  stopping) ends in-flight trials the same way, so the two are told apart by
  the decision log: the scheduler appends its stop decision to decisions.jsonl
  before it answers STOP. A decision for this run: stopped, with the decision;
  none: interrupted, and `--resume` continues it from its last checkpoint;
- a crash (an exception, a dead worker) leaves it interrupted and propagates
  to Tune, which retries the trial up to `ray.max_failures` times, each retry
  resuming from the run's last checkpoint; then the driver records it failed
  (apcscale.sweep.progress) and the sweep goes on;
- a loss that turns NaN is a property of the run's settings, not bad luck:
  retrying from the checkpoint before it would diverge again. The run is
  recorded failed (end "diverged") and the trial ends without retry.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from apcscale.train.rundir import ENDED, RunDir


def run_dir_of(sweep_dir: str | Path, run_id: str) -> Path:
    return Path(sweep_dir) / "runs" / run_id


def scheduler_stop(sweep_dir: str | Path, run_id: str) -> dict[str, Any] | None:
    """The decision that stopped the run, if the sweep's scheduler took one (decisions.jsonl:
    a stop in "prune" or "asha" mode; "shadow" decisions stop nothing)."""
    from apcscale.sweep.scheduler import DECISIONS, DecisionLog

    for rec in reversed(DecisionLog(Path(sweep_dir) / DECISIONS).read()):
        if rec.get("run_id") == run_id and rec.get("action") == "stop" and rec.get("mode") in ("prune", "asha"):
            return rec
    return None


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
    extra = {
        "run_id": run["run_id"],
        "arch": run["arch"],
        "N": float(run["N"]),
        "D": float(run["D"]),
        "planned_flops": float(run["planned_flops"]),
    }
    policy = config.get("policy") or {}
    callback = TuneReportCallback(
        extra=extra,
        planned_flops=run["planned_flops"],
        level=policy.get("level", 0.8),
        min_points=policy.get("min_points", 6),
    )

    done = RunDir(run_dir).ended()
    if done is not None:
        # the run ended but the sweep was interrupted before Tune recorded it: report its end again
        curve = done.get("curve") or []
        if curve:
            callback.seed_curve(curve[:-1])
            callback.report_point(curve[-1])
        return

    resume, kept = RunDir(run_dir).prepare_restart()
    callback.seed_curve(kept)
    log_attempt(Path(config["sweep_dir"]), run["run_id"], resumed_at=kept[-1]["frames"] if kept else 0.0)
    recipe = from_dict(TrainRecipe, run["recipe"])
    cpus = max(1, int(run.get("cpus", 1)))
    torch.set_num_threads(cpus)

    if int(run.get("workers", 1)) > 1:
        from apcscale.train.distributed import run_training_ddp

        try:
            run_training_ddp(
                recipe,
                run_dir=run_dir,
                manifest=config["manifest"],
                num_workers=int(run["workers"]),
                use_gpu=float(run.get("gpus", 0)) > 0,
                cpus_per_worker=float(run.get("cpus", 1)),
                storage_path=Path(config["sweep_dir"]) / "ddp",
                resume=resume,
                report_to_tune=True,
                extra_metrics=extra,
            )
        except (SystemExit, KeyboardInterrupt):
            # the trial ended by Tune: its workers are torn down by Ray Train, perhaps before they
            # could record it; a scheduler stop is recorded here
            decision = scheduler_stop(config["sweep_dir"], run["run_id"])
            rd = RunDir(run_dir)
            if decision is not None and rd.status not in ENDED:
                rd.stop(decision)
            raise
        return
    try:
        run_training(
            recipe,
            run_dir=run_dir,
            manifest=config["manifest"],
            callbacks=[callback],
            progress=False,
            resume=resume,
            stopped_by=lambda: scheduler_stop(config["sweep_dir"], run["run_id"]),
        )
    except NonFiniteLossError:
        # recorded as failed in summary.json by run_training; deterministic, so no retry
        tune.report({**_last_metrics(callback), "diverged": 1.0})


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
        fh.write(
            json.dumps(
                {
                    "run_id": run_id,
                    "time": time.time(),
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "trial_id": trial_id,
                    "resumed_at_frames": resumed_at,
                }
            )
            + "\n"
        )


def _last_metrics(callback) -> dict[str, float]:
    """A closing report for a diverged run, repeating its last finite evaluation."""
    c = callback._compute[-1] if callback._compute else 0.0
    l = callback._losses[-1] if callback._losses else math.nan
    return {"dev_loss": l, "flops": c, **callback.extra}


__all__ = ["train_grid_point", "run_dir_of", "scheduler_stop"]
