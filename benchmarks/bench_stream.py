"""Streaming throughput: training frames per second delivered by APCDataModule, per loader worker.

Measures the infinite training stream (read shards, check, crop, shuffle, normalise, pad,
batch) after a warm-up, for several loader-worker counts, and one pass over the dev split.

    python benchmarks/bench_stream.py                       # prepares ../shared/data/fsdd into a temp folder
    python benchmarks/bench_stream.py --manifest prepared/manifest.json --workers 0 1 2 4 --crop 256
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


def default_audio() -> Path:
    shared = ROOT.parent / "shared" / "data" / "fsdd"
    if not os.environ.get("APCSCALE_AUDIO") and shared.is_dir():
        return shared
    return resolve_audio()


def train_rate(manifest: Path, subset: str | None, workers: int, args) -> tuple[float, int]:
    dm = APCDataModule(manifest, subset=subset, crop_frames=args.crop, batch_size=args.batch_size,
                       num_workers=workers, shuffle_buffer=args.shuffle_buffer)
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
    ap.add_argument("--manifest", help="a prepared manifest.json (default: prepare --audio into a temp folder)")
    ap.add_argument("--audio", help="folder of audio to prepare (default: ../shared/data/fsdd, $APCSCALE_AUDIO, FSDD)")
    ap.add_argument("--subset", default=None, help="training subset (default: the largest)")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="loader worker counts")
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--shuffle-buffer", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=400, help="batches timed per setting")
    ap.add_argument("--warmup", type=int, default=20, help="batches before timing (worker start-up excluded)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(args.manifest) if args.manifest else ensure_prepared(
            Path(args.audio) if args.audio else default_audio(), Path(tmp) / "prepared", progress=False)
        print(f"manifest {manifest}; crops of {args.crop} frames, batches of {args.batch_size}, "
              f"{os.cpu_count()} cores")
        for w in args.workers:
            rate, frames = train_rate(manifest, args.subset, w, args)
            per = rate / max(1, w)
            label = "in-process" if w == 0 else f"{w} worker{'s' if w > 1 else ''}"
            print(f"train stream, {label:12s}: {rate:10,.0f} frames/s = {per:10,.0f} frames/s per loader worker "
                  f"({rate / 100:,.0f} s of audio per second; {frames:,} frames timed)")
        dm = APCDataModule(manifest, crop_frames=args.crop, batch_size=args.batch_size, num_workers=0)
        dm.setup("validate")
        dev = dm.val_dataloader()
        for passes in ("first (reads shards)", "cached"):
            started = time.perf_counter()
            frames = sum(b["n_frames"] for b in dev)
            elapsed = time.perf_counter() - started
            print(f"dev pass, {passes:20s}: {frames:,} frames in {elapsed:.3f} s = {frames / elapsed:,.0f} frames/s")


if __name__ == "__main__":
    main()
