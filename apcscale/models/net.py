"""The APC network (plain PyTorch) and its L1 objective.

    x_1..x_T  --input projection-->  --causal context g-->  h_t  --linear head-->  x^_{t+n}

The loss is the L1 distance between x^_{t+n} and x_{t+n}, averaged over frames
and feature dimensions, over valid positions only (t + n < length): padding never
enters the loss or the frame counts.
"""

from __future__ import annotations

import torch
from torch import nn

from apcscale.models.config import ModelConfig
from apcscale.models.lstm import LSTMContext
from apcscale.models.transformer import TransformerContext


def build_context(cfg: ModelConfig) -> nn.Module:
    if cfg.arch == "lstm":
        return LSTMContext(cfg.width, cfg.depth, cfg.dropout)
    if cfg.arch == "transformer":
        return TransformerContext(cfg.width, cfg.depth, cfg.num_heads, cfg.ff_mult, cfg.dropout)
    raise ValueError(f"unknown architecture {cfg.arch!r}; choose one of lstm, transformer")


class APCNet(nn.Module):
    def __init__(self, feature_dim: int, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.feature_dim = feature_dim
        self.time_shift = cfg.time_shift
        self.input_proj = nn.Linear(feature_dim, cfg.width)
        self.context = build_context(cfg)
        self.head = nn.Linear(cfg.width, feature_dim)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """feats (B, T, F) -> predictions (B, T, F); row t predicts frame t + time_shift."""
        return self.head(self.context(self.input_proj(feats)))

    def loss_terms(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum of absolute errors over valid positions and the number of terms (frames x dims)."""
        return l1_terms(self(feats), feats, lengths, self.time_shift)


def valid_mask(lengths: torch.Tensor, steps: int, shift: int) -> torch.Tensor:
    """(B, steps) bool: position t has a target t + shift inside the sequence."""
    positions = torch.arange(steps, device=lengths.device)
    return positions[None, :] < (lengths[:, None] - shift)


def l1_terms(
    pred: torch.Tensor, feats: torch.Tensor, lengths: torch.Tensor, shift: int
) -> tuple[torch.Tensor, torch.Tensor]:
    steps = feats.shape[1] - shift
    if steps <= 0:
        zero = feats.new_zeros((), dtype=torch.float32)
        return zero, zero
    mask = valid_mask(lengths, steps, shift)
    err = (pred[:, :steps].float() - feats[:, shift:].float()).abs().sum(-1)
    total = (err * mask).sum()
    count = mask.sum().to(torch.float32) * feats.shape[-1]
    return total, count


def copy_last_frame_terms(
    feats: torch.Tensor, lengths: torch.Tensor, shift: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The trivial baseline x^_{t+n} = x_t, on the same positions as the model's loss."""
    return l1_terms(feats, feats, lengths, shift)
