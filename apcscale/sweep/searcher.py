"""The plan as a Ray Tune Searcher: starts the planned runs in order, then, as pruning
saves compute, grid points the budget had left out (the plan's backlog).

Budget ledger: a run that ended counts the FLOPs it spent, and in CPU- or GPU-hours
its planned hours scaled by the share of its planned FLOPs it spent (never the
seconds it measured: on a busy machine a run takes longer, and the same recipe
must start the same runs on a busy or an idle machine); a run that is running or
still queued counts its full planned cost. Backlog runs start in their order, a
run only when its planned cost fits what is left (so redeployment never takes the
sweep over its budget by the plan's estimates, and what starts depends only on
what the runs spent).
When the backlog is empty (or nothing fits and nothing is running that could
still save compute) the searcher reports FINISHED and the sweep ends when the
running trials do.

The state (what was suggested, what ended at what cost) is saved with Tune's
experiment checkpoints, so `--resume` neither repeats nor forgets a run.
"""

from __future__ import annotations

import math
import pickle
import time
from typing import Any

from ray.tune.search import Searcher

from apcscale.sweep.board import SweepBoard


def trial_dirname(trial) -> str:
    """Tune trial directory: the run id (the grid point) and Tune's trial id."""
    return f"{trial.config.get('run_id', 'trial')}_{trial.trial_id}"


def trial_name(trial) -> str:
    return str(trial.config.get("run_id", trial.trial_id))


class PlanSearcher(Searcher):
    def __init__(
        self,
        runs: list[dict[str, Any]],
        backlog: list[dict[str, Any]],
        budget: dict[str, float | None],
        *,
        common: dict[str, Any],
        redeploy: bool = True,
        board: SweepBoard | None = None,
        metric: str = "dev_loss",
    ):
        super().__init__(metric=metric, mode="min")
        self.meta = {r["run_id"]: r for r in [*runs, *backlog]}
        self.queue = [r["run_id"] for r in runs]
        self.backlog = [r["run_id"] for r in backlog]
        self.budget = {k: v for k, v in (budget or {}).items() if v is not None}
        self.common = dict(common)
        self.redeploy = redeploy
        self.board = board
        self.trials: dict[str, str] = {}  # trial id -> run id
        self.ended: dict[str, dict[str, float]] = {}  # run id -> actual cost
        self.redeployed: list[str] = []

    # ----- Tune's Searcher API -----
    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return (metric in (None, self._metric)) and (mode in (None, "min"))

    def suggest(self, trial_id: str):
        run_id = None
        if self.queue:
            run_id = self.queue.pop(0)
        elif self.redeploy and self.backlog:
            run_id = self._next_from_backlog()
            if run_id is None:
                return None if self._running() else Searcher.FINISHED
            self.redeployed.append(run_id)
            if self.board is not None:
                self.board.event(f"budget saved by pruning starts {run_id}")
        else:
            return Searcher.FINISHED
        self.trials[trial_id] = run_id
        if self.board is not None:
            self.board.on_queue(run_id, trial_id)
        m = self.meta[run_id]
        return {"run_id": run_id, "cpus": m["cpus"], "gpus": m["gpus"], "workers": m["workers"], **self.common}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        pass

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        run_id = self.trials.get(trial_id)
        if run_id is None:
            return
        result = result or {}
        meta = self.meta[run_id]
        flops = float(result.get("flops", math.nan))
        if not math.isfinite(flops):
            flops = meta["planned_flops"] if error else 0.0
        share = min(1.0, flops / meta["planned_flops"]) if meta["planned_flops"] > 0 else 1.0
        planned = self._cost(run_id)
        self.ended[run_id] = {
            "flops": flops,
            "cpu_hours": planned["cpu_hours"] * share,
            "gpu_hours": planned["gpu_hours"] * share,
            "time": time.time(),
        }

    # ----- the ledger -----
    def _running(self) -> list[str]:
        return [r for r in self.trials.values() if r not in self.ended]

    def _cost(self, run_id: str) -> dict[str, float]:
        m = self.meta[run_id]
        return {
            "flops": m["planned_flops"],
            "cpu_hours": m["est_seconds"] * m["cpus"] * m["workers"] / 3600.0,
            "gpu_hours": m["est_seconds"] * m["gpus"] * m["workers"] / 3600.0,
        }

    def committed(self) -> dict[str, float]:
        total = {"flops": 0.0, "cpu_hours": 0.0, "gpu_hours": 0.0}
        for run_id in [*self.trials.values(), *self.queue]:
            cost = self.ended.get(run_id) or self._cost(run_id)
            for k in total:
                total[k] += cost[k]
        return total

    def _next_from_backlog(self) -> str | None:
        if not self.budget:
            return self.backlog.pop(0) if self.backlog else None
        used = self.committed()
        run_id = self.backlog[0]  # in order: a later, cheaper run never jumps the queue
        cost = self._cost(run_id)
        if all(used[k] + cost[k] <= limit for k, limit in self.budget.items()):
            return self.backlog.pop(0)
        return None

    # ----- persistence (Tune calls these with its experiment checkpoints) -----
    def get_state(self) -> dict:
        return {
            "queue": self.queue,
            "backlog": self.backlog,
            "trials": self.trials,
            "ended": self.ended,
            "redeployed": self.redeployed,
        }

    def set_state(self, state: dict) -> None:
        self.queue, self.backlog = list(state["queue"]), list(state["backlog"])
        self.trials, self.ended = dict(state["trials"]), dict(state["ended"])
        self.redeployed = list(state.get("redeployed", []))
        if self.board is not None:
            for trial_id, run_id in self.trials.items():
                self.board.trial_to_run[trial_id] = run_id

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as fh:
            pickle.dump(self.get_state(), fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.set_state(pickle.load(fh))


__all__ = ["PlanSearcher", "trial_dirname", "trial_name"]
