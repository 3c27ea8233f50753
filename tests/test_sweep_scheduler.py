"""The Ray Tune scheduler around the frontier policy, on scripted results (no training).

First the scheduler alone (its hooks called as Tune calls them), then inside a
real Tuner whose trials replay scripted learning curves through ray.tune.report:
the data-limited run is stopped early, the big run that is behind early runs to
its end, every decision is in decisions.jsonl, and shadow mode stops nothing.
"""

import json
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402
from ray.tune.schedulers import TrialScheduler  # noqa: E402

from apcscale.sweep.policy import PolicyConfig  # noqa: E402
from apcscale.sweep.scheduler import DECISIONS, FrontierScheduler, LoggedASHA  # noqa: E402

FRACTIONS = np.concatenate([[0.0], np.geomspace(0.02, 1.0, 16)])
SPECS = {  # planned compute, L_inf, A, alpha
    "small": (1e10, 0.50, 0.6, 0.7),
    "mid": (4e10, 0.42, 0.7, 0.6),
    "big": (1.6e11, 0.30, 0.9, 0.5),
    "limited": (4e10, 0.56, 0.7, 0.8),
}


def scripted(run_id):
    planned, L_inf, A, alpha = SPECS[run_id]
    rng = np.random.default_rng(sum(map(ord, run_id)))
    C = FRACTIONS * planned
    L = (L_inf + A * ((C + 0.01 * planned) / (0.01 * planned)) ** -alpha) * np.exp(rng.normal(0, 0.002, len(C)))
    return C, L


def planned():
    return {k: v[0] for k, v in SPECS.items()}


def trial(run_id):
    return SimpleNamespace(trial_id=f"t-{run_id}", config={"run_id": run_id})


def drive(sched, order):
    actions = {}
    for run_id, i in order:
        if actions.get(run_id) == TrialScheduler.STOP:
            continue
        C, L = scripted(run_id)
        actions[run_id] = sched.on_trial_result(
            None, trial(run_id), {"run_id": run_id, "flops": C[i], "dev_loss": L[i]}
        )
    return actions


ORDER = [(r, i) for r in ("small", "mid") for i in range(len(FRACTIONS))] + [
    (r, i) for i in range(len(FRACTIONS)) for r in ("big", "limited")
]


def test_scheduler_stops_the_run_leaving_the_frontier_and_logs_every_decision(tmp_path):
    sched = FrontierScheduler(PolicyConfig(min_fraction=0.25), sweep_dir=tmp_path, planned=planned())
    assert sched.set_search_properties("dev_loss", "min") and not sched.set_search_properties("other", "min")
    actions = drive(sched, ORDER)
    assert actions["limited"] == TrialScheduler.STOP
    assert actions["big"] == actions["small"] == actions["mid"] == TrialScheduler.CONTINUE
    log = [json.loads(line) for line in (tmp_path / DECISIONS).read_text().splitlines()]
    stop_at = next(d["fraction"] for d in log if d["action"] == "stop")
    expected = sum(1 for r, i in ORDER if FRACTIONS[i] > 0 and (r != "limited" or FRACTIONS[i] <= stop_at + 1e-9))
    assert len(log) == expected  # one decision per evaluation, none after the stop
    stops = [d for d in log if d["action"] == "stop"]
    assert [d["run_id"] for d in stops] == ["limited"] and stops[0]["mode"] == "prune"
    assert stops[0]["predicted_lo"] > stops[0]["envelope_end"]
    assert all(d["reason"] for d in log)


def test_shadow_mode_logs_what_it_would_do_and_stops_nothing(tmp_path):
    sched = FrontierScheduler(PolicyConfig(min_fraction=0.25), sweep_dir=tmp_path, planned=planned(), prune=False)
    actions = drive(sched, ORDER)
    assert set(actions.values()) == {TrialScheduler.CONTINUE}
    log = [json.loads(line) for line in (tmp_path / DECISIONS).read_text().splitlines()]
    stops = [d for d in log if d["action"] == "stop"]
    assert [(d["run_id"], d["mode"]) for d in stops] == [("limited", "shadow")]  # logged once


def test_scheduler_rebuilds_its_curves_from_the_sweep_directory(tmp_path):
    """After --resume Tune gives a fresh scheduler: it reads the runs' curve.csv files."""
    for run_id in ("small", "mid"):
        C, L = scripted(run_id)
        d = tmp_path / "runs" / run_id
        d.mkdir(parents=True)
        rows = ["frames,flops,steps,wall_time,train_time,dev/loss,dev/copy_baseline,lr"]
        rows += [f"{c / 1e4},{c},{i},{i},{i},{l},1.0,0.001" for i, (c, l) in enumerate(zip(C, L))]
        (d / "curve.csv").write_text("\n".join(rows) + "\n")
    sched = FrontierScheduler(PolicyConfig(min_fraction=0.25), sweep_dir=tmp_path, planned=planned())
    actions = drive(sched, [(r, i) for i in range(len(FRACTIONS)) for r in ("big", "limited")])
    assert actions["limited"] == TrialScheduler.STOP and actions["big"] == TrialScheduler.CONTINUE


# ---------------------------------------------------------------------------------------------
# inside a real Tuner
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_local():
    if ray.is_initialized():
        ray.shutdown()
    # the trials run functions of this module: workers need the tests folder on their path
    here = str(Path(__file__).resolve().parent)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": here}})
    yield
    ray.shutdown()


def replay_curve(config):
    """A scripted run, its status kept as the sweep's trainable keeps it: Tune ends a trial it stops
    by raising SystemExit in its report; the scheduler's decision in the log makes the run stopped."""
    from apcscale.sweep.trainable import scheduler_stop
    from apcscale.train.rundir import RunDir

    run_id = config["run_id"]
    rd = RunDir(Path(config["sweep_dir"]) / "runs" / run_id)
    rd.start()
    # the cheap runs first, so the envelope exists when the expensive ones report
    time.sleep({"small": 0.0, "mid": 0.0, "big": 0.8, "limited": 0.8}[run_id])
    C, L = scripted(run_id)
    reported = 0
    try:
        for c, l in zip(C, L):
            reported += 1
            tune.report({"run_id": run_id, "flops": float(c), "dev_loss": float(l)})
            time.sleep(0.05)
    except SystemExit:  # (ASHA also says STOP at max_t: the run's last report, its budget spent)
        (rd.path / "reported").write_text(str(reported))
        decision = scheduler_stop(config["sweep_dir"], run_id)
        if reported == len(C):
            rd.finish()
        elif decision:
            rd.stop(decision)
        else:
            rd.interrupt("ended without a decision", end="signal")
        raise
    (rd.path / "reported").write_text(str(reported))
    rd.finish()


@pytest.mark.parametrize("mode", ["frontier", "asha"])
def test_inside_a_tuner(tmp_path, ray_local, mode):
    if mode == "frontier":
        sched = FrontierScheduler(PolicyConfig(min_fraction=0.25), sweep_dir=tmp_path, planned=planned())
    else:
        flops = list(planned().values())
        sched = LoggedASHA(sweep_dir=tmp_path, planned=planned(), grace_period=0.25 * min(flops), max_t=max(flops))
    tuner = tune.Tuner(
        tune.with_resources(replay_curve, {"cpu": 0.5}),
        param_space={"run_id": tune.grid_search(list(SPECS)), "sweep_dir": str(tmp_path)},
        tune_config=tune.TuneConfig(scheduler=sched, max_concurrent_trials=4),
        run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), name="t", verbose=0),
    )
    grid = tuner.fit()
    last = {r.config["run_id"]: r.metrics["flops"] for r in grid}
    ended_early = {k for k, v in last.items() if v < SPECS[k][0] * 0.999}
    log = [json.loads(line) for line in (tmp_path / DECISIONS).read_text().splitlines()]
    stopped = {d["run_id"] for d in log if d["action"] == "stop"}
    assert ended_early == stopped
    from apcscale.train.rundir import RunDir

    status = {r: RunDir(tmp_path / "runs" / r).read_summary() for r in SPECS}
    reported = {r: int((tmp_path / "runs" / r / "reported").read_text()) for r in SPECS}
    # stopped only by a decision, and with it; a trial that had already made its last report when the
    # decision reached it (on a loaded machine its reports run ahead of the scheduler) spent its budget:
    # finished, as the sweep's trainable records it
    assert {r for r, s in status.items() if s["status"] == "stopped"} <= stopped
    for r in stopped:
        if status[r]["status"] == "stopped":
            assert status[r]["decision"]["run_id"] == r and status[r]["decision"]["action"] == "stop"
        else:
            assert status[r]["status"] == "finished" and reported[r] == len(scripted(r)[0]), (r, status[r])
    assert all(s["status"] == "finished" for r, s in status.items() if r not in stopped)
    if mode == "frontier":
        assert stopped == {"limited"}  # the big run, behind early, is kept
    else:
        # ASHA compares runs at equal compute and keeps the best: the expensive runs that are
        # behind at its rungs go, whatever they would have become
        assert stopped and "small" not in stopped
