"""Ray Tune schedulers of a sweep: the frontier policy, and ASHA for comparison.

`FrontierScheduler` wraps `apcscale.sweep.policy.FrontierPolicy` (framework-free)
in Tune's scheduler interface. It sees every evaluation of every trial
(`_supports_buffered_results = False`), feeds it to the policy, returns STOP
when the policy says so, and appends every decision, with its numbers, to
`<sweep>/decisions.jsonl`. With `prune=False` (recipe `pruning.policy: off`) it
runs in the shadow: the decisions are logged as they would have been taken and
nothing is stopped, which gives ground truth and its would-be savings at once.

Tune does not save schedulers with its experiment state, so after `--resume`
the scheduler rebuilds its state from the sweep directory: every run's
curve.csv (the learning curves so far) and decisions.jsonl (runs already
stopped).

`LoggedASHA` is Ray Tune's AsyncHyperBandScheduler with the same time axis
(training FLOPs) and the same decision log, for the comparison in
benchmarks/bench_sweep.py.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler, TrialScheduler

from apcscale.sweep.board import SweepBoard
from apcscale.sweep.policy import Decision, FrontierPolicy, PolicyConfig

DECISIONS = "decisions.jsonl"


class DecisionLog:
    """Append-only JSON lines, one per decision (flushed at once: a killed driver loses nothing)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def write(self, record: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write(json.dumps(record, allow_nan=False, default=_json_default) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line torn by a kill
        return out


def _json_default(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}


def read_curve_csv(path: Path) -> list[tuple[float, float]]:
    """(FLOPs, dev loss) of every evaluation in a run's curve.csv (read by its RunDir)."""
    from apcscale.train.rundir import RunDir

    return [(p["flops"], p["dev/loss"]) for p in RunDir(Path(path).parent).read_curve()]


class FrontierScheduler(FIFOScheduler):
    """Stops a trial once its run is predicted, with confidence, to stay above the frontier."""

    _supports_buffered_results = False

    def __init__(
        self,
        policy: PolicyConfig,
        *,
        sweep_dir: str | Path,
        planned: dict[str, float],
        prune: bool = True,
        cooldown: dict[str, float | None] | None = None,
        groups: dict[str, str] | None = None,
        twins: dict[str, list[str]] | None = None,
        board: SweepBoard | None = None,
        metric: str = "dev_loss",
        time_attr: str = "flops",
    ):
        super().__init__()
        self.policy_config = policy
        self.sweep_dir = Path(sweep_dir)
        self.planned = dict(planned)
        self.cooldown = dict(cooldown or {})
        self.groups = dict(groups or {})
        self.twins = dict(twins or {})
        self.prune = prune
        self.board = board
        self._metric = metric
        self.time_attr = time_attr
        self.log = DecisionLog(self.sweep_dir / DECISIONS)
        self.policy: FrontierPolicy | None = None
        self.n_stopped = 0

    # Tune passes the TuneConfig's metric/mode; accept them only if they agree
    def set_search_properties(self, metric, mode, **spec) -> bool:
        return (metric in (None, self._metric)) and (mode in (None, "min"))

    def _ensure_policy(self) -> FrontierPolicy:
        if self.policy is None:
            self.policy = FrontierPolicy(self.policy_config)
            for run_id, planned in self.planned.items():
                self.policy.register(
                    run_id, planned, self.cooldown.get(run_id), self.groups.get(run_id), self.twins.get(run_id, ())
                )
            self._sync_from_disk()
        return self.policy

    def _sync_from_disk(self) -> None:
        """After --resume: the curves and stops of the interrupted session."""
        assert self.policy is not None
        for run_id in self.planned:
            for c, l in read_curve_csv(self.sweep_dir / "runs" / run_id / "curve.csv"):
                self.policy.observe(run_id, c, l)
        for rec in self.log.read():
            if rec.get("action") == "stop" and rec.get("run_id") in self.planned:
                self.policy.stopped[rec["run_id"]] = Decision.from_dict(rec)
                if self.board is not None and rec.get("mode") == "prune":
                    self.board.on_decision(rec["run_id"], rec)

    def on_trial_add(self, tune_controller, trial) -> None:
        self._ensure_policy()

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        policy = self._ensure_policy()
        run_id = result.get("run_id") or trial.config.get("run_id")
        if run_id is None or run_id not in policy.planned:
            return TrialScheduler.CONTINUE
        compute, loss = result.get(self.time_attr), result.get(self._metric)
        if compute is None or loss is None or result.get("diverged"):
            return TrialScheduler.CONTINUE
        already = run_id in policy.stopped
        if not policy.observe(run_id, compute, loss) or compute <= 0:
            return TrialScheduler.STOP if (already and self.prune) else TrialScheduler.CONTINUE
        if (result.get("final") or result.get("converging")) and not already:
            # its last evaluation, or converging to its end after its stopping rule fired: a stop here
            # would save nothing and would turn a converged loss into a censored one
            return TrialScheduler.CONTINUE
        decision = policy.decide(run_id)
        if already:  # shadow mode: logged once, when first taken
            return TrialScheduler.CONTINUE if not self.prune else TrialScheduler.STOP
        record = {"mode": "prune" if self.prune else "shadow", "trial_id": trial.trial_id, **decision.to_dict()}
        self.log.write(_clean(record))
        if self.board is not None and run_id in self.board.runs:
            self.board.runs[run_id].decision = record
        if decision.action == "stop":
            if self.prune:
                self.n_stopped += 1
                if self.board is not None:
                    self.board.on_decision(run_id, record)
                return TrialScheduler.STOP
            if self.board is not None:
                self.board.event(f"(shadow) would prune {run_id}: {decision.reason}")
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        mode = "pruning" if self.prune else "shadow (nothing stopped)"
        return f"Frontier scheduler, {mode}: {self.n_stopped} runs stopped"

    def __getstate__(self):
        state = self.__dict__.copy()
        state["policy"] = None  # rebuilt from the sweep directory
        return state


class LoggedASHA(AsyncHyperBandScheduler):
    """Ray Tune's ASHA on the training-compute axis, logging its stops like the frontier scheduler."""

    _supports_buffered_results = False

    def __init__(
        self,
        *,
        sweep_dir: str | Path,
        planned: dict[str, float],
        board: SweepBoard | None = None,
        grace_period: float,
        max_t: float,
        reduction_factor: float = 4.0,
        brackets: int = 1,
        metric: str = "dev_loss",
        time_attr: str = "flops",
    ):
        super().__init__(
            time_attr=time_attr,
            metric=metric,
            mode="min",
            max_t=max_t,
            grace_period=grace_period,
            reduction_factor=reduction_factor,
            brackets=brackets,
        )
        self.log = DecisionLog(Path(sweep_dir) / DECISIONS)
        self.planned = dict(planned)
        self.board = board

    def set_search_properties(self, metric, mode, **spec) -> bool:
        return (metric in (None, self._metric)) and (mode in (None, "min"))

    def on_trial_add(self, tune_controller, trial) -> None:
        if trial.trial_id not in self._trial_info:
            super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if trial.trial_id not in self._trial_info:  # a trial restored after --resume
            super().on_trial_add(tune_controller, trial)
        if result.get("diverged"):
            return TrialScheduler.CONTINUE
        action = super().on_trial_result(tune_controller, trial, result)
        run_id = result.get("run_id") or trial.config.get("run_id")
        compute = float(result.get(self._time_attr, math.nan))
        planned = self.planned.get(run_id, math.nan)
        if action == TrialScheduler.STOP and compute < planned * (1 - 1e-9):
            record = _clean(
                {
                    "mode": "asha",
                    "trial_id": trial.trial_id,
                    "run_id": run_id,
                    "action": "stop",
                    "reason": f"ASHA: below the top 1/{self._reduction_factor:g} of the runs at this rung",
                    "compute": compute,
                    "planned": planned,
                    "fraction": compute / planned if planned else math.nan,
                    "loss": float(result.get(self._metric, math.nan)),
                    "time": time.time(),
                }
            )
            self.log.write(record)
            if self.board is not None:
                self.board.on_decision(run_id, record)
        return action

    def on_trial_complete(self, tune_controller, trial, result: dict) -> None:
        if trial.trial_id in self._trial_info:
            super().on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller, trial) -> None:
        self._trial_info.pop(trial.trial_id, None)

    def on_trial_error(self, tune_controller, trial) -> None:
        self._trial_info.pop(trial.trial_id, None)


__all__ = ["FrontierScheduler", "LoggedASHA", "DecisionLog", "DECISIONS", "read_curve_csv"]
