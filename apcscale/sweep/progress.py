"""Live progress of a sweep in the terminal: a Ray Tune Callback drawing a rich table.

One row per run of the plan: status, progress through its planned compute, the
latest and best dev loss, the run's own extrapolation of its final loss, and
the last pruning decision; a header with the counts, the compute spent against
the plan and the elapsed time; a footer with the latest events (pruned,
failed, retried, started from the backlog). Without a terminal (CI, a log
file) it prints one line per event instead of redrawing.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from ray.tune import Callback
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from apcscale.sweep.board import SweepBoard
from apcscale.sweep.display import _si, fmt_seconds

STYLE = {
    "planned": "dim",
    "queued": "dim",
    "running": "cyan",
    "finished": "green",
    "pruned": "yellow",
    "failed": "red",
    "interrupted": "yellow",
    "backlog": "dim italic",
}


def _bar(frac: float, width: int = 12) -> str:
    if not math.isfinite(frac):
        return " " * width
    full = int(round(min(max(frac, 0.0), 1.0) * width))
    return "█" * full + "·" * (width - full)


def _num(x: Any, fmt: str = ".4f") -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return "-"
    return format(x, fmt) if math.isfinite(x) else "-"


def _short(reason: str) -> str:
    """The gist of a decision's reason for the table (the full text is in the events and the log)."""
    reason = reason.replace("past its best (dev loss", "overfitting (dev loss")
    return reason.split(": ")[0].split(" (lower bound")[0]


def _ordered(board: SweepBoard) -> list[str]:
    """Running and queued runs first, then the ones that ended (latest first), then the rest in plan order."""
    runs = board.runs
    active = [r for r in runs if runs[r].status in ("running", "queued")]
    ended = sorted(
        (r for r in runs if runs[r].status in ("finished", "pruned", "failed")),
        key=lambda r: -(runs[r].ended or runs[r].started or 0.0),
    )
    rest = [r for r in runs if r not in active and r not in ended]
    return active + ended + rest


def render(board: SweepBoard, title: str, max_rows: int = 40, events: int = 4, width: int = 160):
    counts = {s: board.count(s) for s in ("running", "finished", "pruned", "failed", "queued", "planned", "backlog")}
    spent = board.spent_flops()
    planned = board.planned_flops()
    head = Text.assemble(
        (f"{title}  ", "bold"),
        (f"{fmt_seconds(board.elapsed())}  ", ""),
        (f"{counts['finished']} finished", "green"),
        ", ",
        (f"{counts['pruned']} pruned", "yellow"),
        ", ",
        (f"{counts['failed']} failed", "red"),
        ", ",
        (f"{counts['running']} running", "cyan"),
        ", ",
        f"{counts['planned'] + counts['queued']} to go",
        (f" (+{counts['backlog']} in backlog)" if counts["backlog"] else ""),
        f"   compute {_si(spent)}FLOP of {_si(planned)}FLOP planned",
    )
    table = Table(header_style="bold", pad_edge=False, box=None, show_edge=False)
    width = max((len(r) for r in board.runs), default=8)
    for col, kw in (
        ("run", {"no_wrap": True, "min_width": width}),
        ("N", {"justify": "right", "no_wrap": True}),
        ("D", {"justify": "right", "no_wrap": True}),
        ("status", {"no_wrap": True}),
        ("progress", {"no_wrap": True, "min_width": 17}),
        ("FLOPs", {"justify": "right", "no_wrap": True}),
        ("dev loss", {"justify": "right", "no_wrap": True}),
        ("best", {"justify": "right", "no_wrap": True}),
        ("predicted end [band]", {"justify": "right", "no_wrap": True}),
        ("time", {"justify": "right", "no_wrap": True}),
        (
            "decision",
            {
                "overflow": "ellipsis",
                "no_wrap": True,
                "max_width": max(20, width - 108 - max((len(r) for r in board.runs), default=8)),
            },
        ),
    ):
        table.add_column(col, **kw)
    order = list(board.runs) if max_rows >= len(board.runs) else _ordered(board)
    shown = order[:max_rows]
    for run_id in shown:
        st, meta = board.runs[run_id], board.meta[run_id]
        last = st.last
        frac = board.progress(run_id)
        pred = "-"
        if st.status in ("running", "queued") and math.isfinite(float(last.get("pred_final", math.nan) or math.nan)):
            pred = f"{_num(last['pred_final'])} [{_num(last.get('pred_final_lo'))}, {_num(last.get('pred_final_hi'))}]"
        decision = _short(st.decision.get("reason", "")) if st.decision else ""
        elapsed = float(last.get("wall_time", math.nan) or math.nan)
        table.add_row(
            run_id,
            _si(meta["N"]),
            _si(meta["D"]),
            Text(st.status, style=STYLE.get(st.status, "")),
            f"{_bar(frac)} {frac:4.0%}" if math.isfinite(frac) and st.status != "planned" else "",
            _si(st.compute) if st.compute else "-",
            _num(last.get("dev_loss")),
            _num(last.get("best_dev_loss")),
            pred,
            fmt_seconds(elapsed) if math.isfinite(elapsed) else "-",
            decision,
            style="dim" if st.status in ("planned", "backlog") else None,
        )
    if len(shown) < len(order):
        table.add_row(f"... {len(order) - len(shown)} more", *[""] * 10)
    parts = [head, table]
    if board.events:
        parts.append(Text("\n".join(board.events[-events:]), style="dim"))
    return Group(*parts)


class SweepProgress(Callback):
    """A ray.tune Callback: live table on a terminal, one line per event otherwise."""

    def __init__(
        self, board: SweepBoard, sweep_dir: str | Path, title: str, live: bool | None = None, refresh_s: float = 0.5
    ):
        self.board = board
        self.sweep_dir = Path(sweep_dir)
        self.title = title
        self.live_wanted = live
        self.refresh_s = refresh_s
        self._console: Console | None = None
        self._live: Live | None = None
        self._last_draw = 0.0

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_console"] = None
        state["_live"] = None
        return state

    # ----- drawing -----
    @property
    def console(self) -> Console:
        if self._console is None:
            self._console = Console()
        return self._console

    def _is_live(self) -> bool:
        return self.live_wanted if self.live_wanted is not None else self.console.is_terminal

    def start(self) -> None:
        if self._is_live() and self._live is None:
            self._live = Live(
                render(
                    self.board,
                    self.title,
                    max_rows=max(5, self.console.size.height - 10),
                    width=self.console.size.width,
                ),
                console=self.console,
                refresh_per_second=4,
                transient=False,
            )
            self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.update(render(self.board, self.title, max_rows=10_000, width=self.console.size.width))
            self._live.stop()
            self._live = None

    def _draw(self, force: bool = False) -> None:
        if self._live is None:
            return
        now = time.time()
        if force or now - self._last_draw >= self.refresh_s:
            rows = max(5, self.console.size.height - 10)  # header, column titles, events
            self._live.update(render(self.board, self.title, max_rows=rows, width=self.console.size.width))
            self._last_draw = now

    def _say(self, line: str, style: str = "") -> None:
        self.board.event(line)
        if self._live is None:
            self.console.print(
                f"[{time.strftime('%H:%M:%S')}] {line}",
                style=style or None,
                highlight=False,
                soft_wrap=True,
                markup=False,
            )

    # ----- Tune hooks -----
    def setup(self, **info) -> None:
        self.start()

    def on_step_end(self, iteration, trials, **info) -> None:
        self._draw()

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        ended = self.board.on_start(trial.trial_id)
        run_id = self.board.run_of(trial.trial_id)
        if ended:
            self._say(f"{run_id} had {ended} before the interruption: its result is recorded again, not retrained")
        elif run_id and self._live is None:
            meta = self.board.meta[run_id]
            self.console.print(
                f"[{time.strftime('%H:%M:%S')}] start {run_id} (N {_si(meta['N'])}, "
                f"D {_si(meta['D'])} frames, {_si(meta['planned_flops'])}FLOP planned)",
                highlight=False,
                soft_wrap=True,
                markup=False,
            )

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        self.board.on_result(trial.trial_id, result)
        self._draw()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        run_id = self.board.run_of(trial.trial_id)
        if run_id is None:
            return
        st = self.board.runs[run_id]
        if st.rereported:
            st.rereported = False
        elif st.status == "pruned":
            self.board.on_end(run_id, "pruned")
            self._say(
                f"pruned {run_id} at {_num(self.board.progress(run_id), '.0%')} of its budget: "
                f"{st.decision.get('reason', '')}",
                "yellow",
            )
        else:
            status, error = _run_status(self.sweep_dir / "runs" / run_id)
            self.board.on_end(run_id, status)
            if status == "failed":
                self._say(f"failed {run_id}: {error}", "red")
            elif status == "interrupted":
                self._say(f"interrupted {run_id}: {error}; --resume continues it", "yellow")
            elif status == "pruned":
                self._say(f"pruned {run_id}: {error}", "yellow")
            else:
                self._say(
                    f"finished {run_id}: dev loss {_num(st.last.get('dev_loss'))} "
                    f"(best {_num(st.last.get('best_dev_loss', st.last.get('dev_loss')))})",
                    "green",
                )
        self._draw(force=True)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        run_id = self.board.run_of(trial.trial_id) or trial.trial_id
        self._say(f"{run_id} crashed ({_first_line(trial)}); retrying from its last checkpoint", "yellow")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        run_id = self.board.run_of(trial.trial_id)
        if run_id:
            self.board.on_end(run_id, "failed")
            where = getattr(trial, "error_file", None)
            self._say(
                f"failed {run_id} after retries: {_first_line(trial)}" + (f" (traceback: {where})" if where else ""),
                "red",
            )
        self._draw(force=True)

    def on_experiment_end(self, trials, **info) -> None:
        self.stop()


def _first_line(trial) -> str:
    path = getattr(trial, "error_file", None) or ""
    try:
        text = Path(path).read_text().strip().splitlines() if path else []
    except OSError:
        text = []
    return text[-1][:160] if text else "error"


def _run_status(run_dir: Path) -> tuple[str, str]:
    """How a trial that completed left its run (RunDir): finished, failed, stopped or interrupted."""
    from apcscale.train.rundir import RunDir

    rd = RunDir(run_dir)
    summary = rd.read_summary() or {}
    status = rd.effective_status()
    status = {"stopped": "pruned", "planned": "interrupted"}.get(status, status)
    return status, str(summary.get("error") or "")[:160]


__all__ = ["SweepProgress", "render"]
