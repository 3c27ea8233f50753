"""The sweep directory's lock: one live driver per sweep, its pid and host in the message, stale
locks taken over, no check-then-create race (issue 12, defects 3 and 4; end to end in
test_sweep_faults.py)."""

import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from apcscale.recipes.sweep import main as sweep_main
from apcscale.sweep.lock import SweepLock, SweepLockError, holder, lock_path

ROOT = Path(__file__).resolve().parents[1]


def test_a_held_lock_names_its_holder_and_is_released(tmp_path):
    sweep = tmp_path / "out" / "s"
    with SweepLock(sweep).acquire(command="test"):
        assert lock_path(sweep) == tmp_path / "out" / ".s.lock" and not sweep.exists()  # the sweep itself untouched
        with pytest.raises(
            SweepLockError,
            match=rf"is in use by the sweep driver pid {os.getpid()} on host "
            rf"{socket.gethostname()}, started \d{{4}}-",
        ):
            SweepLock(sweep).acquire()
        assert holder(sweep)["pid"] == os.getpid()
    assert holder(sweep) is None and lock_path(sweep).read_text() == ""
    with SweepLock(sweep) as again:  # free again, and nothing stale to report
        assert again.stale_message() is None


def _hold(path: str, ready, results) -> None:
    try:
        lock = SweepLock(path).acquire()
    except SweepLockError:
        results.put("refused")
        return
    results.put("held")
    ready.wait(5)
    lock.release()


def test_drivers_started_together_on_a_new_output_get_one_lock(tmp_path):
    """The old check ("already holds a sweep?") ran before the directory existed, so two drivers started
    together both passed it. Taking the lock is the check: of four started at once, one holds it."""
    ctx = mp.get_context("fork")
    ready, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_hold, args=(str(tmp_path / "new" / "s"), ready, results)) for _ in range(4)]
    for p in procs:
        p.start()
    got = sorted(results.get(timeout=60) for _ in procs)
    ready.set()
    for p in procs:
        p.join(timeout=30)
    assert got == ["held", "refused", "refused", "refused"]


def test_a_killed_drivers_lock_is_taken_over_with_a_message(tmp_path):
    sweep = tmp_path / "s"
    code = (
        f"from apcscale.sweep.lock import SweepLock; lock = SweepLock({str(sweep)!r}).acquire(); print('held', flush=True); "
        "import time; time.sleep(60)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(SweepLockError, match=f"pid {proc.pid}"):
        SweepLock(sweep).acquire()
    os.kill(proc.pid, signal.SIGKILL)  # kill -9: no chance to release anything
    proc.wait(timeout=30)
    with SweepLock(sweep) as lock:
        assert lock.took_over["pid"] == proc.pid
        assert (
            f"from the sweep driver pid {proc.pid}" in lock.stale_message() and "which is gone" in lock.stale_message()
        )


def test_the_cli_refuses_a_live_sweep_before_touching_it(tmp_path, capsys):
    """Defect 3: --overwrite deleted a sweep whose driver was still running. The CLI takes the lock
    before anything else: --overwrite, --resume and a plain start all stop there, the sweep intact."""
    recipe = tmp_path / "sweep_s.yaml"
    recipe.write_text("name: s\ndata: {audio: /nonexistent/audio}\ngrid: {models: {lstm: [{width: 8, depth: 1}]}}\n")
    sweep = tmp_path / "out" / "s"
    sweep.mkdir(parents=True)
    (sweep / "plan.json").write_text("{}")
    with SweepLock(sweep).acquire():
        for flags in (["--overwrite"], ["--resume"], []):
            assert sweep_main([str(recipe), "--output", str(tmp_path / "out"), "--no-progress", *flags]) == 2
            out = capsys.readouterr().out
            assert out.startswith(f"error: {sweep} is in use by the sweep driver pid {os.getpid()}"), out
            assert len(out.strip().splitlines()) == 1
    assert (sweep / "plan.json").read_text() == "{}"


def test_an_unwritable_output_fails_first(tmp_path, capsys):
    """Defect 7: a read-only --output was found only after preparation and planning. The lock is the
    first thing written (the recipe's audio is missing: preparation would have failed otherwise)."""
    recipe = tmp_path / "sweep_s.yaml"
    recipe.write_text("name: s\ndata: {audio: /nonexistent/audio}\ngrid: {models: {lstm: [{width: 8, depth: 1}]}}\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert sweep_main([str(recipe), "--output", str(blocker / "out"), "--no-progress"]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"error: cannot write to the output directory {blocker / 'out'}: Not a directory"), out


def test_a_report_of_a_live_sweep_shows_its_runs_running(tmp_path):
    """A run whose summary says running is interrupted (its process is gone) unless a live driver
    holds the sweep: then `--report` from another process shows it running."""
    from apcscale.sweep.plan import Plan, PlannedRun
    from apcscale.sweep.tables import load_tables
    from apcscale.train.rundir import RunDir

    sweep = tmp_path / "s"
    run = PlannedRun(
        run_id="r",
        arch="lstm",
        width=8,
        depth=1,
        label="lstm-w8-d1",
        subset="d0",
        D=1000,
        hours=0.003,
        seed=0,
        N=100,
        N_total=200,
        flops_per_frame=600.0,
        planned_frames=1000,
        planned_flops=6e5,
        est_seconds=1.0,
        cpus=1,
        gpus=0,
        workers=1,
        recipe={},
    )
    sweep.mkdir()
    Plan(name="s", manifest="m.json", runs=[run]).save(sweep / "plan.json")
    RunDir(sweep / "runs" / "r").start()
    assert load_tables(sweep)[1].set_index("run_id").loc["r", "status"] == "interrupted"
    code = (
        f"from apcscale.sweep.lock import SweepLock; lock = SweepLock({str(sweep)!r}).acquire(); print('held', flush=True); "
        "import time; time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        assert load_tables(sweep)[1].set_index("run_id").loc["r", "status"] == "running"
    finally:
        proc.kill()
        proc.wait(timeout=30)
