"""Speed of the encoder features and probes (apcscale features / probe) with one torch thread against torch's default.

    .venv/bin/python benchmarks/bench_downstream.py [--audio ../shared/data/speechocean762] [--files 300]

On real audio (the first --files utterances of --audio), in one run, alternating: the log-Mel
filterbank of every file, the mean-pooled context vectors of an LSTM and a Transformer (width 48,
depth 2, random weights: the speed does not depend on them) and a 5-fold speaker probe of the LSTM's
features, each with torch at 1 thread and at its default. Printed: the seconds of each, and the
ratio default / one thread (above 1: one thread is faster). `apcscale features` and `probe` run with
one thread by default (--threads) because of what this measures on small models.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apcscale.data.features import FeatureConfig  # noqa: E402
from apcscale.downstream.classifier import _cross_validate  # noqa: E402
from apcscale.downstream.extract import load_corpus, pooled, torch_threads  # noqa: E402
from apcscale.models.config import ModelConfig  # noqa: E402
from apcscale.models.export import Encoder  # noqa: E402
from apcscale.models.net import APCNet  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--audio", default=str(ROOT.parent / "shared" / "data" / "speechocean762"))
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    corpus = load_corpus(args.audio)
    corpus.files = corpus.files[: args.files]
    rate = max(set(f.sample_rate for f in corpus.files), key=[f.sample_rate for f in corpus.files].count)
    features = FeatureConfig.for_rate(rate)
    torch.manual_seed(0)
    encoders = {
        arch: Encoder(
            APCNet(features.n_mels, ModelConfig(arch=arch, width=48, depth=2)),
            features,
            np.zeros(features.n_mels),
            np.ones(features.n_mels),
        )
        for arch in ("lstm", "transformer")
    }
    default = torch.get_num_threads()
    mels = corpus.log_mel(features)
    x = pooled(encoders["lstm"], mels)
    keep = [i for i, f in enumerate(corpus.files) if f.speaker is not None and mels[i] is not None]
    speakers = [corpus.files[i].speaker for i in keep]
    keys = [corpus.files[i].key for i in keep]

    def fbank() -> None:
        corpus._compute(features)

    def encode(arch: str):
        return lambda: pooled(encoders[arch], mels)

    def probe() -> None:
        _cross_validate(x[keep], speakers, speakers, keys, "utterances", n_folds=5, seed=0)

    tasks = {
        "log-Mel filterbank": fbank,
        "LSTM w48 features": encode("lstm"),
        "Transformer w48 features": encode("transformer"),
        "speaker probe (LSTM w48)": probe,
    }
    times: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.repeats):
        for name, fn in tasks.items():
            for threads in (1, default):
                with torch_threads(threads):
                    started = time.perf_counter()
                    fn()
                    times.setdefault((name, threads), []).append(time.perf_counter() - started)
    print(
        f"{len(corpus.files)} files of {args.audio} ({len(set(speakers))} speakers); torch default {default} "
        f"threads; medians of {args.repeats}"
    )
    for name in tasks:
        one, dflt = statistics.median(times[(name, 1)]), statistics.median(times[(name, default)])
        print(f"  {name:26s} 1 thread {one:7.2f} s   {default} threads {dflt:7.2f} s   ratio {dflt / one:5.2f}")


if __name__ == "__main__":
    main()
