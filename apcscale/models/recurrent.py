"""Unidirectional residual RNN context networks: LSTM and GRU stacks.

Chung et al.'s APC reference model is a stack of unidirectional RNN layers with residual
connections between layers (their released code uses GRUs). Each layer here is its own
`nn.LSTM` / `nn.GRU` (so cuDNN, or oneDNN on the CPU, runs each layer as one fused kernel)
and its output is added to its input.

Batches (apcscale.models.layout): in a padded batch the padding sits at the end of each row, so
a causal network's outputs at valid steps never depend on it and the dense kernel runs on the
whole tensor (the length-bucketed stream keeps that padding small). In a packed batch several
utterances share a row and the state must start afresh for each: on a GPU the stack runs on a
PackedSequence of the utterances (cuDNN supports it), with the residual sums on its data; on
the CPU, where PyTorch has no fused packed-sequence kernel, on the utterances laid out one per
row (padded again, the dense kernel), their outputs then put back in place.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from apcscale.models.layout import Layout


class RecurrentContext(nn.Module):
    """A residual stack of `depth` unidirectional RNN layers of `width` units (`cell`: nn.LSTM or nn.GRU)."""

    cell: type[nn.RNNBase] = nn.LSTM
    gates: int = 4  # weight matrices per input (LSTM: input, forget, cell, output; GRU: reset, update, new)
    #: packed batches: run a PackedSequence (True) or the utterances one per row (False); None: a
    #: PackedSequence on a GPU (cuDNN), one per row elsewhere
    packed_sequence: bool | None = None

    def __init__(self, width: int, depth: int, dropout: float = 0.0):
        super().__init__()
        self.width = width
        self.depth = depth
        self.layers = nn.ModuleList(self.cell(width, width, batch_first=True) for _ in range(depth))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, layout: Layout | None = None, layers: int | None = None) -> torch.Tensor:
        """x: (B, T, width) -> context vectors (B, T, width); h_t depends on x_1..x_t only.

        layout: a packed batch's layout (None or padded: the dense path). layers: run the first
        `layers` layers only and return their output (0: x itself; default: all of them).
        """
        stack = self.layers[: self.depth if layers is None else layers]
        as_sequence = x.is_cuda if self.packed_sequence is None else self.packed_sequence
        if layout is not None and layout.packed and not as_sequence:
            # oneDNN has no packed-sequence RNN: PyTorch's CPU PackedSequence path runs 3-5x slower per frame
            # than the dense kernel on the utterances, each in its own row (tests/test_models.py: the same outputs)
            h = layout.to_padded(x)
            for rnn in stack:
                y, _ = rnn(h)
                h = h + self.dropout(y)
            return layout.from_padded(h, x)
        if layout is not None and layout.packed:  # cuDNN runs a PackedSequence as it is
            packed = layout.pack(x)
            data = packed.data
            for rnn in stack:
                y, _ = rnn(PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices))
                data = data + self.dropout(y.data)
            return layout.unpack(
                PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices), x
            )
        for rnn in stack:
            y, _ = rnn(x)
            x = x + self.dropout(y)
        return x

    def matmul_flops_per_frame(self, seq_len: int) -> dict[str, float]:
        """Forward multiply-add FLOPs per frame of the weight matmuls (2 per MAC).

        Per layer: `gates` x (input W_ih and recurrent W_hh), each width x width.
        Independent of sequence length.
        """
        per_layer = 2 * self.gates * (self.width * self.width + self.width * self.width)
        return {"weights": float(per_layer * self.depth), "attention": 0.0}


class LSTMContext(RecurrentContext):
    cell = nn.LSTM
    gates = 4


class GRUContext(RecurrentContext):
    """The official APC implementation's cell (Chung et al.'s code stacks GRUs)."""

    cell = nn.GRU
    gates = 3


__all__ = ["RecurrentContext", "LSTMContext", "GRUContext"]
