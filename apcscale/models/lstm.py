"""Unidirectional multi-layer LSTM context network with residual connections.

Chung et al.'s APC reference model is a stack of unidirectional RNN layers with
residual connections between layers. Each layer here is its own `nn.LSTM` (so
cuDNN runs each layer as one fused kernel on GPU) and its output is added to its
input. Padding sits at the end of each sequence, so a causal network's outputs at
valid positions never depend on it: no packing needed.
"""

from __future__ import annotations

import torch
from torch import nn


class LSTMContext(nn.Module):
    def __init__(self, width: int, depth: int, dropout: float = 0.0):
        super().__init__()
        self.width = width
        self.depth = depth
        self.layers = nn.ModuleList(nn.LSTM(width, width, batch_first=True) for _ in range(depth))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, T, width) -> context vectors (B, T, width); h_t depends on x_1..x_t only."""
        for lstm in self.layers:
            y, _ = lstm(x)
            x = x + self.dropout(y)
        return x

    def matmul_flops_per_frame(self, seq_len: int) -> dict[str, float]:
        """Forward multiply-add FLOPs per frame of the weight matmuls (2 per MAC).

        Per layer: 4 gates x (input W_ih and recurrent W_hh), each width x width.
        Independent of sequence length.
        """
        per_layer = 2 * 4 * (self.width * self.width + self.width * self.width)
        return {"weights": float(per_layer * self.depth), "attention": 0.0}
