"""Short real training runs on FSDD: the dev loss goes down, counts are exact, NaN fails clearly."""

import json
import math
import shutil

import lightning as L
import pytest

from apcscale.models.apc import NonFiniteLossError
from apcscale.train.config import TrainRecipe
from apcscale.train.run import RunDirError, run_training
from apcscale.train.rundir import RunDir
from apcscale.utils.schema import RecipeError, from_dict


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


@pytest.mark.parametrize("arch,batching", [("lstm", "bucket"), ("transformer", "bucket"), ("gru", "pack")])
def test_short_run_dev_loss_goes_down(prepared_fsdd, tmp_path, arch, batching):
    data = (
        {"batching": batching}
        if batching == "bucket"
        else {"batching": batching, "batch_size": None, "batch_frames": 1024}
    )
    r = recipe(prepared_fsdd, arch, **{f"data__{k}": v for k, v in data.items()})
    result = run_training(r, run_dir=tmp_path / arch, progress=False)
    curve = result.curve
    assert result.status == "finished" and result.summary["end"] == "budget"
    assert curve[0]["frames"] == 0 and curve[0]["flops"] == 0  # the untrained model is the curve's start
    assert len(curve) == 5  # at_start + 4 log-spaced points
    losses = [p["dev/loss"] for p in curve]
    assert losses[-1] < 0.8 * losses[0]
    # frames are counted exactly and the budget is met to within one batch
    assert 40_000 <= result.summary["frames"] < 40_000 + 16 * 64
    # the network computed on little more than the counted frames (FSDD crops of <= 64 frames: most fill
    # more than half a packed row of 64, so packing leaves more of the rows empty than buckets do)
    assert 1.0 <= result.summary["executed_per_counted"] < (1.10 if batching == "bucket" else 1.25)
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
    assert summary["status"] == "failed" and summary["end"] == "diverged" and "loss became" in summary["error"]
    assert summary["curve"] and math.isfinite(summary["curve"][0]["dev/loss"])  # the start point is kept


def test_existing_run_dir_is_not_clobbered(prepared_fsdd, tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text("{}")
    with pytest.raises(RunDirError, match="--resume"):
        run_training(recipe(prepared_fsdd, "lstm"), run_dir=tmp_path / "run", progress=False)


def test_a_cooldown_branch_starts_from_its_parents_checkpoint(prepared_fsdd, tmp_path):
    """A constant-rate parent (a WSD run's stable phase) for 8k frames, then a WSD branch of 10k
    frames from its last checkpoint: the branch starts where the parent ended (same weights: the
    same dev loss; its frames and FLOPs go on from the parent's) and spends only the cooldown."""
    import torch

    parent = run_training(
        recipe(prepared_fsdd, "lstm", optim__schedule="constant", budget__frames=8_000, model__width=16),
        run_dir=tmp_path / "parent",
        progress=False,
    )
    ckpt = tmp_path / "parent" / "checkpoints" / "last.ckpt"
    F0 = int(torch.load(ckpt, map_location="cpu", weights_only=False)["apcscale"]["frames_seen"])
    assert F0 == parent.summary["frames"]
    # a cooldown of half the branch (~8k frames, 8 or more steps): the last step's rate is near zero
    b = recipe(
        prepared_fsdd,
        "lstm",
        optim__schedule="wsd",
        optim__decay=0.5,
        budget__frames=int(F0 / 0.5),
        model__width=16,
        eval__spacing="linear",
        eval__points=10,
    )
    b.init_from = str(ckpt)
    branch = run_training(b, run_dir=tmp_path / "branch", progress=False)
    curve = branch.curve
    assert curve[0]["frames"] == F0 and curve[0]["dev/loss"] == pytest.approx(parent.curve[-1]["dev/loss"], rel=1e-6)
    assert curve[0]["flops"] == pytest.approx(parent.curve[-1]["flops"])
    assert all(p["frames"] > F0 for p in curve[1:]) and curve[-1]["frames"] >= int(F0 / 0.5)
    # cooling down: the rate logged at an evaluation is its last step's, so the end is one step short of zero
    lrs = [p["lr"] for p in curve[1:]]
    assert len(lrs) >= 3 and lrs == sorted(lrs, reverse=True) and 0.2 * 3e-3 < lrs[0] < 3e-3 and lrs[-1] < 0.2 * 3e-3
    assert branch.summary["init_from"]["frames"] == F0
    # the branch trained only its own frames: half a run of its length (what it computed, not how long
    # it took: a wall-time comparison here failed on a loaded machine)
    own = branch.summary["frames"] - F0
    assert 0.5 * int(F0 / 0.5) - 1 <= own < 0.5 * int(F0 / 0.5) + 16 * 64

    # the AdamW moments come from the parent, the learning rate from the branch's own schedule
    from types import SimpleNamespace

    from apcscale.models.apc import APCModule
    from apcscale.train.run import BranchStart

    module = APCModule(40, b.model, b.optim, clock={"unit": "frames", "total": int(F0 / 0.5), "points": [0]})
    start = BranchStart(ckpt, module, int(F0 / 0.5))
    optimizer = module.configure_optimizers()["optimizer"]
    start.on_train_start(SimpleNamespace(optimizers=[optimizer]), module)
    saved = torch.load(ckpt, map_location="cpu", weights_only=False)["optimizer_states"][0]["state"]
    assert set(optimizer.state_dict()["state"]) == set(saved)
    for k, v in saved.items():
        assert torch.equal(optimizer.state_dict()["state"][k]["exp_avg"], v["exp_avg"])
    assert 0.9 * 3e-3 < optimizer.param_groups[0]["lr"] <= 3e-3  # the branch's schedule at 0.5: about the peak

    other = recipe(prepared_fsdd, "lstm", budget__frames=20_000, model__width=24)
    other.init_from = str(ckpt)
    with pytest.raises(RecipeError, match="holds a different model"):
        run_training(other, run_dir=tmp_path / "other", progress=False)
    other.init_from = str(tmp_path / "missing.ckpt")
    with pytest.raises(RecipeError, match="no checkpoint at"):
        run_training(other, run_dir=tmp_path / "other2", progress=False)


class RaiseAt(L.Callback):
    """Raises `exc` at the `at`-th dev evaluation of fit (after the curve recorded it, before the
    checkpoint of that evaluation is written: the worst moment)."""

    def __init__(self, exc: BaseException, at: int):
        self.exc, self.at, self.seen = exc, at, 0

    def on_validation_end(self, trainer, pl_module):
        if trainer.state.fn == "fit":
            self.seen += 1
            if self.seen == self.at:
                raise self.exc


def test_a_signal_leaves_the_run_interrupted_and_resume_finishes_it(prepared_fsdd, tmp_path):
    """SIGTERM in the main thread makes Lightning raise SIGTERMException (a SystemExit): the run is
    interrupted, never finished; --resume continues it from its last checkpoint to its budget."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    r = recipe(prepared_fsdd, "lstm", model__width=16, budget__frames=20_000)
    with pytest.raises(SIGTERMException):
        run_training(r, run_dir=tmp_path / "run", progress=False, callbacks=[RaiseAt(SIGTERMException(), 3)])
    rd = RunDir(tmp_path / "run")
    s = rd.read_summary()
    assert s["status"] == "interrupted" and s["end"] == "signal" and "SIGTERM" in s["error"]
    assert 0 < s["frames"] < 20_000 and len(rd.read_curve()) == 4  # the start and 3 evaluations
    done = run_training(r, run_dir=tmp_path / "run", progress=False, resume=True)
    assert done.status == "finished" and done.summary["end"] == "budget" and done.summary["error"] is None
    frames = [p["frames"] for p in rd.read_curve()]
    assert frames == sorted(set(frames)) and len(frames) == 5 and frames[-1] >= 20_000  # every point once
    assert rd.read_summary()["curve"] == rd.read_curve()


def test_a_scheduler_stop_is_told_from_an_interruption(prepared_fsdd, tmp_path):
    """Ray Tune ends a trial by raising SystemExit in its report, for a scheduler STOP and for Ctrl-C
    at the driver alike: only a decision (what `stopped_by` returns) makes the run stopped."""
    r = recipe(prepared_fsdd, "lstm", model__width=16, budget__frames=20_000)
    decision = {"run_id": "x", "action": "stop", "reason": "extrapolated above the frontier"}
    for name, answer, status in (("stop", decision, "stopped"), ("ctrl-c", None, "interrupted")):
        with pytest.raises(SystemExit):
            run_training(
                r,
                run_dir=tmp_path / name,
                progress=False,
                callbacks=[RaiseAt(SystemExit(0), 2)],
                stopped_by=lambda answer=answer: answer,
            )
        s = RunDir(tmp_path / name).read_summary()
        assert s["status"] == status
        assert s.get("decision") == answer
    assert "without a scheduler decision" in RunDir(tmp_path / "ctrl-c").read_summary()["error"]


def test_a_crash_on_a_corrupt_shard_is_recorded_interrupted_not_finished(prepared_fsdd, tmp_path):
    """Issue 12, defect 1: the run read a bit-flipped shard; it used to be recorded finished with 0 frames."""
    from apcscale.data import Manifest, ShardError

    out = tmp_path / "copy"
    shutil.copytree(prepared_fsdd.parent, out)
    m = Manifest.load(out)
    shard = m.shard_path(m.subset("d0")["shards"][0])
    data = bytearray(shard.read_bytes())
    data[20_000:20_010] = bytes(10)  # inside a sample's features: its crc32 fails
    shard.write_bytes(bytes(data))
    r = recipe(out / "manifest.json", "lstm", model__width=16, budget__frames=20_000, data__subset="d0")
    with pytest.raises(ShardError):
        run_training(r, run_dir=tmp_path / "run", progress=False)
    s = RunDir(tmp_path / "run").read_summary()
    assert s["status"] == "interrupted" and s["end"] == "error"
    assert s["error"].startswith("ShardError: corrupt shard") and str(shard) in s["error"]
    assert s["frames"] < 20_000
