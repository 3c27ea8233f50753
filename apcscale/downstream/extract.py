"""Utterances -> log-Mel features -> an encoder's context vectors, in length-sorted padded batches.

    corpus = load_corpus("../shared/data/fsdd")                  # a folder, a Kaldi dir or a lhotse manifest
    mels = corpus.log_mel(encoder.feature_config)                # computed once per feature settings
    for i, h in encode_corpus(encoder, mels, layer=-1):          # h: (T_i, width), utterance i
        ...

The log-Mel features are made as preparation makes them (apcscale.data.features, rounded to the
storage type), so an export sees what its run saw. Batches hold utterances of neighbouring
lengths, padded (the context networks are causal: the padding after an utterance never reaches
its frames, and `APCNet.encode` zeroes the padded steps).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from apcscale.data.audio import AudioFile, read_audio
from apcscale.data.features import FeatureConfig
from apcscale.data.inputs import scan_input
from apcscale.utils.threads import torch_threads


@dataclass
class Corpus:
    """The utterances of an input (apcscale.data.inputs.scan_input), with the log-Mel features
    computed for each feature setting asked for (kept in memory, in the storage type)."""

    root: Path
    kind: str
    files: list[AudioFile]
    skipped: list[dict[str, str]]
    _mels: dict[str, list[np.ndarray | None]] = field(default_factory=dict, repr=False)

    @property
    def keys(self) -> list[str]:
        return [f.key for f in self.files]

    def log_mel(self, features: FeatureConfig) -> list[np.ndarray | None]:
        """(T_i, F) log-Mel features of every utterance (None: unreadable or too short), in the
        settings' storage type; computed once per settings."""
        tag = json.dumps(features.to_dict(), sort_keys=True)
        if tag not in self._mels:
            with torch_threads(1):  # as preparation computes them (one thread per worker)
                self._mels[tag] = self._compute(features)
        return self._mels[tag]

    def _compute(self, features: FeatureConfig) -> list[np.ndarray | None]:
        mels: list[np.ndarray | None] = []
        dtype = np.dtype(features.dtype)
        for f in self.files:
            try:
                wave, sr = read_audio(f.path, **f.how())
            except Exception:  # noqa: BLE001 - listed by the callers as skipped
                mels.append(None)
                continue
            x = features.compute(wave, sr).numpy().astype(dtype) if wave.size else np.zeros((0, features.n_mels))
            mels.append(x if x.shape[0] > 0 and np.isfinite(x).all() else None)
        return mels


def load_corpus(path: str | Path, *, allow_pipes: bool = False) -> Corpus:
    """The utterances of a folder of audio, a Kaldi data directory or a lhotse manifest."""
    scanned = scan_input(path, allow_pipes=allow_pipes)
    return Corpus(scanned.root, scanned.kind, scanned.files, scanned.skipped)


def batches(lengths: list[int], batch_frames: int) -> Iterator[list[int]]:
    """Indices in length order, grouped so that rows x longest stays within batch_frames (>= 1 row)."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batch: list[int] = []
    for i in order:
        if batch and (len(batch) + 1) * lengths[i] > batch_frames:
            yield batch
            batch = []
        batch.append(i)
    if batch:
        yield batch


@torch.no_grad()
def encode_corpus(
    encoder: Any, mels: list[np.ndarray | None], layer: int = -1, batch_frames: int = 20_000
) -> Iterator[tuple[int, torch.Tensor]]:
    """(index, (T_i, width) context vectors) of every utterance with features, in length order.
    `encoder`: an apcscale.models.export.Encoder."""
    from apcscale.models.export import pad

    have = [i for i, m in enumerate(mels) if m is not None]
    for group in batches([mels[i].shape[0] for i in have], batch_frames):
        idx = [have[j] for j in group]
        feats = [encoder.normalise(torch.from_numpy(np.asarray(mels[i], dtype=np.float32))) for i in idx]
        x, lens = pad(feats)
        h = encoder.encode_normalised(x, lens, layer)
        for row, i in enumerate(idx):
            yield i, h[row, : int(lens[row])]


def pooled(encoder: Any, mels: list[np.ndarray | None], layer: int = -1, *, log_mel: bool = False) -> np.ndarray:
    """(utterances, dim) mean over time of each utterance's context vectors of `layer` (NaN rows: no
    features). log_mel: of the encoder's input instead, the normalised log-Mel features (the probe's reference)."""
    if not log_mel:
        out = np.full((len(mels), encoder.width), np.nan)
        for i, h in encode_corpus(encoder, mels, layer):
            out[i] = h.double().mean(0).numpy()
        return out
    out = np.full((len(mels), encoder.feature_dim), np.nan)
    for i, x in enumerate(mels):
        if x is not None:
            out[i] = encoder.normalise(torch.from_numpy(np.asarray(x, dtype=np.float32))).double().mean(0).numpy()
    return out
