"""The APC network (plain PyTorch) and its L1 objective.

    x_1..x_T  --input projection-->  h^0  --causal context layers 1..depth-->  h_t  --linear head-->  x^_{t+n}

The loss is the L1 distance between x^_{t+n} and x_{t+n}, averaged over frames
and feature dimensions, over valid positions only (t + n inside the same utterance):
padding never enters the loss or the frame counts. A batch is padded or packed
(apcscale.models.layout); the loss of a packed batch equals the loss of the same
utterances padded.

`APCNet.encode` gives the context vectors of any layer (0: after the input
projection, 1..depth: after each context layer, -1: the last, what the head reads).
"""

from __future__ import annotations

import torch
from torch import nn

from apcscale.models.config import ModelConfig
from apcscale.models.layout import Layout
from apcscale.models.recurrent import GRUContext, LSTMContext
from apcscale.models.transformer import TransformerContext


def build_context(cfg: ModelConfig) -> nn.Module:
    if cfg.arch == "lstm":
        return LSTMContext(cfg.width, cfg.depth, cfg.dropout)
    if cfg.arch == "gru":
        return GRUContext(cfg.width, cfg.depth, cfg.dropout)
    if cfg.arch == "transformer":
        return TransformerContext(cfg.width, cfg.depth, cfg.num_heads, cfg.ff_mult, cfg.dropout)
    raise ValueError(f"unknown architecture {cfg.arch!r}; choose one of lstm, gru, transformer")


def _packed(layout: Layout | None) -> Layout | None:
    """What a context network is given: a packed layout, or None (padded rows run dense)."""
    return layout if layout is not None and layout.packed else None


class APCNet(nn.Module):
    def __init__(self, feature_dim: int, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.feature_dim = feature_dim
        self.time_shift = cfg.time_shift
        self.input_proj = nn.Linear(feature_dim, cfg.width)
        self.context = build_context(cfg)
        self.head = nn.Linear(cfg.width, feature_dim)

    def forward(self, feats: torch.Tensor, layout: Layout | torch.Tensor | None = None) -> torch.Tensor:
        """feats (B, T, F) -> predictions (B, T, F); row t predicts frame t + time_shift.
        layout: a Layout (or the lengths of a padded batch); None: every row is one utterance."""
        layout = Layout.coerce(layout, feats)
        return self.head(self.context(self.input_proj(feats), _packed(layout)))

    def encode(
        self, feats: torch.Tensor, lengths: torch.Tensor | None = None, layer: int = -1, layout: Layout | None = None
    ) -> torch.Tensor:
        """The context vectors h_t of one layer, (B, T, width); h_t depends on frames 1..t only.

        layer: 0 = after the input projection, 1..depth = after each context layer (for the
        Transformer, the last includes the final LayerNorm), -1 = the last (what the head reads);
        negative values count from the end, as Python indexes the list [h^0, ..., h^depth].
        lengths (a padded batch) or layout (padded or packed): steps that hold no frame are zero.
        """
        depth = self.cfg.depth
        if not -(depth + 1) <= layer <= depth:
            raise ValueError(
                f"encode: layer {layer} is out of range for a {depth}-layer {self.cfg.arch} "
                f"(use 0..{depth}, or -1 for the last)"
            )
        k = layer % (depth + 1)
        layout = layout if layout is not None else Layout.coerce(lengths, feats)
        h = self.context(self.input_proj(feats), _packed(layout), layers=k)
        if layout is not None:
            h = h * layout.occupied.unsqueeze(-1).to(h.dtype)
        return h

    def loss_terms(self, feats: torch.Tensor, layout: Layout | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum of absolute errors over valid positions and the number of terms (frames x dims).
        layout: the batch's Layout, or the lengths of a padded batch."""
        layout = Layout.coerce(layout, feats)
        return l1_terms(self(feats, layout), feats, layout, self.time_shift)


def valid_mask(lengths: torch.Tensor, steps: int, shift: int) -> torch.Tensor:
    """(B, steps) bool: position t of a padded batch has a target t + shift inside the sequence."""
    return Layout(lengths).valid(steps, shift)


def l1_terms(
    pred: torch.Tensor, feats: torch.Tensor, layout: Layout | torch.Tensor, shift: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of |pred_t - x_{t+shift}|, number of terms) over the steps whose target lies in the same
    utterance. layout: the batch's Layout, or the lengths of a padded batch."""
    steps = feats.shape[1] - shift
    if steps <= 0:
        zero = feats.new_zeros((), dtype=torch.float32)
        return zero, zero
    mask = Layout.coerce(layout, feats).valid(steps, shift)
    err = (pred[:, :steps].float() - feats[:, shift:].float()).abs().sum(-1)
    total = (err * mask).sum()
    count = mask.sum().to(torch.float32) * feats.shape[-1]
    return total, count


def copy_last_frame_terms(
    feats: torch.Tensor, layout: Layout | torch.Tensor, shift: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The trivial baseline x^_{t+n} = x_t, on the same positions as the model's loss."""
    return l1_terms(feats, feats, layout, shift)
