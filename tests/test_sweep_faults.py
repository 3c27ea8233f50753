"""Faults of issue 12, end to end through the sweep's command line on FSDD, each on a 2-run grid:
a corrupt shard used by one run; Ctrl-C to the driver's process group, then --resume, against a
clean run's points; --overwrite, a second start and --resume against a live sweep. The faults
that need no sweep are tested where their code is (test_rundir, test_train, test_sweep_lock,
test_prepare); docs/reliability.md lists them all."""

import json
import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from test_sweep_run import _kill_group, cli

RECIPE = """name: {name}
data: {{manifest: {manifest}, crop_frames: 64, batch_size: 16, num_workers: 0, eval_crop_frames: 200}}
grid:
  models:
    lstm: [{sizes}]
  subsets: [{subsets}]
optim: {{lr: 3.0e-3, warmup: 0.05, decay: 0.2}}
train_budget: {{frames: {frames}}}
eval: {{points: {points}, first: 0.05}}
trainer: {{accelerator: cpu, log_every_n_steps: 10}}
resources: {{cpus: 1}}
ray: {{max_failures: 1, num_cpus: 2}}
pruning: {{policy: off}}
"""


def write(tmp_path, name, manifest, sizes="{width: 8, depth: 1}", subsets="d7", frames=40_000, points=6):
    path = tmp_path / f"sweep_{name}.yaml"
    path.write_text(
        RECIPE.format(name=name, manifest=manifest, sizes=sizes, subsets=subsets, frames=frames, points=points)
    )
    return path


def summary(sweep: Path, run_id: str) -> dict:
    return json.loads((sweep / "runs" / run_id / "summary.json").read_text())


def test_a_corrupt_shard_fails_its_run_and_stays_out_of_the_results(tmp_path, prepared_fsdd):
    """Defect 1: the run whose subset holds a bit-flipped shard was recorded finished (0 frames, an
    untrained loss in the selection and the fits) and the sweep exited 0. Now it is interrupted by the
    crash, retried from its checkpoint, failed when the retry crashes too; the other run is untouched."""
    data = tmp_path / "data"
    shutil.copytree(prepared_fsdd.parent, data)
    shard = data / "train" / "shard-000004.tar"  # in d4, not in d3 (FSDD: 5 shards up to d4)
    from apcscale.data import Manifest

    m = Manifest.load(data)
    assert (
        "train/shard-000004.tar" in m.subset("d4")["shards"]
        and "train/shard-000004.tar" not in m.subset("d3")["shards"]
    )
    raw = bytearray(shard.read_bytes())
    raw[20_000:20_010] = bytes(10)
    shard.write_bytes(bytes(raw))
    # a budget over one pass of d4 (13k frames): the corrupt shard is read whatever the shard order
    path = write(tmp_path, "shard", data / "manifest.json", subsets="d3, d4", frames=15_000, points=3)
    proc = cli(path, "--output", tmp_path / "out", "--no-progress", start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        _kill_group(proc)
    sweep = tmp_path / "out" / "shard"
    bad, good = "lstm-w8-d1-d4-s0", "lstm-w8-d1-d3-s0"
    assert proc.returncode == 1, out
    assert f"{bad} crashed (" in out and f"failed {bad}" in out
    assert "1 run(s) failed with an error" in out and "shard-000004.tar" in out.splitlines()[-1]
    s = summary(sweep, bad)
    assert s["status"] == "failed" and s["end"] == "error" and "ShardError: corrupt shard" in s["error"]
    assert s["frames"] < 15_000
    attempts = [json.loads(x) for x in (sweep / "attempts.jsonl").read_text().splitlines()]
    assert [a["run_id"] for a in attempts].count(bad) == 2  # retried once (ray.max_failures: 1)
    assert summary(sweep, good)["status"] == "finished"
    runs = pd.read_csv(sweep / "results" / "runs.csv").set_index("run_id")
    assert runs.loc[bad, "status"] == "failed" and "ShardError" in runs.loc[bad, "note"]
    selection = pd.read_csv(sweep / "results" / "selection.csv")
    assert list(selection["D"]) == [runs.loc[good, "D"]]  # the crashed run's loss is not selected
    fit = json.loads((sweep / "results" / "fit.json").read_text())
    assert "1 curve(s)" in fit["frontier"]["all"]["error"]  # nor fitted: one curve is left
    points = pd.read_csv(sweep / "results" / "points.csv")
    assert set(points.loc[points["run_id"] == bad, "status"]) == {"failed"}
    assert "Failed runs" in (sweep / "results" / "report.txt").read_text()


def _clean_points(sweep: Path, clean: Path) -> pd.DataFrame:
    """The points a clean, uninterrupted sweep gives: every planned run trained to its end in this
    process, as a trial trains it (one thread, the plan's recipe and manifest), then tabulated."""
    from apcscale.sweep.plan import Plan
    from apcscale.sweep.tables import load_tables
    from apcscale.train.config import TrainRecipe
    from apcscale.train.run import run_training
    from apcscale.utils.schema import from_dict

    clean.mkdir()
    for name in ("plan.json", "recipe.yaml"):
        shutil.copy(sweep / name, clean / name)
    plan = Plan.load(clean / "plan.json")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for r in plan.runs:
            run_training(
                from_dict(TrainRecipe, r.recipe),
                run_dir=clean / "runs" / r.run_id,
                manifest=plan.manifest,
                progress=False,
            )
    finally:
        torch.set_num_threads(threads)
    return load_tables(clean)[0]


def test_ctrl_c_then_resume_gives_a_clean_runs_points_and_a_live_sweep_is_locked(tmp_path, prepared_fsdd, capsys):
    """Defect 2: Ctrl-C (SIGINT to the driver's process group, as a terminal sends it) wrote the runs in
    flight as pruned, --resume took them as done, and their points were lost. Defects 3-4: --overwrite
    deleted a live sweep; a second driver on the same --output corrupted it. Now the second start,
    --overwrite and --resume fail at once naming the live driver; the runs in flight are interrupted
    and --resume continues them from their checkpoints, ending with a clean run's points."""
    from apcscale.recipes.sweep import main as sweep_main
    from apcscale.train.rundir import RunDir

    path = write(
        tmp_path, "ctrlc", prepared_fsdd, sizes="{width: 16, depth: 1}", subsets="d6, d7", frames=60_000, points=8
    )
    sweep = tmp_path / "out" / "ctrlc"
    run_ids = ("lstm-w16-d1-d6-s0", "lstm-w16-d1-d7-s0")
    proc = cli(path, "--output", tmp_path / "out", "--no-progress", start_new_session=True)
    try:
        deadline = time.time() + 240
        while not (sweep / "plan.json").is_file() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        # the same command line, from this process: quick, so the sweep is surely still live
        for flags in ((), ("--overwrite",), ("--resume",)):
            assert sweep_main([str(path), "--output", str(tmp_path / "out"), "--no-progress", *flags]) == 2
            answer = capsys.readouterr().out
            assert answer.startswith(f"error: {sweep} is in use by the sweep driver pid {proc.pid} on host"), answer
            assert len(answer.strip().splitlines()) == 1

        def in_flight() -> list[str]:  # past its first checkpoint (3 evaluations recorded), not ended
            out = []
            for r in run_ids:
                curve = sweep / "runs" / r / "curve.csv"
                if (
                    curve.is_file()
                    and len(curve.read_text().splitlines()) >= 4
                    and RunDir(curve.parent).ended() is None
                ):
                    out.append(r)
            return out

        while time.time() < deadline and proc.poll() is None and not in_flight():
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        _kill_group(proc)
    assert proc.returncode == 130, out
    assert "--resume" in out.splitlines()[-1]
    assert (sweep / "plan.json").is_file()  # nothing was deleted by the --overwrite
    assert not any(
        json.loads(x).get("action") == "stop"
        for x in (sweep / "decisions.jsonl").read_text().splitlines()
        if x.strip() and json.loads(x).get("mode") != "shadow"
    )
    # a run in flight is interrupted ("running" if its worker was killed with Ray's processes before it
    # could say so), never stopped; one may have finished in the moment the signal took to arrive
    statuses = {r: RunDir(sweep / "runs" / r).status for r in run_ids}
    assert set(statuses.values()) <= {"interrupted", "running", "finished", "planned"}, statuses
    interrupted = [r for r, st in statuses.items() if st in ("interrupted", "running")]
    assert interrupted, statuses

    proc = cli(path, "--output", tmp_path / "out", "--no-progress", "--resume", start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        _kill_group(proc)
    assert proc.returncode == 0, out
    attempts = [json.loads(x) for x in (sweep / "attempts.jsonl").read_text().splitlines()]
    for run_id in interrupted:  # continued from its checkpoint, not restarted
        assert [a for a in attempts if a["run_id"] == run_id][-1]["resumed_at_frames"] > 0
    got = pd.read_csv(sweep / "results" / "points.csv")
    want = _clean_points(sweep, tmp_path / "clean")
    assert (got["status"] == "finished").all() and (want["status"] == "finished").all()
    assert list(got["run_id"]) == list(want["run_id"])  # every evaluation of every run, none twice
    for run_id, g in got.groupby("run_id"):
        w = want[want["run_id"] == run_id]
        resumed_at = [a for a in attempts if a["run_id"] == run_id][-1]["resumed_at_frames"]
        upto = (w["frames"] <= resumed_at).to_numpy()
        # up to the checkpoint it resumed from: the clean run's evaluations exactly
        cols = ["step", "frames", "flops", "dev_loss", "copy_baseline", "lr"]
        pd.testing.assert_frame_equal(
            g.loc[upto, cols].reset_index(drop=True), w.loc[upto, cols].reset_index(drop=True)
        )
        # after it: the same schedule, on batches in another order (the data stream restarts, docs/reliability.md)
        assert np.all(np.abs(g["frames"].to_numpy() - w["frames"].to_numpy()) <= 16 * 64)
        # (measured: up to 2.7% apart mid-curve, 0.9% at the end, on the first run of this test)
        rel = np.abs(g["dev_loss"].to_numpy() / w["dev_loss"].to_numpy() - 1)
        assert rel.max() < 0.06 and rel[-1] < 0.03, (run_id, rel)
    # fit.json holds the frontier's segments as records, not repr strings
    segments = json.loads((sweep / "results" / "fit.json").read_text())["frontier"]["all"]["segments"]
    assert segments and all(set(s) == {"run_id", "C_start", "C_end", "n_points"} for s in segments)
    assert {s["run_id"] for s in segments} <= set(got["run_id"])
