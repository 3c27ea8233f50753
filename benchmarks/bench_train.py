"""Training throughput: the Lightning APC module against a plain PyTorch loop.

Both train the same model (same initial weights) with the same optimiser,
schedule, clipping and loss on the same batches (real FSDD features, taken
from the streaming pipeline once and replayed from memory so that data loading
is not part of the comparison). Reported: frames/s of each and the ratio
Lightning / plain (target >= 0.95), median over alternating repeats.

    python benchmarks/bench_train.py                       # both archs, CPU
    python benchmarks/bench_train.py --arch transformer --width 512 --device cuda --precision bf16-mixed
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apcscale.models.apc import APCModule  # noqa: E402
from apcscale.models.config import ModelConfig  # noqa: E402
from apcscale.models.optim import OptimConfig, lr_factor  # noqa: E402
from apcscale.train.loop import EvalIntervals  # noqa: E402


def collect_batches(manifest: Path, n: int, batch_size: int, crop: int) -> list[dict]:
    from apcscale.data import APCDataModule

    dm = APCDataModule(manifest, subset=None, crop_frames=crop, batch_size=batch_size, num_workers=0)
    dm.setup("fit")
    out = []
    for batch in dm.train_dataloader():
        out.append(batch)
        if len(out) == n:
            return out
    return out


class Replay:
    """Batches from memory, for both loops."""

    def __init__(self, batches, device):
        self.batches, self.device = batches, device

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


def plain_loop(module: APCModule, batches: list[dict], device: str, precision: str) -> float:
    net = module.net.to(device)
    cfg = module.optim_cfg
    decay = [p for p in net.parameters() if p.ndim >= 2]
    no_decay = [p for p in net.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.eps)
    total = sum(b["n_frames"] for b in batches)
    frames = 0
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: lr_factor(frames / total, cfg))
    autocast = torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    net.train()
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    for batch in batches:
        feats = batch["feats"].to(device, non_blocking=True)
        lengths = batch["lengths"].to(device, non_blocking=True)
        with autocast:
            s, c = net.loss_terms(feats, lengths)
            loss = s / c.clamp_min(1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        frames += batch["n_frames"]
        if not torch.isfinite(loss.detach()):  # the same NaN check the module makes (on CPU every step)
            raise RuntimeError("non-finite loss")
    sync()
    return frames / (time.perf_counter() - start)


PEAK_TFLOPS = {  # dense bf16 tensor-core peaks from the vendors' datasheets (no sparsity)
    "H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0,
}


def device_peak_tflops(device: str, override: float | None) -> float | None:
    if override:
        return override
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def lightning_loop(module: APCModule, batches: list[dict], device: str, precision: str) -> float:
    total = sum(b["n_frames"] for b in batches)
    module.clock.total = total
    module.clock.points = [total]
    trainer = L.Trainer(
        accelerator="gpu" if device.startswith("cuda") else "cpu", devices=1, precision=precision,
        max_epochs=-1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, gradient_clip_val=module.optim_cfg.grad_clip,
        limit_val_batches=1,
    )
    val = Listed(batches[:1])
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    trainer.fit(module, train_dataloaders=EvalIntervals(Replay(batches, device), module), val_dataloaders=val)
    sync()
    return module.frames_seen / (time.perf_counter() - start)


def proto_flops(module: APCModule, batches: list[dict]) -> float:
    """Analytic training FLOPs of the batches (the count the runs report as C)."""
    from apcscale.models.counting import batch_training_flops

    return sum(batch_training_flops(module.net, b["lengths"].tolist()) for b in batches)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", help="prepared manifest (default: prepare ../shared/data/fsdd into a temp dir)")
    ap.add_argument("--audio", default=str(ROOT.parent / "shared" / "data" / "fsdd"))
    ap.add_argument("--arch", choices=["lstm", "transformer", "both"], default="both")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", default=None, help="default: bf16-mixed on cuda, 32-true on cpu")
    ap.add_argument("--compile", action="store_true", help="torch.compile the context network (GPU)")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="device peak for model FLOPs utilisation (default: known GPUs' bf16 dense peak)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import logging

    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    precision = args.precision or ("bf16-mixed" if args.device.startswith("cuda") else "32-true")

    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(args.manifest) if args.manifest else None
        if manifest is None:
            from apcscale.data import ensure_prepared

            manifest = ensure_prepared(Path(args.audio), Path(tmp) / "prepared", progress=False)
        batches = collect_batches(manifest, args.batches, args.batch_size, args.crop)
    feature_dim = batches[0]["feats"].shape[-1]
    frames = sum(b["n_frames"] for b in batches)
    print(f"{len(batches)} real FSDD batches of {args.batch_size} crops <= {args.crop} frames ({frames:,} frames), "
          f"device {args.device}, precision {precision}, torch threads {torch.get_num_threads()}")
    peak = device_peak_tflops(args.device, args.peak_tflops)
    if args.device.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name()}, peak {peak} TFLOP/s (bf16 dense)")
    print(f"{'model':28s} {'plain fr/s':>12s} {'Lightning fr/s':>15s} {'ratio':>7s} {'TFLOP/s':>8s} {'MFU':>6s}")
    archs = ["lstm", "transformer"] if args.arch == "both" else [args.arch]
    for arch in archs:
        cfg = ModelConfig(arch=arch, width=args.width, depth=args.depth)
        torch.manual_seed(0)
        proto = APCModule(feature_dim, cfg, OptimConfig(lr=1e-3), clock={"unit": "frames", "total": 1, "points": [1]},
                          compile=args.compile)
        if args.compile:
            proto.configure_model()
        # warm up both paths once (allocator, kernels, Lightning's first-fit setup)
        plain_loop(copy.deepcopy(proto), batches[:5], args.device, precision)
        lightning_loop(copy.deepcopy(proto), batches[:5], args.device, precision)
        plain, light = [], []
        for _ in range(args.repeats):
            plain.append(plain_loop(copy.deepcopy(proto), batches, args.device, precision))
            light.append(lightning_loop(copy.deepcopy(proto), batches, args.device, precision))
        p, lt = statistics.median(plain), statistics.median(light)
        flops_per_frame = proto_flops(proto, batches) / frames
        tflops = lt * flops_per_frame / 1e12
        mfu = f"{tflops / peak:6.1%}" if peak else "   n/a"
        print(f"{cfg.label:28s} {p:12,.0f} {lt:15,.0f} {lt / p:7.3f} {tflops:8.3f} {mfu}")


if __name__ == "__main__":
    main()
