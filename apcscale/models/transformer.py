"""Causal pre-LayerNorm Transformer context network.

- pre-LN blocks: x + Attn(LN(x)), then x + MLP(LN(x)), a final LN;
- attention through `torch.nn.functional.scaled_dot_product_attention` with
  `is_causal=True`, so PyTorch picks the flash / memory-efficient kernels on GPU;
- rotary position embeddings (RoPE) on queries and keys: relative positions,
  no learned table, so the model runs on sequences of any length.

Batches (apcscale.models.layout): in a padded batch the padding sits at the end of each row,
so with the causal mask valid positions never attend to it, and `is_causal=True` keeps the
fast kernels. In a packed batch several utterances share a row: attention then takes the
layout's block-diagonal causal mask (no step attends across an utterance boundary) and the
rotary positions restart at 0 for each utterance, so every utterance is computed exactly as
it would be alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from apcscale.models.layout import Layout


class Rotary(nn.Module):
    """Rotary position embedding (Su et al. 2021) for any sequence length."""

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head dimension, got {head_dim}")
        inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, position: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q, k: (B, H, T, Dh); rotates pairs of channels by position-dependent angles.
        position: (B, T) each step's position (default: 0..T-1 in every row)."""
        if position is None:
            t = torch.arange(q.shape[-2], device=q.device, dtype=torch.float32)
            angles = torch.outer(t, self.inv_freq)  # (T, Dh/2)
        else:
            angles = (position.to(torch.float32)[..., None] * self.inv_freq).unsqueeze(1)  # (B, 1, T, Dh/2)
        cos = angles.cos().to(q.dtype)
        sin = angles.sin().to(q.dtype)
        return _rotate(q, cos, sin), _rotate(k, cos, sin)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)
    return out.flatten(-2)


class CausalSelfAttention(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.rotary = Rotary(self.head_dim)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, layout: Layout | None = None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        dropout = self.dropout if self.training else 0.0
        if layout is not None and layout.packed:
            q, k = self.rotary(q, k, layout.position)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=layout.attention_mask, dropout_p=dropout)
        else:
            q, k = self.rotary(q, k)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, width: int, heads: int, ff_mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.ln1 = nn.LayerNorm(width)
        self.attn = CausalSelfAttention(width, heads, dropout)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, ff_mult * width), nn.GELU(), nn.Linear(ff_mult * width, width))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, layout: Layout | None = None) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.ln1(x), layout))
        return x + self.dropout(self.mlp(self.ln2(x)))


class TransformerContext(nn.Module):
    def __init__(self, width: int, depth: int, heads: int, ff_mult: int = 4, dropout: float = 0.0):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.width, self.depth, self.heads, self.ff_mult = width, depth, heads, ff_mult
        self.blocks = nn.ModuleList(Block(width, heads, ff_mult, dropout) for _ in range(depth))
        self.ln_f = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor, layout: Layout | None = None, layers: int | None = None) -> torch.Tensor:
        """x: (B, T, width) -> context vectors (B, T, width); position t sees 1..t only.

        layout: a packed batch's layout (None or padded: causal attention over each row).
        layers: run the first `layers` blocks only and return the residual stream after them
        (0: x itself); after the last block the final LayerNorm applies (what the head reads).
        """
        layers = self.depth if layers is None else layers
        for block in self.blocks[:layers]:
            x = block(x, layout)
        return self.ln_f(x) if layers == self.depth else x

    def matmul_flops_per_frame(self, seq_len: int) -> dict[str, float]:
        """Forward FLOPs per frame (2 per MAC) of the weight matmuls and of attention.

        Weights per layer: QKV 3d^2, output d^2, MLP 2 * ff_mult * d^2 MACs.
        Attention per layer and query frame: QK^T and AV, each seq_len * d MACs. Counted over the
        full seq_len x seq_len square, as torch.utils.flop_counter does for SDPA (the causal
        half is not subtracted; Kaplan et al. count attention the same way).
        """
        d = self.width
        weights = 2 * (4 * d * d + 2 * self.ff_mult * d * d) * self.depth
        attention = 2 * 2 * seq_len * d * self.depth
        return {"weights": float(weights), "attention": float(attention)}
