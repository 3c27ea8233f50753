"""Per-utterance representations from an exported encoder.

    python -m apcscale.recipes.features AUDIO OUT --model EXPORT [--layer L]   # apcscale features ...

AUDIO: a folder of wav/flac (searched recursively), a Kaldi data directory or a lhotse manifest,
as `apcscale prepare` takes. Features are computed with the export's own settings (the same fbank
as preparation, its normalisation statistics). OUT gets:

    feats/<key>.npy     (frames, width) float32: the context vectors of one utterance, one layer
    index.csv           key, speaker, path (as the input names it), frames, file
    features.json       the encoder (config, provenance), the layer, the input, the utterances skipped

One .npy per utterance rather than one .npz: it is written as it is computed (memory stays flat on
a large corpus), a reader loads (or memory-maps) only the utterances it needs, and the file names
are the utterance keys of the index.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> int:
    from apcscale.utils.log import cli_logging

    cli_logging()
    parser = argparse.ArgumentParser(
        prog="python -m apcscale.recipes.features",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("audio", help="a folder of audio, a Kaldi data directory or a lhotse manifest")
    parser.add_argument("out", help="the folder to write (feats/, index.csv, features.json)")
    parser.add_argument("--model", required=True, metavar="EXPORT", help="an encoder export (apcscale export)")
    parser.add_argument(
        "--layer",
        type=int,
        default=-1,
        help="0: the input projection, 1..depth: a context layer, -1: the last (default)",
    )
    parser.add_argument("--batch-frames", type=int, default=20_000, help="frames per batch (padding included)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for the encoder (default 1: fastest for small models; 0: torch's default)",
    )
    parser.add_argument("--allow-pipes", action="store_true", help="run the commands a Kaldi wav.scp names")
    parser.add_argument("--overwrite", action="store_true", help="replace the features already in OUT")
    args = parser.parse_args(argv)

    from apcscale.data.errors import DataError
    from apcscale.downstream.extract import encode_corpus, load_corpus, torch_threads
    from apcscale.models.export import ExportError, load_encoder

    out = Path(args.out).expanduser()
    try:
        encoder = load_encoder(args.model)
        layer = encoder.layer_index(args.layer)
        if out.exists() and any(out.iterdir()):
            if not args.overwrite:
                raise ExportError(f"{out}: already exists and is not empty (--overwrite replaces its features)")
            if not (out / "features.json").is_file():
                raise ExportError(f"{out}: not empty and not a features folder; refusing to overwrite it")
            shutil.rmtree(out / "feats", ignore_errors=True)
        corpus = load_corpus(args.audio, allow_pipes=args.allow_pipes)
        if not corpus.files:
            raise ExportError(f"{args.audio}: no audio found")
    except (ExportError, DataError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    (out / "feats").mkdir(parents=True, exist_ok=True)
    mels = corpus.log_mel(encoder.feature_config)
    skipped = list(corpus.skipped) + [
        {"path": f.rel, "reason": "unreadable or shorter than one frame"}
        for f, m in zip(corpus.files, mels)
        if m is None
    ]
    rows: dict[int, dict] = {}
    with torch_threads(args.threads or None):
        for i, h in encode_corpus(encoder, mels, layer, batch_frames=args.batch_frames):
            f = corpus.files[i]
            np.save(out / "feats" / f"{f.key}.npy", h.numpy().astype(np.float32))
            rows[i] = {
                "key": f.key,
                "speaker": f.speaker or "",
                "path": f.rel,
                "frames": int(h.shape[0]),
                "file": f"feats/{f.key}.npy",
            }
    with (out / "index.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["key", "speaker", "path", "frames", "file"])
        writer.writeheader()
        for i in sorted(rows):
            writer.writerow(rows[i])
    info = {
        "format": "apcscale.features/1",
        "layer": layer,
        "dim": encoder.width,
        "dtype": "float32",
        "pooling": None,
        "input": {"path": str(corpus.root), "kind": corpus.kind},
        "utterances": len(rows),
        "skipped": skipped,
        "encoder": {"path": str(Path(args.model).expanduser().resolve()), **encoder.config},
    }
    (out / "features.json").write_text(json.dumps(info, indent=2) + "\n")
    print(
        f"wrote {len(rows):,} utterances of layer {layer} ({encoder.width} dims per frame) to {out}/feats/, "
        f"index.csv and features.json" + (f"; {len(skipped)} skipped (listed in features.json)" if skipped else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
