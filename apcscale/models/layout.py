"""Where each utterance of a batch lies in its (rows, steps) tensor: padded or packed.

A training batch is a tensor (R, L, F). Its utterances (crops) lie in it in one of two ways:

- **padded** (the default stream's length-bucketed batches, and the dev batches): utterance i
  fills row i from step 0 for lengths[i] steps; the rest of the row is zero padding. A causal
  network's outputs at an utterance's steps never depend on the padding after it, so the dense
  kernels (cuDNN / oneDNN RNNs, flash attention with `is_causal`) run on the whole tensor.
- **packed** (`batching: pack`): several utterances lie back to back in a row; utterance i fills
  row rows[i] from step offsets[i] for lengths[i] steps. Here a network must keep them apart: an
  RNN restarts its state at each utterance (it runs on a PackedSequence of the utterances,
  which cuDNN supports), attention is block-diagonal causal, and rotary positions restart at 0.

`Layout` carries the per-utterance facts (lengths, and rows/offsets when packed) and derives
the per-step maps the networks and the loss need, each computed once per batch on the batch's
device: which utterance a step belongs to (-1: padding), its position inside it, the loss mask,
the attention mask and the PackedSequence order.
"""

from __future__ import annotations

from functools import cached_property

import torch
from torch.nn.utils.rnn import PackedSequence


class Layout:
    """lengths (n,) int64; rows, offsets (n,) int64 when packed (None: padded, row i = utterance i);
    steps: the tensor's time dimension L (default: the longest utterance's end)."""

    def __init__(
        self,
        lengths: torch.Tensor,
        rows: torch.Tensor | None = None,
        offsets: torch.Tensor | None = None,
        steps: int | None = None,
        n_rows: int | None = None,
    ):
        if (rows is None) != (offsets is None):
            raise ValueError("Layout: give both rows and offsets (a packed batch) or neither (a padded batch)")
        self.lengths = lengths.long()
        self.rows = rows.long() if rows is not None else None
        self.offsets = offsets.long() if offsets is not None else None
        self._steps = steps
        self._n_rows = n_rows

    # ------------------------------------------------------------------------------ building

    @classmethod
    def of(cls, batch: dict) -> Layout:
        """The layout of a stream batch: packed when it has rows and offsets, else padded."""
        feats = batch["feats"]
        return cls(
            batch["lengths"], batch.get("rows"), batch.get("offsets"), steps=feats.shape[1], n_rows=feats.shape[0]
        )

    @classmethod
    def coerce(cls, layout: Layout | torch.Tensor | None, feats: torch.Tensor) -> Layout | None:
        """A Layout from a Layout, a lengths tensor (padded) or None (every row full: no layout)."""
        if layout is None or isinstance(layout, Layout):
            return layout
        return cls(layout, steps=feats.shape[1], n_rows=feats.shape[0])

    # ----------------------------------------------------------------------------- the facts

    @property
    def packed(self) -> bool:
        return self.rows is not None

    @property
    def device(self) -> torch.device:
        return self.lengths.device

    @property
    def steps(self) -> int:
        if self._steps is None:
            ends = self.lengths if self.offsets is None else self.offsets + self.lengths
            self._steps = int(ends.max()) if ends.numel() else 0
        return self._steps

    @property
    def n_rows(self) -> int:
        if self._n_rows is None:
            self._n_rows = int(self.rows.max()) + 1 if self.packed else int(self.lengths.numel())
        return self._n_rows

    @cached_property
    def _frames(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For every frame of every utterance, in utterance order: (utterance, position, flat index)."""
        n = self.lengths.numel()
        total = int(self.lengths.sum())
        utt = torch.repeat_interleave(torch.arange(n, device=self.device), self.lengths, output_size=total)
        starts = torch.cumsum(self.lengths, 0) - self.lengths
        pos = torch.arange(total, device=self.device) - starts[utt]
        rows = self.rows if self.packed else torch.arange(n, device=self.device)
        offsets = self.offsets if self.packed else torch.zeros_like(self.lengths)
        flat = (rows * self.steps + offsets)[utt] + pos
        return utt, pos, flat

    @cached_property
    def utterance(self) -> torch.Tensor:
        """(R, L) int64: the utterance each step belongs to, -1 for padding."""
        utt, _, flat = self._frames
        out = torch.full((self.n_rows * self.steps,), -1, dtype=torch.long, device=self.device)
        return out.index_copy_(0, flat, utt).view(self.n_rows, self.steps)

    @cached_property
    def position(self) -> torch.Tensor:
        """(R, L) int64: each step's position inside its utterance (0 on padding)."""
        if not self.packed:
            return torch.arange(self.steps, device=self.device).expand(self.n_rows, self.steps)
        _, pos, flat = self._frames
        out = torch.zeros((self.n_rows * self.steps,), dtype=torch.long, device=self.device)
        return out.index_copy_(0, flat, pos).view(self.n_rows, self.steps)

    @cached_property
    def occupied(self) -> torch.Tensor:
        """(R, L) bool: the steps that hold a frame (not padding)."""
        if not self.packed:
            return torch.arange(self.steps, device=self.device)[None, :] < self.lengths[:, None]
        return self.utterance >= 0

    def valid(self, steps: int, shift: int) -> torch.Tensor:
        """(R, steps) bool: the step has a target `shift` frames later in the same utterance."""
        if not self.packed:
            return torch.arange(steps, device=self.device)[None, :] < (self.lengths[:, None] - shift)
        utt = self.utterance[:, :steps]
        remaining = self.lengths[utt.clamp_min(0)] - self.position[:, :steps]
        return (utt >= 0) & (remaining > shift)

    @cached_property
    def attention_mask(self) -> torch.Tensor:
        """(R, 1, L, L) bool for scaled_dot_product_attention: a step attends to the steps of its own
        utterance up to itself; a padding step attends to itself only (no empty softmax rows)."""
        utt = self.utterance
        steps = torch.arange(self.steps, device=self.device)
        causal = steps[None, :] <= steps[:, None]
        same = utt[:, :, None] == utt[:, None, :]
        own = torch.eye(self.steps, dtype=torch.bool, device=self.device)
        return ((same & causal) | own).unsqueeze(1)

    # ------------------------------------------------------------------- recurrent networks

    @cached_property
    def _packed_order(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """PackedSequence order of the frames (time-major over the utterances sorted by length,
        longest first): their flat indices, batch_sizes (CPU), sorted and unsorted indices."""
        lengths = self.lengths
        order = torch.sort(lengths, descending=True, stable=True).indices
        n = lengths.numel()
        rows = self.rows if self.packed else torch.arange(n, device=self.device)
        offsets = self.offsets if self.packed else torch.zeros_like(lengths)
        longest = int(lengths.max()) if n else 0
        t = torch.arange(longest, device=self.device)[:, None]
        grid = (rows * self.steps + offsets)[order][None, :] + t
        mask = t < lengths[order][None, :]
        batch_sizes = mask.sum(1).cpu()
        unsorted = torch.empty_like(order)
        unsorted[order] = torch.arange(n, device=self.device)
        return grid[mask], batch_sizes, order, unsorted

    def pack(self, x: torch.Tensor) -> PackedSequence:
        """(R, L, D) -> a PackedSequence of the utterances (their frames only)."""
        index, batch_sizes, order, unsorted = self._packed_order
        return PackedSequence(x.reshape(-1, x.shape[-1])[index], batch_sizes, order, unsorted)

    @cached_property
    def _padded_index(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(n, longest) flat index of each utterance's steps (0 past its end) and the mask of real ones."""
        t = torch.arange(int(self.lengths.max()) if self.lengths.numel() else 0, device=self.device)
        rows = self.rows if self.packed else torch.arange(self.lengths.numel(), device=self.device)
        offsets = self.offsets if self.packed else torch.zeros_like(self.lengths)
        valid = t[None, :] < self.lengths[:, None]
        index = (rows * self.steps + offsets)[:, None] + t[None, :]
        return torch.where(valid, index, 0), valid

    def to_padded(self, x: torch.Tensor) -> torch.Tensor:
        """(R, L, D) -> (n, longest, D): each utterance in its own row from step 0, zeros after it."""
        index, valid = self._padded_index
        return x.reshape(-1, x.shape[-1])[index] * valid.unsqueeze(-1).to(x.dtype)

    def from_padded(self, y: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """(n, longest, D) -> (R, L, D): each utterance's steps back in place (zeros where no frame is)."""
        index, valid = self._padded_index
        out = y.new_zeros((self.n_rows * self.steps, y.shape[-1]))
        return out.index_copy(0, index[valid], y[valid]).view(*like.shape[:2], y.shape[-1])

    def unpack(self, packed: PackedSequence, like: torch.Tensor) -> torch.Tensor:
        """A PackedSequence of the utterances back to (R, L, D) (zeros where no frame is)."""
        index = self._packed_order[0]
        data = packed.data
        out = data.new_zeros((self.n_rows * self.steps, data.shape[-1]))
        return out.index_copy(0, index, data).view(*like.shape[:2], data.shape[-1])


__all__ = ["Layout"]
