"""Whole sweeps on FSDD through the command line: a diverging run is recorded as failed and the sweep
completes; a driver killed mid-sweep is continued by --resume without rerunning finished runs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

RECIPE = """# a small test sweep
name: {name}
data: {{manifest: {manifest}, crop_frames: 64, batch_size: 16, num_workers: 0, eval_crop_frames: 200}}
grid:
  models:
    lstm: [{{width: 8, depth: 1}}, {{width: 32, depth: 2}}]
    transformer: [{{width: 8, depth: 1, heads: 1}}, {{width: 16, depth: 2, heads: 1}}]
  subsets: [d1, d7]
optim: {{lr: 3.0e-3, warmup: 0.05, decay: 0.2}}
train_budget: {{frames: {frames}}}
eval: {{points: 8, first: 0.05}}
trainer: {{accelerator: cpu, log_every_n_steps: 10}}
resources: {{cpus: 1}}
ray: {{max_failures: 1, num_cpus: 2}}
{extra}
"""


def write(tmp_path, manifest, name, frames=30_000, extra=""):
    path = tmp_path / f"sweep_{name}.yaml"
    path.write_text(RECIPE.format(name=name, manifest=manifest, frames=frames, extra=extra))
    return path


def cli(*args, timeout=300, env=None, **kw):
    env = dict(env or os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(
        [sys.executable, "-m", "apcscale.recipes.sweep", *map(str, args)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kw,
    )


def test_a_diverging_run_is_recorded_failed_and_the_sweep_completes(diverged_sweep):
    # an absurd learning rate for one size, set through the recipe's per-size rules (the sweep: conftest.py,
    # shared with the tests of the fit command and the figures)
    sweep, out = diverged_sweep
    runs = pd.read_csv(sweep / "results" / "runs.csv").set_index("run_id")
    bad = "lstm-w32-d2-d7-s0"
    assert runs.loc[bad, "status"] == "failed"
    assert "loss became" in runs.loc[bad, "note"]
    assert (runs.drop(index=bad)["status"] == "finished").all()  # every other run completed
    # not retried: a NaN from the same settings is not bad luck
    tune_dirs = list((sweep / "tune").glob(f"{bad}_*"))
    assert len(tune_dirs) == 1 and not (tune_dirs[0] / "error.txt").exists()
    assert f"failed {bad}" in out
    report = (sweep / "results" / "report.txt").read_text()
    assert "Failed runs" in report and bad in report
    points = pd.read_parquet(sweep / "results" / "points.parquet")
    assert set(points["run_id"]) == set(runs.index)
    assert (points.loc[points["run_id"] == bad, "status"] == "failed").all()


def _finished(sweep: Path) -> list[str]:
    done = []
    for summary in (sweep / "runs").glob("*/summary.json"):
        try:
            if json.loads(summary.read_text()).get("status") == "finished":
                done.append(summary.parent.name)
        except json.JSONDecodeError:
            pass
    return sorted(done)


def _kill_group(proc) -> None:
    """The driver and what it started (Ray's processes are in its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def test_resume_after_the_driver_is_killed_runs_only_what_is_left(tmp_path, prepared_fsdd):
    path = write(tmp_path, prepared_fsdd, "resume", frames=60_000, extra="pruning: {policy: off}")
    sweep = tmp_path / "out" / "resume"
    proc = cli(path, "--output", tmp_path / "out", "--no-progress", start_new_session=True)
    try:
        deadline = time.time() + 240
        while len(_finished(sweep)) < 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.5)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
    finally:
        _kill_group(proc)
    done_before = _finished(sweep)
    assert 3 <= len(done_before) < 8
    stamps = {r: (sweep / "runs" / r / "summary.json").stat().st_mtime_ns for r in done_before}
    curves = {r: (sweep / "runs" / r / "curve.csv").read_text() for r in done_before}

    proc = cli(path, "--output", tmp_path / "out", "--no-progress", "--resume", start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        _kill_group(proc)
    assert proc.returncode == 0, out
    runs = pd.read_csv(sweep / "results" / "runs.csv").set_index("run_id")
    assert len(runs) == 8 and (runs["status"] == "finished").all(), runs["status"]
    for r in done_before:  # finished runs were not trained again
        assert (sweep / "runs" / r / "summary.json").stat().st_mtime_ns == stamps[r]
        assert (sweep / "runs" / r / "curve.csv").read_text() == curves[r]
        assert f"start {r} " not in out
    # what the resumed driver trained: exactly the runs that had not finished
    started = {line.split()[2] for line in out.splitlines() if "] start " in line}
    assert started == set(runs.index) - set(done_before)
    # every run's curve is whole: one evaluation per point of its schedule, none twice
    for r in runs.index:
        curve = pd.read_csv(sweep / "runs" / r / "curve.csv")
        assert curve["frames"].is_monotonic_increasing and curve["frames"].is_unique
        assert curve["frames"].iloc[-1] >= 60_000


def _attempts(sweep: Path) -> list[dict]:
    return [json.loads(line) for line in (sweep / "attempts.jsonl").read_text().splitlines() if line.strip()]


def test_a_run_that_finished_just_before_the_kill_is_not_shown_as_started_again(tmp_path):
    """The race the resume test can hit: the driver is killed after a run wrote its finished
    summary but before Tune's experiment state recorded even its trial. The restored searcher
    suggests the run again (its trial only re-reports the end); the board, synced from the run
    directories, keeps it finished, so the driver says so instead of "start"."""
    from apcscale.sweep.board import SweepBoard
    from apcscale.sweep.runner import _sync_board_from_disk
    from apcscale.sweep.searcher import PlanSearcher

    metas = [
        {"run_id": r, "cpus": 1, "gpus": 0, "workers": 1, "planned_flops": 1e9, "est_seconds": 1.0, "N": 1e3, "D": 1e3}
        for r in ("a", "b")
    ]
    (tmp_path / "runs" / "a").mkdir(parents=True)
    (tmp_path / "runs" / "a" / "summary.json").write_text(json.dumps({"status": "finished"}))
    board = SweepBoard(metas)
    _sync_board_from_disk(board, tmp_path)
    searcher = PlanSearcher(metas, [], {}, common={}, board=board)  # its state from before run a's trial
    assert searcher.suggest("t1")["run_id"] == "a" and searcher.suggest("t2")["run_id"] == "b"
    assert board.runs["a"].status == "finished" and board.runs["b"].status == "queued"
    assert board.on_start("t1") == "finished" and board.runs["a"].rereported
    assert board.on_start("t2") is None and board.runs["b"].status == "running"


def test_a_crashed_trial_is_retried_from_its_checkpoint_and_the_sweep_goes_on(tmp_path, prepared_fsdd):
    """The process training a run dies (as when a node is lost): Tune retries the trial, the run
    continues from its last checkpoint (its curve is not restarted), the other runs are unaffected."""
    target = "lstm-w32-d2-d7-s0"
    extra = (
        "rules:\n  - match: {arch: lstm, width: 32, subset: d7}\n    set: {budget.frames: 200000}\n"
        "pruning: {policy: off}"
    )
    path = write(tmp_path, prepared_fsdd, "crash", extra=extra)
    sweep = tmp_path / "out" / "crash"
    proc = cli(path, "--output", tmp_path / "out", "--no-progress", start_new_session=True)
    try:
        deadline = time.time() + 240
        curve_path = sweep / "runs" / target / "curve.csv"
        while time.time() < deadline and proc.poll() is None:
            if curve_path.is_file() and len(curve_path.read_text().splitlines()) >= 5:  # header + 4 evaluations
                break
            time.sleep(0.1)
        before = pd.read_csv(curve_path)
        assert 4 <= len(before) < 9, "the target run should be caught mid-way"
        attempt = [a for a in _attempts(sweep) if a["run_id"] == target][-1]
        os.kill(int(attempt["pid"]), signal.SIGKILL)  # the process training the run dies
        out, _ = proc.communicate(timeout=300)
    finally:
        _kill_group(proc)
    assert proc.returncode == 0, out
    assert f"{target} crashed" in out and "retrying from its last checkpoint" in out
    runs = pd.read_csv(sweep / "results" / "runs.csv").set_index("run_id")
    assert (runs["status"] == "finished").all(), runs["status"]
    curve = pd.read_csv(sweep / "runs" / target / "curve.csv")
    assert curve["frames"].is_monotonic_increasing and curve["frames"].is_unique
    assert curve["frames"].iloc[-1] >= 200_000
    # continued, not restarted: what was evaluated before the crash (and checkpointed) is still there
    attempts = [a for a in _attempts(sweep) if a["run_id"] == target]
    assert len(attempts) == 2 and attempts[1]["resumed_at_frames"] > 0 and attempts[1]["pid"] != attempt["pid"]
    kept = before.iloc[: len(before) - 1]  # the last row may postdate the last checkpoint: redone
    pd.testing.assert_frame_equal(curve.iloc[: len(kept)].reset_index(drop=True), kept.reset_index(drop=True))
