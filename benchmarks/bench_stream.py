"""Streaming: training frames per second delivered by APCDataModule, and the padding of its batches.

For each corpus: one pass over the training subset batched three ways, with the frames the
network computes on per frame counted (rows x steps / counted frames): in stream order padded
to the longest crop, `batch_size` crops each (`random`, how the stream batched before length
buckets), and by a budget of `batch_frames` frames per batch from length buckets (`bucket`, the
default) or packed rows (`pack`). Then the infinite training stream's rate (read shards, check,
crop, shuffle, batch, normalise, pad) after a warm-up, per batching and loader-worker count,
and one pass over the dev split.

    python benchmarks/bench_stream.py        # prepares ../shared/data/fsdd and ../shared/data/speechocean762
    python benchmarks/bench_stream.py --manifest prepared/manifest.json --workers 0 1 2 --crop 256
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apcscale.data import APCDataModule, ensure_prepared, resolve_audio  # noqa: E402

BATCHINGS = ("random", "bucket", "pack")


def default_audio() -> list[Path]:
    shared = ROOT.parent / "shared" / "data"
    found = [shared / name for name in ("fsdd", "speechocean762") if (shared / name).is_dir()]
    if not os.environ.get("APCSCALE_AUDIO") and found:
        return found
    return [resolve_audio()]


def stream_options(batching: str, args) -> dict:
    if batching == "random":
        return {"batching": "random", "batch_size": args.batch_size}
    return {"batching": batching, "batch_frames": args.batch_frames}


def padding(manifest: Path, batching: str, args) -> tuple[float, int, float]:
    """(executed / counted frames, batches, counted frames per batch) over one pass of the subset."""
    dm = APCDataModule(
        manifest,
        subset=args.subset,
        crop_frames=args.crop,
        num_workers=0,
        shuffle_buffer=args.shuffle_buffer,
        **stream_options(batching, args),
    )
    dm.setup("fit")
    executed = counted = batches = 0
    for batch in dm.iter_epoch():
        executed += batch["feats"].shape[0] * batch["feats"].shape[1]
        counted += batch["n_frames"]
        batches += 1
    return executed / counted, batches, counted / batches


def train_rate(manifest: Path, batching: str, workers: int, args) -> tuple[float, int]:
    dm = APCDataModule(
        manifest,
        subset=args.subset,
        crop_frames=args.crop,
        num_workers=workers,
        shuffle_buffer=args.shuffle_buffer,
        **stream_options(batching, args),
    )
    dm.setup("fit")
    stream = iter(dm.train_dataloader())
    for _ in range(args.warmup):
        next(stream)
    frames, started = 0, time.perf_counter()
    for _ in range(args.batches):
        frames += next(stream)["n_frames"]
    elapsed = time.perf_counter() - started
    dm.teardown("fit")
    return frames / elapsed, frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", nargs="+", help="prepared manifest(s) (default: prepare --audio into a temp folder)")
    ap.add_argument(
        "--audio",
        nargs="+",
        help="folder(s) of audio to prepare (default: ../shared/data/fsdd and speechocean762, $APCSCALE_AUDIO, FSDD)",
    )
    ap.add_argument("--subset", default=None, help="training subset (default: the largest)")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="loader worker counts")
    ap.add_argument("--batchings", nargs="+", choices=BATCHINGS, default=list(BATCHINGS))
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=32, help="crops per batch of the random batching")
    ap.add_argument("--batch-frames", type=int, default=1400, help="frames per batch (rows x steps) of bucket, pack")
    ap.add_argument("--shuffle-buffer", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=200, help="batches timed per setting")
    ap.add_argument("--warmup", type=int, default=20, help="batches before timing (worker start-up excluded)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.manifest:
            manifests = [Path(m) for m in args.manifest]
        else:
            audio = [Path(a) for a in args.audio] if args.audio else default_audio()
            manifests = [ensure_prepared(a, Path(tmp) / a.name, progress=False) for a in audio]
        print(
            f"crops of <= {args.crop} frames; random: {args.batch_size} crops per batch in stream order; "
            f"bucket, pack: {args.batch_frames:,} frames (rows x steps) per batch; {os.cpu_count()} cores"
        )
        for manifest in manifests:
            name = manifest.parent.name
            print(f"\n{name} ({manifest})")
            for batching in args.batchings:
                ratio, n, per = padding(manifest, batching, args)
                print(
                    f"  padding, {batching:7s}: the network computes on {ratio:.3f} frames per frame counted "
                    f"({n:,} batches in a pass, {per:,.0f} counted frames each)"
                )
            for batching in args.batchings:
                for w in args.workers:
                    rate, frames = train_rate(manifest, batching, w, args)
                    label = "in-process" if w == 0 else f"{w} worker{'s' if w > 1 else ''}"
                    print(
                        f"  train stream, {batching:7s} {label:12s}: {rate:10,.0f} counted frames/s = "
                        f"{rate / max(1, w):10,.0f} per loader worker ({frames:,} frames timed)"
                    )
            dm = APCDataModule(manifest, crop_frames=args.crop, num_workers=0)
            dm.setup("validate")
            dev = dm.val_dataloader()
            for passes in ("first (reads shards)", "cached"):
                started = time.perf_counter()
                frames = sum(b["n_frames"] for b in dev)
                elapsed = time.perf_counter() - started
                print(
                    f"  dev pass, {passes:20s}: {frames:,} frames in {elapsed:.3f} s = {frames / elapsed:,.0f} frames/s"
                )


if __name__ == "__main__":
    main()
