"""Shared fixtures: the real speech in ../shared/data/fsdd, a slice of it, and a prepared corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    """FSDD (folder with recordings/): $APCSCALE_TEST_AUDIO, default ../shared/data/fsdd from the repo root."""
    raw = os.environ.get("APCSCALE_TEST_AUDIO")
    path = Path(raw).expanduser() if raw else ROOT.parent / "shared" / "data" / "fsdd"
    if not path.is_absolute():
        path = ROOT / path
    if not (path / "recordings").is_dir() or not any((path / "recordings").glob("*.wav")):
        pytest.fail(
            f"the test speech is missing: no {path}/recordings/*.wav. Point APCSCALE_TEST_AUDIO at a copy of "
            "the Free Spoken Digit Dataset (https://github.com/Jakobovski/free-spoken-digit-dataset, "
            "commit 26eb9aa) or place it at ../shared/data/fsdd",
            pytrace=False,
        )
    return path.resolve()


@pytest.fixture(scope="session")
def fsdd_slice(fsdd_dir: Path, tmp_path_factory) -> Path:
    """300 FSDD recordings (every speaker, every digit, indices 0-4), symlinked into a temporary folder."""
    out = tmp_path_factory.mktemp("fsdd_slice")
    (out / "recordings").mkdir()
    for wav in sorted((fsdd_dir / "recordings").glob("*.wav")):
        if int(wav.stem.rsplit("_", 1)[1]) < 5:
            (out / "recordings" / wav.name).symlink_to(wav)
    return out


@pytest.fixture(scope="session")
def prepared_fsdd(fsdd_dir: Path, tmp_path_factory) -> Path:
    """manifest.json of all of FSDD prepared (40 log-Mel bins; dev = one whole speaker; subsets d0..d7)."""
    from apcscale.data import ensure_prepared

    return ensure_prepared(fsdd_dir, tmp_path_factory.mktemp("prepared") / "fsdd", progress=False)


DIVERGED_SWEEP = """# a small real sweep in which one run diverges (an absurd learning rate set by a per-size rule)
name: nan
data: {{manifest: {manifest}, crop_frames: 64, batch_size: 16, num_workers: 0, eval_crop_frames: 200}}
grid:
  models:
    lstm: [{{width: 8, depth: 1}}, {{width: 32, depth: 2}}]
    transformer: [{{width: 8, depth: 1, heads: 1}}, {{width: 16, depth: 2, heads: 1}}]
  subsets: [d1, d7]
optim: {{lr: 3.0e-3, warmup: 0.05, decay: 0.2}}
train_budget: {{frames: 30000}}
eval: {{points: 8, first: 0.05}}
trainer: {{accelerator: cpu, log_every_n_steps: 10}}
resources: {{cpus: 1}}
ray: {{max_failures: 1, num_cpus: 2}}
rules:
  - match: {{arch: lstm, width: 32, subset: d7}}
    set: {{optim.lr: 1.0e6, optim.grad_clip: 0.0, optim.warmup: 0.0}}
pruning: {{policy: off}}
"""


@pytest.fixture(scope="session")
def diverged_sweep(prepared_fsdd: Path, tmp_path_factory) -> tuple[Path, str]:
    """One real sweep through the command line, shared by the tests that read a sweep's results: 2 LSTM and 2
    Transformer sizes x 2 subsets of FSDD, no pruning, and lstm-w32-d2-d7-s0 diverges (learning rate 1e6).
    Returns (the sweep directory, the command's output). Read it; never write into it."""
    import subprocess
    import sys

    tmp = tmp_path_factory.mktemp("diverged_sweep")
    recipe = tmp / "sweep_nan.yaml"
    recipe.write_text(DIVERGED_SWEEP.format(manifest=prepared_fsdd))
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "apcscale.recipes.sweep", str(recipe), "--output", str(tmp / "out"), "--no-progress"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout
    return tmp / "out" / "nan", proc.stdout
