"""The driver-side record of a running sweep, shared by the searcher (what to start),
the scheduler (what to stop) and the progress display (what to show).

Plain data only: Tune pickles its searcher, scheduler and callbacks together
into the experiment state, so after `--resume` they still share one board.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

#: pruned: stopped by the scheduler (the run directory says "stopped"); interrupted: resumable
STATUSES = ("planned", "queued", "running", "finished", "pruned", "failed", "interrupted", "backlog")


@dataclass
class RunState:
    run_id: str
    status: str = "planned"
    trial_id: str | None = None
    last: dict[str, Any] = field(default_factory=dict)  # last reported metrics
    decision: dict[str, Any] = field(default_factory=dict)  # last pruning decision (as a dict)
    started: float | None = None
    ended: float | None = None
    attempts: int = 0
    rereported: bool = False  # ended before an interruption; its trial only reports the end again

    @property
    def compute(self) -> float:
        return float(self.last.get("flops", 0.0) or 0.0)


class SweepBoard:
    def __init__(self, plan_runs: list[dict[str, Any]], backlog: list[dict[str, Any]] | None = None):
        self.runs: dict[str, RunState] = {}
        self.meta: dict[str, dict[str, Any]] = {}
        for r in plan_runs:
            self.runs[r["run_id"]] = RunState(r["run_id"])
            self.meta[r["run_id"]] = r
        for r in backlog or []:
            self.runs[r["run_id"]] = RunState(r["run_id"], status="backlog")
            self.meta[r["run_id"]] = r
        self.trial_to_run: dict[str, str] = {}
        self.started_at = time.time()
        self.events: list[str] = []  # short human-readable log lines (pruned, failed, redeployed)

    # ----- updates -----
    def on_queue(self, run_id: str, trial_id: str) -> None:
        """The searcher created a trial for the run (it waits for resources). A run that already
        ended keeps its status: after --resume, a run that finished just before the interruption,
        before Tune's state recorded even its trial, is suggested again and only re-reports its end."""
        st = self.runs[run_id]
        st.trial_id = trial_id
        if st.status not in ("finished", "failed", "pruned"):
            st.status = "queued"
        self.trial_to_run[trial_id] = run_id

    def on_start(self, trial_id: str) -> str | None:
        """A trial started; returns the run's status if it had already ended (a resumed sweep whose
        Tune state lagged: the trial only re-reports the run's end), else None."""
        run_id = self.trial_to_run.get(trial_id)
        if run_id is None:
            return None
        st = self.runs[run_id]
        if st.status in ("finished", "failed", "pruned"):
            st.rereported = True
            return st.status
        if st.status in ("planned", "queued", "backlog", "running"):
            st.status = "running"
        st.started = st.started or time.time()
        st.attempts += 1
        return None

    def on_result(self, trial_id: str, result: dict[str, Any]) -> None:
        run_id = self.trial_to_run.get(trial_id) or result.get("run_id")
        if run_id in self.runs:
            st = self.runs[run_id]
            st.last = {
                k: v for k, v in result.items() if isinstance(v, (int, float, str)) and not k.startswith("config/")
            }
            if st.status in ("planned", "queued", "backlog"):
                st.status = "running"

    def on_decision(self, run_id: str, decision: dict[str, Any]) -> None:
        if run_id in self.runs:
            self.runs[run_id].decision = decision
            if decision.get("action") == "stop":
                self.runs[run_id].status = "pruned"

    def on_end(self, run_id: str, status: str) -> None:
        st = self.runs.get(run_id)
        if st is None:
            return
        if st.status != "pruned" or status == "failed":
            st.status = status
        st.ended = time.time()

    def event(self, line: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {line}")

    # ----- views -----
    def run_of(self, trial_id: str) -> str | None:
        return self.trial_to_run.get(trial_id)

    def count(self, status: str) -> int:
        return sum(1 for st in self.runs.values() if st.status == status)

    def spent_flops(self) -> float:
        return sum(st.compute for st in self.runs.values())

    def planned_flops(self, statuses=("planned", "queued", "running", "finished", "pruned", "failed")) -> float:
        return sum(self.meta[r]["planned_flops"] for r, st in self.runs.items() if st.status in statuses)

    def elapsed(self) -> float:
        return time.time() - self.started_at

    def progress(self, run_id: str) -> float:
        st = self.runs[run_id]
        planned = self.meta[run_id]["planned_flops"]
        return min(1.0, st.compute / planned) if planned > 0 else math.nan
