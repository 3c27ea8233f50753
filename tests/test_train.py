"""Short real training runs on FSDD: the dev loss goes down, counts are exact, NaN fails clearly."""

import json
import math

import pytest

from apcscale.models.apc import NonFiniteLossError
from apcscale.train.config import TrainRecipe
from apcscale.train.run import RunDirError, run_training
from apcscale.utils.schema import from_dict


def recipe(manifest, arch, **over):
    data = {
        "name": f"t-{arch}",
        "data": {"manifest": str(manifest), "crop_frames": 64, "batch_size": 16, "num_workers": 0},
        "model": {"arch": arch, "width": 48, "depth": 2, **({"heads": 2} if arch == "transformer" else {})},
        "optim": {"lr": 3e-3, "warmup": 0.05},
        "budget": {"frames": 40_000},
        "eval": {"points": 4},
        "trainer": {"accelerator": "cpu", "log_every_n_steps": 5},
    }
    for key, value in over.items():
        section, field = key.split("__")
        data[section][field] = value
    return from_dict(TrainRecipe, data)


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_short_run_dev_loss_goes_down(prepared_fsdd, tmp_path, arch):
    result = run_training(recipe(prepared_fsdd, arch), run_dir=tmp_path / arch, progress=False)
    curve = result.curve
    assert result.status == "finished"
    assert curve[0]["frames"] == 0 and curve[0]["flops"] == 0  # the untrained model is the curve's start
    assert len(curve) == 5  # at_start + 4 log-spaced points
    losses = [p["dev/loss"] for p in curve]
    assert losses[-1] < 0.8 * losses[0]
    # frames are counted exactly and the budget is met to within one batch
    assert 40_000 <= result.summary["frames"] < 40_000 + 16 * 64
    assert [p["frames"] for p in curve] == sorted(p["frames"] for p in curve)
    # FLOPs follow from the frames: ~ flops_per_frame(crop) x frames (shorter crops cost less attention)
    ratio = result.summary["flops"] / (result.summary["frames"] * result.summary["flops_per_frame"])
    assert 0.9 < ratio <= 1.0 + 1e-9
    on_disk = json.loads((tmp_path / arch / "summary.json").read_text())
    assert on_disk["final_dev_loss"] == pytest.approx(losses[-1])
    assert (tmp_path / arch / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / arch / "logs" / "version_0" / "metrics.csv").is_file()


def test_nan_loss_fails_clearly_and_keeps_what_was_done(prepared_fsdd, tmp_path):
    r = recipe(prepared_fsdd, "lstm", optim__lr=1e6, optim__grad_clip=0.0, optim__warmup=0.0, budget__frames=200_000)
    with pytest.raises(NonFiniteLossError, match=r"training loss became (nan|inf).*lstm-w48-d2"):
        run_training(r, run_dir=tmp_path / "nan", progress=False)
    summary = json.loads((tmp_path / "nan" / "summary.json").read_text())
    assert summary["status"] == "failed" and "loss became" in summary["error"]
    assert summary["curve"] and math.isfinite(summary["curve"][0]["dev/loss"])  # the start point is kept


def test_existing_run_dir_is_not_clobbered(prepared_fsdd, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text("{}")
    with pytest.raises(RunDirError, match="--resume"):
        run_training(recipe(prepared_fsdd, "lstm"), run_dir=tmp_path / "run", progress=False)
