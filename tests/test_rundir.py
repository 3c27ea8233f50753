"""The run directory: one status machine, strict JSON written atomically, one NaN convention."""

import json
import math

import pytest
import torch

from apcscale.train.rundir import RunDir, RunDirError, RunStateError


def strict_json(path):
    """Parse as strict JSON: NaN/Infinity tokens are refused."""

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_a_run_moves_through_its_statuses_and_no_further(tmp_path):
    rd = RunDir(tmp_path / "r")
    assert rd.status == "planned" and rd.ended() is None
    rd.start(N=10, budget_total=100)
    assert rd.status == "running" and rd.effective_status() == "interrupted"  # nobody alive owns it
    assert rd.effective_status(live=True) == "running"
    rd.interrupt("ShardError: corrupt shard x", frames=40)
    s = rd.read_summary()
    assert s["status"] == "interrupted" and s["end"] == "error" and "corrupt shard" in s["error"] and s["N"] == 10
    assert rd.ended() is None  # resumable
    rd.start(N=10)
    assert rd.read_summary().get("error") is None and rd.read_summary().get("end") is None
    decision = {"run_id": "r", "action": "stop", "reason": "extrapolated above the frontier", "fraction": 0.4}
    rd.stop(decision, frames=60)
    s = rd.ended()
    assert s["status"] == "stopped" and s["decision"] == decision and "above the frontier" in s["error"]
    for move in (lambda: rd.finish(), lambda: rd.start(), lambda: rd.fail("x"), lambda: rd.interrupt("x")):
        with pytest.raises(RunStateError, match="cannot go from stopped"):
            move()
    assert rd.status == "stopped"


def test_only_a_started_run_finishes_and_a_crash_is_not_a_finish(tmp_path):
    rd = RunDir(tmp_path / "r")
    with pytest.raises(RunStateError, match="planned to finished"):
        rd.finish()
    with pytest.raises(RunStateError, match="planned to stopped"):
        rd.stop({"reason": "x"})
    rd.fail("Tune gave up: the worker died")  # a trial that errored before its run started
    assert rd.status == "failed"
    rd2 = RunDir(tmp_path / "r2")
    rd2.start()
    rd2.start()  # a retry after an attempt killed without a word
    rd2.finish(end="budget", frames=100)
    assert rd2.ended()["end"] == "budget" and rd2.ended()["error"] is None


def test_summary_is_strict_json_and_nan_reads_back_as_nan(tmp_path):
    rd = RunDir(tmp_path / "r")
    rd.start()
    rd.fail(
        "training loss became nan",
        end="diverged",
        final_dev_loss=math.nan,
        min_dev_loss=0.5,
        curve=[{"frames": 0.0, "dev/loss": math.nan}, {"frames": 10.0, "dev/loss": 0.5}],
    )
    data = strict_json(rd.summary_path)
    assert data["final_dev_loss"] is None and data["curve"][0]["dev/loss"] is None
    s = rd.read_summary()
    assert math.isnan(s["final_dev_loss"]) and s["min_dev_loss"] == 0.5 and math.isnan(s["curve"][0]["dev/loss"])
    assert [p.name for p in rd.path.iterdir()] == ["summary.json"]  # no temporary file left behind


def test_a_torn_or_foreign_summary_reads_as_no_status(tmp_path):
    rd = RunDir(tmp_path / "r")
    rd.path.mkdir()
    rd.summary_path.write_text('{"status": "finis')
    assert rd.read_summary() is None and rd.status == "planned"
    assert rd.effective_status() == "interrupted"  # an attempt left files: not "not run"
    rd.summary_path.write_text('{"status": "done"}')
    assert rd.status == "planned"


def test_curve_has_one_nan_convention(tmp_path):
    rd = RunDir(tmp_path / "r")
    rd.append_point({"frames": 0.0, "flops": 0.0, "steps": 0.0, "dev/loss": 0.9, "lr": math.nan})
    rd.append_point({"frames": 10.0, "flops": 5.0, "steps": 1.0, "dev/loss": math.inf, "lr": 1e-3})
    lines = rd.curve_path.read_text().splitlines()
    assert lines[0].split(",")[:3] == ["frames", "flops", "steps"] and "nan" not in rd.curve_path.read_text().lower()
    with rd.curve_path.open("a") as fh:  # older files wrote "nan"; a kill can tear the last line
        fh.write("20.0,10.0,2.0,1.0,1.0,nan,0.4,NaN\n")
        fh.write("30.0,15")
    pts = rd.read_curve()
    assert [p["frames"] for p in pts] == [0.0, 10.0, 20.0, 30.0]
    assert math.isnan(pts[0]["lr"]) and math.isnan(pts[1]["dev/loss"]) and math.isnan(pts[2]["dev/loss"])
    assert math.isnan(pts[2]["lr"]) and pts[2]["dev/copy_baseline"] == 0.4 and math.isnan(pts[3]["dev/loss"])


def test_a_point_evaluated_twice_counts_once(tmp_path):
    rd = RunDir(tmp_path / "r")
    for loss in (0.9, 0.8):
        rd.append_point({"frames": 10.0, "flops": 5.0, "steps": 1.0, "dev/loss": loss})
    rd.append_point({"frames": 0.0, "flops": 0.0, "steps": 0.0, "dev/loss": 1.0})
    assert [(p["frames"], p["dev/loss"]) for p in rd.read_curve()] == [(0.0, 1.0), (10.0, 0.8)]


def test_a_restart_keeps_what_its_checkpoint_covers(tmp_path):
    rd = RunDir(tmp_path / "r")
    for f in (0.0, 100.0, 200.0, 300.0):
        rd.append_point({"frames": f, "flops": f, "steps": f / 10, "dev/loss": 1.0 - f / 1000})
    rd.checkpoint_dir.mkdir()
    torch.save({"apcscale": {"frames_seen": 200}}, rd.last_checkpoint)
    resume, kept = rd.prepare_restart()
    assert resume and [p["frames"] for p in kept] == [0.0, 100.0, 200.0]
    assert [p["frames"] for p in rd.read_curve()] == [0.0, 100.0, 200.0]  # the later evaluation will be redone
    rd.last_checkpoint.write_bytes(b"torn")
    assert rd.prepare_restart() == (False, []) and not rd.path.exists()  # a torn checkpoint: start clean


def test_train_dir_refuses_to_resume_what_ended_or_to_clobber(tmp_path):
    rd = RunDir(tmp_path / "r")
    rd.start()
    rd.finish()
    with pytest.raises(RunDirError, match="has finished: there is nothing to resume"):
        rd.prepare(resume=True, overwrite=False)
    with pytest.raises(RunDirError, match=r"already holds a run \(finished\); pass --resume"):
        rd.prepare(resume=False, overwrite=False)
    assert rd.prepare(resume=False, overwrite=True) is None and not any(rd.path.iterdir())
    rd.start()
    rd.interrupt("SIGTERM")
    rd.append_point({"frames": 1.0})
    assert rd.prepare(resume=True, overwrite=False) is None  # no checkpoint: it starts over, clean
    assert not any(rd.path.iterdir())


def test_only_a_prune_or_asha_decision_stops_a_run(tmp_path):
    """How a trial tells a scheduler stop from Ctrl-C (both reach it as SystemExit): the decision log."""
    from apcscale.sweep.trainable import scheduler_stop

    log = tmp_path / "decisions.jsonl"
    log.write_text(
        "\n".join(
            [
                json.dumps({"run_id": "a", "action": "continue", "mode": "prune"}),
                json.dumps({"run_id": "b", "action": "stop", "mode": "shadow", "reason": "would stop"}),
                json.dumps({"run_id": "c", "action": "stop", "mode": "asha", "reason": "ASHA"}),
                '{"run_id": "a", "action": "st',  # torn by a kill
            ]
        )
        + "\n"
    )
    assert scheduler_stop(tmp_path, "a") is None and scheduler_stop(tmp_path, "b") is None
    assert scheduler_stop(tmp_path, "c")["reason"] == "ASHA"
    with log.open("a") as fh:
        fh.write(json.dumps({"run_id": "a", "action": "stop", "mode": "prune", "reason": "above the frontier"}) + "\n")
    assert scheduler_stop(tmp_path, "a")["reason"] == "above the frontier"
