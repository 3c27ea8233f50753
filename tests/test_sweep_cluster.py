"""A sweep on an existing Ray cluster: `ray start --head` in its own process, then the sweep's driver
connects with `--address` instead of starting a local Ray (what docs/cluster.md tells users to do)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from test_sweep_run import cli, write

RAY = Path(sys.executable).with_name("ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(tmp_path):
    """A one-node cluster (2 CPUs and a marker resource only this cluster has), with Ray's token
    authentication on, as `ray start --head` does where ~/.ray/auth_token exists (Ray >= 2.59; a
    local sweep's own Ray writes that file). HOME is a temporary folder holding that token, for the
    head and for the driver. Torn down afterwards."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_AUTH_MODE", None)
    env.pop("RAY_AUTH_TOKEN", None)
    subprocess.run([str(RAY), "get-auth-token", "--generate"], env=env, check=True, capture_output=True)
    assert (home / ".ray" / "auth_token").is_file()
    port = free_port()
    temp_dir = Path("/tmp") / f"ray-test-{port}"  # short: Ray's socket paths must stay under 108 bytes
    head = subprocess.Popen(
        [
            str(RAY),
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
            '--resources={"apcscale_test_cluster": 1}',
            f"--temp-dir={temp_dir}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.time() + 120
    status_env = {**env, "RAY_AUTH_MODE": "token"}
    while True:  # ready once `ray status` answers for this address
        if head.poll() is not None:
            pytest.fail(f"ray start --head exited: {head.stdout.read()}")
        if (
            subprocess.run([str(RAY), "status", f"--address={address}"], capture_output=True, env=status_env).returncode
            == 0
        ):
            break
        if time.time() > deadline:
            os.killpg(head.pid, signal.SIGKILL)
            pytest.fail("the Ray head did not come up in 120 s")
        time.sleep(1)
    yield address, env, temp_dir
    os.killpg(head.pid, signal.SIGTERM)  # --block: the head tears down what it started
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.slow
def test_sweep_runs_on_an_existing_cluster_through_address(tmp_path, prepared_fsdd, ray_head):
    address, env, temp_dir = ray_head
    path = write(tmp_path, prepared_fsdd, "cluster", frames=20_000, extra="pruning: {policy: off}")
    # Ray sends its token to an explicitly named address only with RAY_AUTH_MODE=token: without it, a
    # clear error that says so (and nothing is planned or written)
    proc = cli(path, "--address", address, "--output", tmp_path / "out", "--no-progress", env=env)
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 2, out
    said = " ".join(out.split())  # the console wraps long lines
    assert f"could not connect to the Ray cluster at '{address}'" in said and "export RAY_AUTH_MODE=token" in said
    assert not (tmp_path / "out" / "cluster" / "plan.json").exists()
    env = {**env, "RAY_AUTH_MODE": "token"}
    proc = cli(path, "--address", address, "--output", tmp_path / "out", "--no-progress", env=env)
    out, _ = proc.communicate(timeout=400)
    assert proc.returncode == 0, out
    said = " ".join(out.split())
    assert f"on the Ray cluster at {address}: 2 CPUs" in said and "token authentication on" in said
    sweep = tmp_path / "out" / "cluster"
    runs = pd.read_csv(sweep / "results" / "runs.csv")
    assert len(runs) == 8 and (runs["status"] == "finished").all()
    # the trials ran on that cluster: its workers (not the driver's process) trained them, and the
    # plan saw the cluster's resources, not a local Ray's
    plan = json.loads((sweep / "plan.json").read_text())
    assert plan["capacity"]["cpus"] == 2.0
    attempts = [json.loads(line) for line in (sweep / "attempts.jsonl").read_text().splitlines()]
    assert len(attempts) == 8 and all(a["trial_id"] for a in attempts)
    assert proc.pid not in {a["pid"] for a in attempts}
    # ... and each trial's process was a worker of that cluster: its log is in the head's session
    logs = {p.name for p in temp_dir.glob("session_*/logs/worker-*.out")}
    for a in attempts:
        assert any(name.endswith(f"-{a['pid']}.out") for name in logs), (a, sorted(logs)[:5])


def test_a_ray_client_address_is_refused_with_what_to_use_instead(tmp_path, prepared_fsdd):
    path = write(tmp_path, prepared_fsdd, "client", frames=20_000, extra="pruning: {policy: off}")
    proc = cli(
        path, "--address", "ray://127.0.0.1:10001", "--output", tmp_path / "out", "--no-progress", env=dict(os.environ)
    )
    out, _ = proc.communicate(timeout=200)
    assert proc.returncode == 2, out
    said = " ".join(out.split())
    assert "'ray://127.0.0.1:10001' is a Ray Client address" in said and "--address auto" in said
    assert not (tmp_path / "out" / "client" / "plan.json").exists()
