"""Prepare speech for training: audio -> log-Mel WebDataset shards, nested subsets, manifest.

    python -m apcscale.recipes.prepare ../shared/data/fsdd prepared/fsdd
    python -m apcscale.recipes.prepare fsdd prepared/fsdd             # FSDD, cached or downloaded once
    python -m apcscale.recipes.prepare librispeech:train-clean-100 prepared/ls100 --workers 16
    python -m apcscale.recipes.prepare data/train prepared/train            # a Kaldi data directory
    python -m apcscale.recipes.prepare cuts_train.jsonl.gz prepared/train   # a lhotse CutSet (or recordings)

SOURCE is a folder of .wav/.flac files (searched recursively, any sample rate), `fsdd`,
`librispeech:SUBSET` (downloaded through torchaudio.datasets.LIBRISPEECH into the cache, then
read as a folder), a Kaldi data directory (wav.scp, optional segments and utt2spk), or a lhotse
manifest (recordings with their supervisions, or a CutSet; needs lhotse). Commands in a wav.scp
(`sox ... |`) are run only with --allow-pipes. Rerunning reuses what is already prepared and verified.
"""

from __future__ import annotations

import argparse
import sys
import time


def build_parser() -> argparse.ArgumentParser:
    from apcscale.data.prepare import DEV_BY, PrepareOptions

    d = PrepareOptions()
    p = argparse.ArgumentParser(
        prog="python -m apcscale.recipes.prepare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "source",
        help="audio folder, 'fsdd', 'librispeech:SUBSET' (e.g. librispeech:train-clean-100), "
        "a Kaldi data directory, or a lhotse manifest",
    )
    p.add_argument("out_dir", help="output folder (manifest.json, train/, dev/)")
    p.add_argument("--n-mels", type=int, default=None, help="Mel bins (default 80 at >= 16 kHz, else 40)")
    p.add_argument(
        "--sample-rate",
        type=int,
        default=None,
        help="feature sample rate; other rates are resampled (default: the most common in the input)",
    )
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument(
        "--dev-fraction",
        type=float,
        default=d.dev_fraction,
        help=f"share of utterances held out, whole speakers when known (default {d.dev_fraction})",
    )
    p.add_argument(
        "--dev-by",
        choices=DEV_BY,
        default=d.dev_by,
        help="hold out whole speakers (auto: when every file's speaker is known) or utterances "
        "(every speaker in both splits: the dev loss then measures held-out speech of known "
        "speakers, not new speakers; for corpora with a handful of speakers such as FSDD)",
    )
    p.add_argument(
        "--shard-utterances",
        type=int,
        default=d.shard_utterances,
        help=f"at most this many utterances per shard (default {d.shard_utterances})",
    )
    p.add_argument(
        "--shard-frames",
        type=int,
        default=d.shard_frames,
        help=f"at most this many frames per shard (default {d.shard_frames})",
    )
    p.add_argument(
        "--min-subset-frames",
        type=int,
        default=d.min_subset_frames,
        help=f"frames in the smallest nested subset, at least (default {d.min_subset_frames})",
    )
    p.add_argument(
        "--max-subsets",
        type=int,
        default=d.max_subsets,
        help=f"at most this many nested subsets (default {d.max_subsets})",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="salt of the dev choice and subset order")
    p.add_argument(
        "--allow-pipes",
        action="store_true",
        help="run the commands of a Kaldi wav.scp (`<id> <command> |`) or lhotse command sources "
        "(refused by default: they are shell commands taken from a data file)",
    )
    p.add_argument("--verify", action="store_true", help="afterwards, check every shard's sha256")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or messages")
    return p


def main(argv: list[str] | None = None) -> int:
    from apcscale.utils.log import cli_logging

    cli_logging()
    args = build_parser().parse_args(argv)

    from rich.console import Console
    from rich.table import Table

    from apcscale.data import AudioSourceError, DataError, Manifest, ensure_prepared, resolve_audio

    console = Console(stderr=True, quiet=args.no_progress)
    extra = None
    try:
        audio = resolve_audio(args.source)
        if args.source.startswith("librispeech:"):
            extra = {"kind": "librispeech", "subset": args.source.split(":", 1)[1]}
        elif args.source == "fsdd":
            from apcscale.data.source import FSDD_COMMIT

            extra = {"kind": "fsdd", "commit": FSDD_COMMIT}
        started = time.perf_counter()
        path = ensure_prepared(
            audio,
            args.out_dir,
            n_mels=args.n_mels,
            workers=args.workers,
            progress=not args.no_progress,
            source=extra,
            dev_fraction=args.dev_fraction,
            dev_by=args.dev_by,
            shard_utterances=args.shard_utterances,
            shard_frames=args.shard_frames,
            min_subset_frames=args.min_subset_frames,
            max_subsets=args.max_subsets,
            sample_rate=args.sample_rate,
            seed=args.seed,
            allow_pipes=args.allow_pipes,
        )
        m = Manifest.load(path)
        if args.verify:
            m.verify(deep=True)
    except (AudioSourceError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    feats = m.features
    table = Table(title=f"{path}  ({time.perf_counter() - started:.1f} s)")
    for col in ("subset", "shards", "utterances", "frames", "hours"):
        table.add_column(col, justify="right")
    for name, info in m.subsets.items():
        table.add_row(
            name, str(len(info["shards"])), f"{info['utterances']:,}", f"{info['frames']:,}", f"{info['hours']:.4g}"
        )
    dev = m.dev
    table.add_row("dev", str(len(dev["shards"])), f"{dev['utterances']:,}", f"{dev['frames']:,}", f"{dev['hours']:.4g}")
    console.print(table)
    console.print(
        f"{feats['n_mels']} log-Mel bins at {feats['sample_rate']} Hz, {feats['frames_per_second']:g} frames/s; "
        f"dev split by {m.data['split']['by']}; {len(m.skipped)} file(s) skipped"
        + (f" (first: {m.skipped[0]['path']}: {m.skipped[0]['reason']})" if m.skipped else "")
    )
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
