"""Trivial predictors of the APC target, on exactly the dev positions the model's loss uses.

A scaling law is only as good as its margin over predictors that need no learning (Hestness et
al. bound a learning curve by the "best guess" error). For APC with time shift n:

- copy-last-frame: x^_{t+n} = x_t;
- a linear predictor over the past k frames: x^_{t+n} = W [x_t, x_{t-1}, ..., x_{t-k+1}, 1],
  W fitted by (ridge-regularised) least squares on the training subset. Before the first frame of
  a sequence the first frame is repeated, so position t uses nothing the causal model could not.

Both are scored by the model's own loss (L1 averaged over valid positions t + n < length and
feature dimensions) on the dev stream the model is evaluated on (apcscale.data.stream: chunks
of eval_crop_frames, normalised with the manifest's statistics), so a margin over them is a
margin on the same numbers. The nested training subsets share their shards, so one pass over the
largest subset fits the predictor of every subset (the normal equations are snapshotted at each
subset's last shard).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from apcscale.data.manifest import Manifest
from apcscale.data.stream import APCDataModule, read_shard

LINEAR_K = 4
RIDGE = 1e-3  # relative to the mean diagonal of X'X


def past_frames(x: torch.Tensor, k: int) -> torch.Tensor:
    """(B, T, F) -> (B, T, k*F + 1): [x_t, x_{t-1}, ..., x_{t-k+1}, 1], the first frame repeated before t = 0."""
    B, T, F = x.shape
    idx = (torch.arange(T)[:, None] - torch.arange(k)[None, :]).clamp_min(0)  # (T, k)
    past = x[:, idx, :].reshape(B, T, k * F)
    return torch.cat([past, x.new_ones(B, T, 1)], dim=-1)


def _l1_terms(pred: torch.Tensor, feats: torch.Tensor, lengths: torch.Tensor, shift: int) -> tuple[float, float]:
    """Sum of |pred_t - x_{t+shift}| over valid positions and the number of terms (as the model's loss)."""
    from apcscale.models.net import l1_terms

    total, count = l1_terms(pred, feats, lengths, shift)
    return float(total), float(count)


def _design(x: np.ndarray, k: int, shift: int) -> tuple[np.ndarray, np.ndarray]:
    """One utterance (T, F) -> rows [x_t .. x_{t-k+1}, 1] for t < T - shift, and targets x_{t+shift}."""
    T = x.shape[0] - shift
    idx = np.clip(np.arange(T)[:, None] - np.arange(k)[None, :], 0, None)
    X = np.empty((T, k * x.shape[1] + 1))
    X[:, :-1] = x[idx].reshape(T, -1)
    X[:, -1] = 1.0
    return X, x[shift:]


def fit_linear(
    manifest: Manifest,
    subsets: list[str],
    *,
    k: int = LINEAR_K,
    shift: int = 3,
    ridge: float = RIDGE,
    block: int = 20_000,
) -> dict[str, np.ndarray]:
    """Least-squares W (k*F + 1, F) of each subset, fitted on its training utterances (whole, normalised)."""
    mean, std = manifest.mean, manifest.std
    order = sorted(subsets, key=lambda s: int(manifest.subset(s)["frames"]))
    shard_lists = {s: list(manifest.subset(s)["shards"]) for s in order}
    F = manifest.feature_dim
    xtx = np.zeros((k * F + 1, k * F + 1))
    xty = np.zeros((k * F + 1, F))
    done: set[str] = set()
    out: dict[str, np.ndarray] = {}
    for shard in shard_lists[order[-1]]:
        xs, ys, rows = [], [], 0

        def flush():
            nonlocal xs, ys, rows, xtx, xty
            if xs:
                X, Y = np.concatenate(xs), np.concatenate(ys)
                xtx += X.T @ X
                xty += X.T @ Y
            xs, ys, rows = [], [], 0

        for _key, feats, _meta in read_shard(manifest.shard_path(shard), F, int(manifest.shards[shard]["utterances"])):
            if feats.shape[0] <= shift:
                continue
            X, Y = _design((feats.astype(np.float64) - mean) / std, k, shift)
            xs.append(X)
            ys.append(Y)
            rows += len(X)
            if rows >= block:
                flush()
        flush()
        done.add(shard)
        for s in order:
            if s not in out and set(shard_lists[s]) <= done:
                lam = ridge * float(np.trace(xtx)) / len(xtx)
                out[s] = np.linalg.solve(xtx + lam * np.eye(len(xtx)), xty)
    return out


def dev_baselines(
    manifest_path: str | Path, subsets: list[str], *, eval_crop_frames: int, time_shift: int = 3, k: int = LINEAR_K
) -> dict[str, Any]:
    """Dev L1 of copy-last-frame and of the linear predictor fitted on each subset, on the dev
    positions the model's loss uses (eval_crop_frames as the runs evaluate)."""
    dm = APCDataModule(
        manifest_path,
        subset=subsets[-1] if subsets else None,
        eval_crop_frames=eval_crop_frames,
        crop_frames=max(eval_crop_frames, 8),
        num_workers=0,
    )
    dm.setup()
    m = dm.manifest
    assert m is not None
    weights = fit_linear(m, subsets, k=k, shift=time_shift)
    copy_total = count_total = 0.0
    lin_total = {s: 0.0 for s in subsets}
    for batch in dm.dev_dataset(rank=0, world_size=1):
        feats, lengths = batch["feats"].double(), batch["lengths"]
        total, count = _l1_terms(feats, feats, lengths, time_shift)
        copy_total += total
        count_total += count
        X = past_frames(feats, k)
        for s, W in weights.items():
            lin_total[s] += _l1_terms(X @ torch.from_numpy(W), feats, lengths, time_shift)[0]
    if count_total == 0:
        raise ValueError("the dev split has no prediction targets (every dev utterance is too short)")
    return {
        "time_shift": time_shift,
        "eval_crop_frames": eval_crop_frames,
        "dev_terms": count_total,
        "copy_last_frame": copy_total / count_total,
        "linear": {"k": k, "ridge": RIDGE, "by_subset": {s: lin_total[s] / count_total for s in subsets}},
    }


__all__ = ["dev_baselines", "fit_linear", "past_frames", "LINEAR_K"]
