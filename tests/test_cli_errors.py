"""One-line errors instead of tracebacks (issue 12, defects 6-8): a recipe without a grid, an invalid
--set value, --resume with options it cannot honour, a shard error or a NaN in the train command,
Ctrl-C before a sweep trains."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from apcscale.recipes.sweep import main as sweep_main
from apcscale.recipes.train import main as train_main
from apcscale.sweep.recipe import SweepRecipe
from apcscale.utils.schema import to_dict

ROOT = Path(__file__).resolve().parents[1]


def one_line_error(out: str) -> str:
    lines = [x for x in out.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out
    return lines[0]


@pytest.mark.parametrize("text", ["", "name: x\n", "name: x\ngrid: {}\n"], ids=["empty", "no grid", "empty grid"])
def test_a_recipe_without_a_grid_fails_validation(tmp_path, capsys, text):
    """It used to pass validation and crash in plan_summary with an IndexError."""
    path = tmp_path / "sweep_x.yaml"
    path.write_text(text)
    assert sweep_main([str(path), "--output", str(tmp_path / "out"), "--dry-run"]) == 2
    line = one_line_error(capsys.readouterr().out)
    assert "grid.models: name at least one architecture" in line


def test_an_invalid_set_value_names_the_field(tmp_path, capsys):
    path = tmp_path / "sweep_x.yaml"
    path.write_text("name: x\ngrid: {models: {lstm: [{width: 8, depth: 1}]}}\n")
    assert sweep_main([str(path), "--set", "grid.subsets=[d0", "--dry-run"]) == 2
    line = one_line_error(capsys.readouterr().out)
    assert "grid.subsets: '[d0' is not a valid YAML value" in line
    assert train_main(["train_lstm_fsdd", "--set", "optim.lr={1e-3"]) == 2
    assert "optim.lr: '{1e-3' is not a valid YAML value" in capsys.readouterr().err


def test_resume_refuses_what_it_cannot_change(tmp_path, capsys):
    """--resume silently ignored --pruning and --audio (it restores the scheduler and the plan)."""
    sweep = tmp_path / "out" / "x"
    sweep.mkdir(parents=True)
    recipe = SweepRecipe(name="x")
    recipe.pruning.policy = "frontier"
    (sweep / "recipe.yaml").write_text(yaml.safe_dump(to_dict(recipe)))
    (sweep / "plan.json").write_text("{}")
    path = tmp_path / "sweep_x.yaml"
    path.write_text("name: x\ngrid: {models: {lstm: [{width: 8, depth: 1}]}}\n")
    base = [str(path), "--output", str(tmp_path / "out"), "--resume"]
    assert sweep_main(base + ["--pruning", "off"]) == 2
    assert "pruning.policy: the sweep ran with pruning 'frontier'" in one_line_error(capsys.readouterr().out)
    assert sweep_main(base + ["--audio", str(tmp_path)]) == 2
    assert "--resume takes no --audio" in one_line_error(capsys.readouterr().out)
    assert sweep_main(base + ["--overwrite"]) == 2
    assert "give one of them" in one_line_error(capsys.readouterr().out)
    assert sweep_main(base + ["--set", "optim.lr=1e-2"]) == 2
    assert "optim.lr: cannot change the recipe of a sweep being resumed" in one_line_error(capsys.readouterr().out)
    assert sweep_main([str(path), "--output", str(tmp_path / "elsewhere"), "--resume"]) == 2
    assert "nothing to resume in" in one_line_error(capsys.readouterr().out)


def test_sweep_command_refusals(tmp_path, capsys):
    path = tmp_path / "sweep_x.yaml"
    path.write_text("name: x\ngrid: {models: {lstm: [{width: 8, depth: 1}]}}\n")
    assert sweep_main([str(path), "--set", "grid.subsets", "--dry-run"]) == 2
    assert "must look like section.field=value" in one_line_error(capsys.readouterr().out)
    (tmp_path / "out" / "x").mkdir(parents=True)
    (tmp_path / "out" / "x" / "plan.json").write_text("{}")
    assert sweep_main([str(path), "--output", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "already holds a sweep; --resume continues it, --overwrite replaces it" in one_line_error(
        capsys.readouterr().out
    )
    assert sweep_main(["--report", str(tmp_path)]) == 2
    assert "is not a sweep directory (no plan.json)" in one_line_error(capsys.readouterr().out)
    assert sweep_main([str(path), "--manifest", str(tmp_path / "missing.json"), "--output", str(tmp_path / "o2")]) == 2
    last = capsys.readouterr().out.strip().splitlines()[-1]  # after the line naming the sweep
    assert last.startswith("error: data.manifest: manifest not found")


def test_ctrl_c_before_training_gives_a_hint_not_a_traceback(tmp_path, capsys, monkeypatch):
    """Ctrl-C during preparation printed a traceback and no hint."""
    import apcscale.train.run as run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "resolve_manifest", interrupted)
    path = tmp_path / "sweep_x.yaml"
    path.write_text("name: x\ngrid: {models: {lstm: [{width: 8, depth: 1}]}}\n")
    assert sweep_main([str(path), "--output", str(tmp_path / "out"), "--no-progress"]) == 130
    out = capsys.readouterr().out
    assert "interrupted: nothing was trained; run the same command again" in " ".join(out.split())
    assert "Traceback" not in out


TRAIN = """name: t
data: {{manifest: {manifest}, subset: d0, crop_frames: 64, batch_size: 16, num_workers: 0}}
model: {{arch: lstm, width: 8, depth: 1}}
optim: {{lr: {lr}, warmup: 0.0, grad_clip: 0.0}}
budget: {{frames: 20000}}
eval: {{points: 2, at_start: false}}
trainer: {{accelerator: cpu}}
output_dir: {out}
"""


def train_cli(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "apcscale.recipes.train", *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_train_command_errors_are_one_line(tmp_path, prepared_fsdd):
    """The train command printed tracebacks for a shard error and a non-finite loss."""
    data = tmp_path / "data"
    shutil.copytree(prepared_fsdd.parent, data)
    shard = data / "train" / "shard-000000.tar"  # d0's only shard, cut short (a bit flip: test_train.py)
    shard.write_bytes(shard.read_bytes()[:50_000])
    path = tmp_path / "train_t.yaml"
    path.write_text(TRAIN.format(manifest=data / "manifest.json", lr=3e-3, out=tmp_path / "runs"))
    done = train_cli(path, "--no-progress")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: bad shard(s): {shard}: 50000 bytes, the manifest says")
    assert last.endswith(
        "the run is recorded interrupted in "
        + str(tmp_path / "runs" / "t" / "summary.json")
        + ": re-prepare the data, then --resume continues it from its last checkpoint"
    )

    path.write_text(TRAIN.format(manifest=prepared_fsdd, lr=1e6, out=tmp_path / "runs2"))
    done = train_cli(path, "--no-progress")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: training loss became")
    summary = json.loads((tmp_path / "runs2" / "t" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["end"] == "diverged"
