"""Preparation throughput: seconds of audio turned into log-Mel shards per second of wall time.

Prepares the same audio from scratch with 1 worker and with all workers (end to end: scan,
silence screening, features, shards, manifest) and prints both rates and their ratio; then
the time a rerun on the prepared folder takes (nothing to do: headers scanned, screening
cached, shards verified), as a fraction of the preparation from scratch.

    python benchmarks/bench_prepare.py                   # ../shared/data/fsdd (or $APCSCALE_AUDIO, or FSDD)
    python benchmarks/bench_prepare.py --audio DIR --workers 1 4 16
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

from apcscale.data import Manifest, ensure_prepared, resolve_audio  # noqa: E402
from apcscale.data.prepare import _cpu_count  # noqa: E402


def default_audio() -> Path:
    shared = ROOT.parent / "shared" / "data" / "fsdd"
    if not os.environ.get("APCSCALE_AUDIO") and shared.is_dir():
        return shared
    return resolve_audio()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--audio", help="folder of audio (default: ../shared/data/fsdd, $APCSCALE_AUDIO, or FSDD)")
    ap.add_argument("--workers", type=int, nargs="+", default=None, help="worker counts (default: 1 and all cores)")
    ap.add_argument("--n-mels", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=1, help="runs per worker count (the best is reported)")
    args = ap.parse_args()
    audio = Path(args.audio) if args.audio else default_audio()
    counts = args.workers or sorted({1, _cpu_count()})
    print(f"audio {audio}, {_cpu_count()} cores")
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for w in counts:
            best = None
            for r in range(args.repeats):
                out = Path(tmp) / f"w{w}-{r}"
                started = time.perf_counter()
                manifest = ensure_prepared(audio, out, n_mels=args.n_mels, workers=w, progress=False)
                elapsed = time.perf_counter() - started
                best = elapsed if best is None else min(best, elapsed)
            m = Manifest.load(manifest)
            seconds = m.train["audio_seconds"] + m.dev["audio_seconds"]
            frames = m.train["frames"] + m.dev["frames"]
            rates[w] = seconds / best
            print(
                f"workers {w:3d}: {seconds:9.1f} s of audio ({frames:,} frames, "
                f"{m.train['utterances'] + m.dev['utterances']:,} utterances) in {best:6.2f} s = "
                f"{rates[w]:8.1f} s of audio per second ({frames / best:,.0f} frames/s)"
            )
            started = time.perf_counter()
            ensure_prepared(audio, out, n_mels=args.n_mels, workers=w, progress=False)
            rerun = time.perf_counter() - started
            print(f"             rerun on the prepared folder: {rerun:6.2f} s ({rerun / best:.3f} of the preparation)")
    if 1 in rates and len(rates) > 1:
        top = max(counts)
        print(f"speed-up {top} workers / 1 worker: {rates[top] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
