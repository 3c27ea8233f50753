"""Run a planned sweep on Ray Tune: one Tuner over the grid, one trial per run.

    <sweep dir>/
      recipe.yaml        the sweep recipe as run (every default filled in)
      plan.json          the plan: runs in launch order with their recipes and cost estimates, the backlog
      decisions.jsonl    every pruning decision with its numbers (and, in shadow mode, what would have been)
      runs/<run id>/     each run's training directory (curve.csv, summary.json, checkpoints/)
      tune/              Ray Tune's experiment state (what --resume restores)
      results/           tables, fits, plots and report.txt (apcscale.sweep.results)

Ray: a local instance by default (`ray.num_cpus`/`num_gpus` cap what it may
use), or an existing cluster with `address` (then `output_dir` must be on a
filesystem every node sees: the runs write there and resume from there).
Trials get the resources of their run (`resources`, possibly set per size by
rules): CPUs, GPUs or fractions of a GPU, or a placement group of DDP workers.
A crashed trial is retried `ray.max_failures` times from its last checkpoint,
then recorded as failed; the sweep goes on.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apcscale.sweep.board import SweepBoard
from apcscale.sweep.plan import Plan
from apcscale.sweep.recipe import SweepRecipe

TUNE_DIR = "tune"


class SweepStateError(RuntimeError):
    """The sweep directory does not match what was asked (nothing to resume, or a different sweep there)."""


@dataclass
class SweepOutcome:
    sweep_dir: Path
    board: SweepBoard
    interrupted: bool
    errors: dict[str, str]
    redeployed: list[str]


def trial_resources(config: dict[str, Any]):
    """Tune resource request of one trial, from its run's resources (set by the plan)."""
    from ray.tune import PlacementGroupFactory

    cpus, gpus, workers = float(config["cpus"]), float(config["gpus"]), int(config["workers"])
    if workers <= 1:
        return PlacementGroupFactory([{"CPU": cpus, **({"GPU": gpus} if gpus else {})}])
    # DDP: the trial is only the driver of a Ray Train run, which acquires its workers' CPUs and
    # GPUs itself (Ray Train V2 inside Tune); ray.max_concurrent keeps such drivers from piling up
    return PlacementGroupFactory([{"CPU": 1.0}])


class ClusterConnectionError(ConnectionError):
    """The existing Ray cluster named by --address / ray.address could not be joined."""


def _auth_hint() -> str:
    """Why joining an existing cluster may fail on Ray's token authentication, and what to do."""
    if os.environ.get("RAY_AUTH_MODE") == "token":
        return (
            "This driver sent Ray's auth token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token): "
            "it must be the cluster's (`ray get-auth-token` on the head). "
        )
    local = (Path.home() / ".ray" / "auth_token").is_file()
    return (
        "If the cluster uses token authentication (since Ray 2.59 `ray start --head` turns it on where "
        "~/.ray/auth_token exists), Ray sends a token to an address named explicitly only with "
        "RAY_AUTH_MODE=token set: export RAY_AUTH_MODE=token"
        + (
            " (this machine's ~/.ray/auth_token is sent; if it is not the cluster's, also export "
            "RAY_AUTH_TOKEN=<`ray get-auth-token` on the head>)"
            if local
            else " and RAY_AUTH_TOKEN=<`ray get-auth-token` on the head>"
        )
        + ", or run with --address auto on a node of the cluster. "
    )


def init_ray(recipe: SweepRecipe, address: str | None = None) -> dict[str, float]:
    """Connect to a cluster or start a quiet local Ray; returns the cluster's CPUs and GPUs."""
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # Tune's own reporter off (verbose=0): our table shows progress
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\..*")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"ray\..*")
    address = address or recipe.ray.address
    if address and address.startswith("ray://"):
        # a Ray Client driver runs off the cluster: it needs ray[client] (grpcio), which the pinned set
        # leaves out, and it would not see the runs' files, which the trials write on the cluster
        raise ClusterConnectionError(
            f"{address!r} is a Ray Client address, which this sweep does not use: run the sweep on a node of "
            f"the cluster (or in its `sweep` container) with --address auto or --address <head>:6379, with "
            f"output_dir on storage every node sees. See docs/cluster.md."
        )
    if not ray.is_initialized():
        kwargs: dict[str, Any] = dict(
            include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING, configure_logging=True
        )
        if address:
            try:
                ray.init(address=address, **kwargs)
            except ConnectionError as exc:
                raise ClusterConnectionError(
                    f"could not connect to the Ray cluster at {address!r} ({exc}). Is it running (`ray status "
                    f"--address={address}` on one of its nodes)? " + _auth_hint() + "See docs/cluster.md."
                ) from exc
        else:
            # the project root on workers' sys.path too (a checkout run without `pip install -e .`)
            root = str(Path(__file__).resolve().parents[2])
            env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}}
            ray.init(num_cpus=recipe.ray.num_cpus, num_gpus=recipe.ray.num_gpus, runtime_env=env, **kwargs)
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    # a crashed trial: the progress shows one line (retrying / failed) and the run records its error;
    # the traceback Tune logs for it would bury them (it stays in the trial's error.txt under tune/)
    controller = logging.getLogger("ray.tune.execution.tune_controller")
    if not any(isinstance(f, _TrialTaskFailed) for f in controller.filters):
        controller.addFilter(_TrialTaskFailed())
    res = ray.cluster_resources()
    return {"cpus": float(res.get("CPU", 0.0)), "gpus": float(res.get("GPU", 0.0))}


class _TrialTaskFailed(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Trial task failed for trial")


def make_scheduler(recipe: SweepRecipe, plan: Plan, sweep_dir: Path, board: SweepBoard, pruning: str):
    from apcscale.sweep.scheduler import FrontierScheduler, LoggedASHA

    planned = {r.run_id: r.planned_flops for r in [*plan.runs, *plan.backlog]}
    cfg = recipe.pruning
    if pruning == "asha":
        flops = [r.planned_flops for r in plan.runs]
        return LoggedASHA(
            sweep_dir=sweep_dir,
            planned=planned,
            board=board,
            grace_period=cfg.min_fraction * min(flops),
            max_t=max(flops),
            reduction_factor=cfg.asha.reduction_factor,
            brackets=cfg.asha.brackets,
        )
    from apcscale.sweep.plan import cooldown_start, plan_twins

    cooldown = {r.run_id: cooldown_start(r.recipe) for r in [*plan.runs, *plan.backlog]}
    groups = {r.run_id: r.arch for r in [*plan.runs, *plan.backlog]}
    return FrontierScheduler(
        cfg.policy_config(),
        sweep_dir=sweep_dir,
        planned=planned,
        cooldown=cooldown,
        groups=groups,
        twins=plan_twins(plan),
        prune=(pruning == "frontier"),
        board=board,
    )


def run_sweep(
    recipe: SweepRecipe,
    plan: Plan,
    sweep_dir: str | Path,
    *,
    resume: bool = False,
    address: str | None = None,
    pruning: str | None = None,
    progress: bool | None = None,
    on_ready: Callable[[dict], None] | None = None,
) -> SweepOutcome:
    """Run (or, with resume, continue) the sweep; returns when every trial has ended or on Ctrl-C."""
    from ray import tune

    from apcscale.sweep.progress import SweepProgress
    from apcscale.sweep.searcher import PlanSearcher, trial_dirname, trial_name
    from apcscale.sweep.status import RunStatusCallback, mark_failed
    from apcscale.sweep.trainable import train_grid_point

    sweep_dir = Path(sweep_dir).resolve()
    pruning = pruning or recipe.pruning.policy
    tune_dir = sweep_dir / TUNE_DIR
    capacity = init_ray(recipe, address)
    if on_ready is not None:
        on_ready(capacity)

    trainable = tune.with_resources(train_grid_point, trial_resources)
    if resume:
        if not tune.Tuner.can_restore(str(tune_dir)):
            raise SweepStateError(f"nothing to resume in {sweep_dir} (no Tune experiment state in {tune_dir})")
        tuner = tune.Tuner.restore(str(tune_dir), trainable=trainable, resume_unfinished=True, resume_errored=False)
        board = _restored_board(tuner) or SweepBoard([_meta(r) for r in plan.runs], [_meta(r) for r in plan.backlog])
        _sync_board_from_disk(board, sweep_dir)
    else:
        board = SweepBoard([_meta(r) for r in plan.runs], [_meta(r) for r in plan.backlog])
        common = {
            "sweep_dir": str(sweep_dir),
            "manifest": plan.manifest,
            "policy": {"level": recipe.pruning.level, "min_points": recipe.pruning.min_points},
        }
        searcher = PlanSearcher(
            [_meta(r) for r in plan.runs],
            [_meta(r) for r in plan.backlog],
            plan.budget,
            common=common,
            redeploy=recipe.pruning.redeploy,
            board=board,
        )
        scheduler = make_scheduler(recipe, plan, sweep_dir, board, pruning)
        show = SweepProgress(
            board,
            sweep_dir,
            title=f"sweep {recipe.name} ({pruning} pruning)",
            live=None if progress is None else progress,
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                scheduler=scheduler,
                num_samples=len(plan.runs) + len(plan.backlog),
                max_concurrent_trials=recipe.ray.max_concurrent,
                reuse_actors=True,
                trial_name_creator=trial_name,
                trial_dirname_creator=trial_dirname,
            ),
            run_config=tune.RunConfig(
                name=TUNE_DIR,
                storage_path=str(sweep_dir),
                failure_config=tune.FailureConfig(max_failures=recipe.ray.max_failures),
                callbacks=[RunStatusCallback(sweep_dir), show],
                verbose=0,
                log_to_file=True,
                checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False),
            ),
        )
    interrupted = False
    try:
        grid = tuner.fit()
    except KeyboardInterrupt:
        interrupted, grid = True, None
    errors: dict[str, str] = {}
    if grid is not None:
        for res in grid:
            if res.error is not None:
                run_id = (res.config or {}).get("run_id", "?")
                errors[run_id] = f"{type(res.error).__name__}: {str(res.error).strip().splitlines()[-1][:300]}"
                if run_id != "?":
                    mark_failed(sweep_dir, run_id, errors[run_id])  # also a trial restored as errored
        interrupted = interrupted or any(
            st.status in ("queued", "running", "planned", "interrupted") for st in board.runs.values()
        )
    searcher_now = _find_searcher(tuner)
    return SweepOutcome(
        sweep_dir=sweep_dir,
        board=board,
        interrupted=interrupted,
        errors=errors,
        redeployed=list(getattr(searcher_now, "redeployed", []) or []),
    )


def _meta(r) -> dict[str, Any]:
    d = r.to_dict()
    d.pop("recipe", None)
    return d


def _find_searcher(tuner):
    try:
        alg = tuner._local_tuner._tune_config.search_alg  # noqa: SLF001 - read-only look at our own searcher
    except AttributeError:
        return None
    while alg is not None and not hasattr(alg, "redeployed"):
        alg = getattr(alg, "searcher", None)
    return alg


def _restored_board(tuner) -> SweepBoard | None:
    alg = _find_searcher(tuner)
    return getattr(alg, "board", None)


def _sync_board_from_disk(board: SweepBoard, sweep_dir: Path) -> None:
    """After --resume: runs that ended in the interrupted session show as such (their run
    directories say so); interrupted ones wait to be continued."""
    from apcscale.sweep.scheduler import DECISIONS, DecisionLog
    from apcscale.train.rundir import ENDED, RunDir

    stopped = {
        rec["run_id"]: rec
        for rec in DecisionLog(sweep_dir / DECISIONS).read()
        if rec.get("action") == "stop" and rec.get("mode") in ("prune", "asha")
    }
    for run_id, st in board.runs.items():
        status = RunDir(sweep_dir / "runs" / run_id).status
        if status in ENDED:
            st.status = "pruned" if status == "stopped" else status
            if run_id in stopped:
                st.decision = stopped[run_id]
        elif st.status in ("finished", "pruned", "failed", "interrupted", "running", "queued"):
            st.status = "planned"  # not ended: the resumed sweep continues it


__all__ = [
    "run_sweep",
    "init_ray",
    "ClusterConnectionError",
    "trial_resources",
    "SweepOutcome",
    "SweepStateError",
    "TUNE_DIR",
]
