"""The trivial predictors: by hand on a tiny batch, least squares checked against numpy, and scored
on exactly the dev positions the model's loss uses (real FSDD features)."""

import numpy as np
import pytest
import torch

from apcscale.data import Manifest
from apcscale.data.baselines import _design, _l1_terms, dev_baselines, fit_linear, past_frames
from apcscale.data.stream import APCDataModule, read_shard


def test_baselines_by_hand_on_a_tiny_batch():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 2))
    x[1, 5:] = 0.0  # padding of the second sequence (length 5)
    lengths = torch.tensor([7, 5])
    shift, k = 3, 2
    W = rng.standard_normal((k * 2 + 1, 2))
    # by hand: position t predicts t + 3 from [x_t, x_{t-1} (x_0 before the start), 1]; only t + 3 < length counts
    copy_sum = lin_sum = terms = 0.0
    for b, n in enumerate([7, 5]):
        for t in range(n - shift):
            prev = x[b, max(t - 1, 0)]
            feat = np.concatenate([x[b, t], prev, [1.0]])
            copy_sum += np.abs(x[b, t] - x[b, t + shift]).sum()
            lin_sum += np.abs(feat @ W - x[b, t + shift]).sum()
            terms += 2
    feats = torch.from_numpy(x)
    copy_total, count = _l1_terms(feats, feats, lengths, shift)
    lin_total, _ = _l1_terms(past_frames(feats, k) @ torch.from_numpy(W), feats, lengths, shift)
    assert count == terms == (4 + 2) * 2
    assert copy_total == pytest.approx(copy_sum) and lin_total == pytest.approx(lin_sum)


def test_least_squares_equals_numpy_on_a_subset(prepared_fsdd):
    m = Manifest.load(prepared_fsdd)
    W = fit_linear(m, ["d0"], k=2, shift=3, ridge=0.0)["d0"]
    rows, targets = [], []
    for shard in m.subset("d0")["shards"]:
        for _key, f, _ in read_shard(m.shard_path(shard), m.feature_dim):
            if f.shape[0] > 3:
                X, Y = _design((f.astype(np.float64) - m.mean) / m.std, 2, 3)
                rows.append(X)
                targets.append(Y)
    ref = np.linalg.lstsq(np.concatenate(rows), np.concatenate(targets), rcond=None)[0]
    assert np.allclose(W, ref, atol=1e-6)


def test_dev_baselines_score_the_dev_positions_of_the_loss(prepared_fsdd):
    out = dev_baselines(prepared_fsdd, ["d2", "d7"], eval_crop_frames=200, time_shift=3)
    # copy-last-frame, by hand over the dev chunks the model is evaluated on
    dm = APCDataModule(prepared_fsdd, eval_crop_frames=200, crop_frames=64, num_workers=0)
    dm.setup()
    total = terms = 0.0
    for batch in dm.val_dataloader():
        f, n = batch["feats"].numpy().astype(np.float64), batch["lengths"].numpy()
        for b in range(len(n)):
            d = np.abs(f[b, 3 : n[b]] - f[b, : n[b] - 3])
            total += d.sum()
            terms += d.size
    assert out["copy_last_frame"] == pytest.approx(total / terms, rel=1e-6)
    assert out["dev_terms"] == terms
    lin = out["linear"]["by_subset"]
    # the linear predictor beats copying the last frame on real speech, and more data does not hurt it
    assert lin["d7"] < out["copy_last_frame"] and lin["d7"] <= lin["d2"] * 1.001
