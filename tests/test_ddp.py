"""DDP through Ray Train's Lightning integration (gloo on CPU) equals one process on the global batch.

Two Ray Train workers each train the APC module (RayDDPStrategy, RayLightningEnvironment,
prepare_trainer) on half of every global batch of real FSDD features; one plain process
trains on the whole global batches. Equal-length crops make the mean of the two ranks'
losses the global loss, so the per-step losses and the final weights must agree, and
both must count the same global frames.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

ray = pytest.importorskip("ray")

STEPS, GLOBAL_BATCH, CROP, MELS = 6, 8, 32, 40
MODEL = {"arch": "lstm", "width": 32, "depth": 2}


def global_batches(fsdd_dir: Path) -> list[dict]:
    feats = []
    for path in sorted((fsdd_dir / "recordings").glob("*.wav")):
        audio, rate = sf.read(path, dtype="float32")
        fb = torchaudio.compliance.kaldi.fbank(
            torch.from_numpy(audio)[None] * 32768, num_mel_bins=MELS, sample_frequency=rate, dither=0.0
        )
        if fb.shape[0] >= CROP:
            feats.append(fb[:CROP])
        if len(feats) == STEPS * GLOBAL_BATCH:
            break
    x = torch.stack(feats)
    x = (x - x.mean((0, 1))) / x.std((0, 1))
    return [
        {"feats": x[i * GLOBAL_BATCH : (i + 1) * GLOBAL_BATCH], "lengths": torch.full((GLOBAL_BATCH,), CROP)}
        for i in range(STEPS)
    ]


def shard(batch: dict, rank: int, world: int) -> dict:
    feats, lengths = batch["feats"][rank::world], batch["lengths"][rank::world]
    return {"feats": feats, "lengths": lengths, "n_frames": int(lengths.sum())}


class Batches:
    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        while True:
            yield from self.batches


class Listed:
    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


def train(batches: list[dict], rank: int, world: int, trainer_kwargs: dict, hook=None):
    import lightning as L

    from apcscale.models.apc import APCModule
    from apcscale.train.loop import EvalIntervals

    mine = [shard(b, rank, world) for b in batches]
    total = sum(int(b["lengths"].sum()) for b in batches)
    torch.manual_seed(0)
    module = APCModule(
        MELS,
        MODEL,
        {"lr": 1e-2, "warmup": 0.2, "grad_clip": 0.5},
        clock={"unit": "frames", "total": total, "points": [total]},
    )
    losses = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    trainer = L.Trainer(
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        gradient_clip_val=0.5,
        callbacks=[Record()],
        **trainer_kwargs,
    )
    if hook is not None:
        trainer = hook(trainer)
    trainer.fit(module, train_dataloaders=EvalIntervals(Batches(mine), module), val_dataloaders=Listed(mine[:1]))
    params = {k: v.detach().cpu().numpy().tolist() for k, v in module.net.state_dict().items()}
    return {
        "losses": losses,
        "frames": module.frames_seen,
        "flops": module.flops_seen,
        "steps": trainer.global_step,
        "params": params,
    }


def ddp_worker(config):
    import ray.train
    from ray.train.lightning import prepare_trainer

    from apcscale.train.distributed import ddp_trainer_overrides

    torch.set_num_threads(1)
    rank = ray.train.get_context().get_world_rank()
    world = ray.train.get_context().get_world_size()
    out = train(torch.load(config["batches"]), rank, world, ddp_trainer_overrides(use_gpu=False), prepare_trainer)
    Path(config["out"], f"rank{rank}.json").write_text(json.dumps(out))


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)
    yield
    ray.shutdown()


def test_two_process_ddp_matches_one_process(fsdd_dir, tmp_path, ray_cluster):
    from ray import cloudpickle
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    batches = global_batches(fsdd_dir)
    torch.save(batches, tmp_path / "batches.pt")
    single = train(batches, 0, 1, {"accelerator": "cpu", "devices": 1})

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import the tests folder
    TorchTrainer(
        ddp_worker,
        train_loop_config={"batches": str(tmp_path / "batches.pt"), "out": str(tmp_path)},
        scaling_config=ScalingConfig(num_workers=2, use_gpu=False, resources_per_worker={"CPU": 1}),
        run_config=RunConfig(name="ddp-test", storage_path=str(tmp_path / "ray")),
    ).fit()
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]

    assert single["steps"] == STEPS and all(r["steps"] == STEPS for r in ranks)
    # the module all-reduces its counts: every rank sees the global frames and FLOPs
    assert single["frames"] == STEPS * GLOBAL_BATCH * CROP
    assert all(r["frames"] == single["frames"] for r in ranks)
    assert all(r["flops"] == pytest.approx(single["flops"]) for r in ranks)
    ddp_losses = np.mean([r["losses"] for r in ranks], axis=0)
    np.testing.assert_allclose(ddp_losses, single["losses"], rtol=1e-4)
    assert single["losses"][-1] < single["losses"][0]  # and it did learn
    for name, value in single["params"].items():
        np.testing.assert_allclose(ranks[0]["params"][name], value, atol=2e-5, err_msg=name)
        np.testing.assert_allclose(ranks[1]["params"][name], value, atol=2e-5, err_msg=name)
