"""Training throughput: batchings against each other, and the Lightning APC module against a plain
PyTorch loop.

Every loop trains the same model (same initial weights) with the same optimiser, schedule,
clipping and loss on real FSDD batches, taken from the streaming pipeline once and replayed from
memory (data loading is not part of the comparison), made three ways: in stream order padded to
their longest crop, 32 crops each (`random`: how the stream batched before length buckets), and
by a budget of frames per batch (rows x steps, 1,400 by default: about the counted frames 32
crops hold) from length buckets (`bucket`, the default) or packed rows (`pack`). Reported per
model and batching: the frames the network computes on per frame counted, and the *counted*
frames per second (what a run's budget and C count) of the plain loop and of Lightning, and
the ratio Lightning / plain (target >= 0.95), and each batching's Lightning rate against
`random`, all in the same run, median over alternating repeats: in the steady state (from the
start of the 6th batch to the end of the last, what a long run sees) and end to end (the whole
`fit()` call, with Trainer set-up and the closing dev evaluation, which a short benchmark run
magnifies).

    python benchmarks/bench_train.py                       # both archs (width 256, depth 3), CPU
    python benchmarks/bench_train.py --arch transformer --width 512 --device cuda --precision bf16-mixed
    python benchmarks/bench_train.py --batchings bucket    # one batching only
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
from apcscale.models.config import ARCHITECTURES, ModelConfig  # noqa: E402
from apcscale.models.layout import Layout  # noqa: E402
from apcscale.models.optim import OptimConfig, lr_factor  # noqa: E402
from apcscale.train.loop import EvalIntervals  # noqa: E402


def collect_batches(manifest: Path, n: int, crop: int, **stream) -> list[dict]:
    from apcscale.data import APCDataModule

    dm = APCDataModule(manifest, subset=None, crop_frames=crop, num_workers=0, **stream)
    dm.setup("fit")
    out = []
    for batch in dm.train_dataloader():
        out.append(batch)
        if len(out) == n:
            break
    dm.teardown("fit")
    return out


def executed(batches: list[dict]) -> float:
    """Frames the network computes on (rows x steps) per frame counted."""
    return sum(b["feats"].shape[0] * b["feats"].shape[1] for b in batches) / sum(b["n_frames"] for b in batches)


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


SKIP = 5  # batches before the steady-state window (allocator, kernels, Lightning's first step)


class Timing:
    """One training loop's clock: the whole call (Trainer set-up and the closing evaluation
    included, for Lightning) and the time from each batch's start to the next one's (everything
    the loop does per step; the last one ends when the last batch is done)."""

    def __init__(self, device: str, n_batches: int):
        self.gpu = device.startswith("cuda")
        self.sync = torch.cuda.synchronize if self.gpu else (lambda: None)
        self.n_batches = n_batches
        self.start = self.end = 0.0
        self.frames: list[int] = []
        self.starts: list[float] = []
        self.last_end = 0.0

    def batch_start(self) -> None:
        if len(self.starts) == SKIP:  # the steady-state window starts (the only sync inside the loop)
            self.sync()
        self.starts.append(time.perf_counter())

    def batch_end(self, frames: int) -> None:
        self.frames.append(int(frames))
        if len(self.frames) == self.n_batches:
            self.sync()
            self.last_end = time.perf_counter()

    def begin(self) -> None:
        self.sync()
        self.start = time.perf_counter()

    def finish(self) -> None:
        self.sync()
        self.end = time.perf_counter()

    @property
    def intervals(self) -> list[float]:
        ends = [*self.starts[1:], self.last_end]
        return [b - a for a, b in zip(self.starts, ends)]

    @property
    def overall(self) -> float:
        return sum(self.frames) / (self.end - self.start)


def steady(timings: list[Timing]) -> float:
    """Steady-state frames/s over repeats, from the start of batch SKIP to the end of the last.
    On the CPU each batch takes the median of its step times over the repeats (the same batches
    in every repeat), so that a stall of the shared machine in one repeat does not count; on a GPU
    (asynchronous: a step's host time is not its device time) the median over repeats of the
    whole window, which is synchronised at both ends."""
    frames = sum(timings[0].frames[SKIP:])
    if not timings[0].gpu:
        return frames / sum(
            statistics.median(t.intervals[i] for t in timings) for i in range(SKIP, timings[0].n_batches)
        )
    return statistics.median(frames / (t.last_end - t.starts[SKIP]) for t in timings)


class TimingCallback(L.Callback):
    def __init__(self, timing: Timing):
        self.timing = timing

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.timing.batch_start()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.timing.batch_end(batch["n_frames"])


def plain_loop(module: APCModule, batches: list[dict], device: str, precision: str) -> Timing:
    net = module.net.to(device)
    cfg = module.optim_cfg
    decay = [p for p in net.parameters() if p.ndim >= 2]
    no_decay = [p for p in net.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=cfg.adam_betas,
        eps=cfg.eps,
    )
    total = sum(b["n_frames"] for b in batches)
    frames = 0
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda _: lr_factor(frames / total, cfg))
    autocast = torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=precision == "bf16-mixed")
    net.train()
    timing = Timing(device, len(batches))
    timing.begin()
    for batch in batches:
        timing.batch_start()
        moved = {k: v.to(device, non_blocking=True) for k, v in batch.items() if isinstance(v, torch.Tensor)}
        with autocast:
            s, c = net.loss_terms(moved["feats"], Layout.of(moved))
            loss = s / c.clamp_min(1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        frames += batch["n_frames"]
        if not torch.isfinite(loss.detach()):  # the same NaN check the module makes (on CPU every step)
            raise RuntimeError("non-finite loss")
        timing.batch_end(batch["n_frames"])
    timing.finish()
    return timing


PEAK_TFLOPS = {  # dense bf16 tensor-core peaks from the vendors' datasheets (no sparsity)
    "H100": 989.0,
    "H200": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "A10": 125.0,
    "L4": 121.0,
}


def device_peak_tflops(device: str, override: float | None) -> float | None:
    if override:
        return override
    if not device.startswith("cuda"):
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_TFLOPS.items() if k in name), None)


def lightning_loop(module: APCModule, batches: list[dict], device: str, precision: str) -> Timing:
    total = sum(b["n_frames"] for b in batches)
    module.clock.total = total
    module.clock.points = [total]
    timing = Timing(device, len(batches))
    trainer = L.Trainer(
        callbacks=[TimingCallback(timing)],
        accelerator="gpu" if device.startswith("cuda") else "cpu",
        devices=1,
        precision=precision,
        max_epochs=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        gradient_clip_val=module.optim_cfg.grad_clip,
        limit_val_batches=1,
    )
    val = Listed(batches[:1])
    timing.begin()
    trainer.fit(module, train_dataloaders=EvalIntervals(Replay(batches, device), module), val_dataloaders=val)
    timing.finish()
    assert sum(timing.frames) == module.frames_seen == total
    return timing


def proto_flops(module: APCModule, batches: list[dict]) -> float:
    """Analytic training FLOPs of the batches (the count the runs report as C)."""
    from apcscale.models.counting import batch_training_flops

    return sum(batch_training_flops(module.net, b["lengths"].tolist()) for b in batches)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", help="prepared manifest (default: prepare ../shared/data/fsdd into a temp dir)")
    ap.add_argument("--audio", default=str(ROOT.parent / "shared" / "data" / "fsdd"))
    ap.add_argument("--arch", choices=[*ARCHITECTURES, "both"], default="both", help="both: lstm and transformer")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--depth", type=int, default=3)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument(
        "--batchings", nargs="+", choices=["random", "bucket", "pack"], default=["random", "bucket", "pack"]
    )
    ap.add_argument("--batch-size", type=int, default=32, help="crops per batch of the random batching")
    ap.add_argument("--batch-frames", type=int, default=1400, help="frames per batch (rows x steps) of bucket and pack")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--precision", default=None, help="default: bf16-mixed on cuda, 32-true on cpu")
    ap.add_argument("--compile", action="store_true", help="torch.compile the context network (GPU)")
    ap.add_argument(
        "--peak-tflops",
        type=float,
        default=None,
        help="device peak for model FLOPs utilisation (default: known GPUs' bf16 dense peak)",
    )
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
        streams = {
            "random": {"batching": "random", "batch_size": args.batch_size},
            "bucket": {"batching": "bucket", "batch_frames": args.batch_frames},
            "pack": {"batching": "pack", "batch_frames": args.batch_frames},
        }
        data = {name: collect_batches(manifest, args.batches, args.crop, **streams[name]) for name in args.batchings}
    feature_dim = next(iter(data.values()))[0]["feats"].shape[-1]
    print(
        f"real FSDD batches, crops <= {args.crop} frames, {args.batches} per batching: random = {args.batch_size} "
        f"crops in stream order, padded; bucket / pack = {args.batch_frames:,} frames (rows x steps) per batch"
    )
    for name, batches in data.items():
        frames = sum(b["n_frames"] for b in batches)
        print(
            f"  {name:7s} {frames:,} counted frames ({frames / len(batches):,.0f} per batch), "
            f"executed / counted {executed(batches):.3f}"
        )
    print(f"device {args.device}, precision {precision}, torch threads {torch.get_num_threads()}")
    peak = device_peak_tflops(args.device, args.peak_tflops)
    if args.device.startswith("cuda"):
        print(f"device: {torch.cuda.get_device_name()}, peak {peak} TFLOP/s (bf16 dense)")
    print(
        f"counted frames/s; steady state: from batch {SKIP + 1} to the last; end to end: the whole fit() call, "
        "Trainer set-up and the closing dev evaluation included"
    )
    print(
        f"{'model':20s} {'batching':8s} {'exec/count':>10s} {'plain fr/s':>11s} {'Lightning fr/s':>15s} "
        f"{'ratio':>6s} {'vs random':>9s}   {'end to end: plain':>17s} {'Lightning':>10s} {'ratio':>6s} "
        f"{'TFLOP/s':>8s} {'MFU':>6s}"
    )
    archs = ["lstm", "transformer"] if args.arch == "both" else [args.arch]
    for arch in archs:
        cfg = ModelConfig(arch=arch, width=args.width, depth=args.depth)
        torch.manual_seed(0)
        proto = APCModule(
            feature_dim,
            cfg,
            OptimConfig(lr=1e-3),
            clock={"unit": "frames", "total": 1, "points": [1]},
            compile=args.compile,
        )
        if args.compile:
            proto.configure_model()
        timings: dict[str, tuple[list[Timing], list[Timing]]] = {name: ([], []) for name in data}
        for batches in data.values():  # warm up every path once (allocator, kernels, Lightning's first fit)
            plain_loop(copy.deepcopy(proto), batches[:5], args.device, precision)
            lightning_loop(copy.deepcopy(proto), batches[:5], args.device, precision)
        for _ in range(args.repeats):  # alternating: a stall of the shared machine hits every batching alike
            for name, batches in data.items():
                timings[name][0].append(plain_loop(copy.deepcopy(proto), batches, args.device, precision))
                timings[name][1].append(lightning_loop(copy.deepcopy(proto), batches, args.device, precision))
        baseline = steady(timings["random"][1]) if "random" in timings else None
        for name, (plain, light) in timings.items():
            batches = data[name]
            p, lt = steady(plain), steady(light)
            pe, le = (statistics.median(t.overall for t in ts) for ts in (plain, light))
            flops_per_frame = proto_flops(proto, batches) / sum(b["n_frames"] for b in batches)
            tflops = lt * flops_per_frame / 1e12
            mfu = f"{tflops / peak:6.1%}" if peak else "   n/a"
            versus = f"{lt / baseline:9.2f}" if baseline else "      n/a"
            print(
                f"{cfg.label:20s} {name:8s} {executed(batches):10.3f} {p:11,.0f} {lt:15,.0f} {lt / p:6.3f} {versus}   "
                f"{pe:17,.0f} {le:10,.0f} {le / pe:6.3f} {tflops:8.3f} {mfu}"
            )


if __name__ == "__main__":
    main()
