"""How the training stream's crops become batches: length buckets, packed rows, or stream order.

A batch's tensor is (rows, steps, F); the network computes on every one of its rows x steps,
but only the crops' frames count (and enter the loss). The ways to fill it:

- **bucket** (default): each window of crops (the shuffle buffer's worth, never more than
  one pass) is sorted by length and cut into batches of neighbouring lengths, whose order is
  then shuffled. Little padding, and every kernel stays dense: cuDNN / oneDNN RNNs and flash
  attention with `is_causal` run as they would on equal-length sequences.
- **pack**: the window's crops are packed back to back into rows of `row_frames` steps
  (best-fit decreasing), the rows shuffled and grouped into batches; the batch carries each
  crop's row and offset (apcscale.models.layout: the networks keep the crops apart).
- **random**: batches in stream order (the shuffle buffer's random order), padded to their
  longest crop: what the stream did before buckets, kept for comparisons.

A batch's size is `batch_size` crops, or a budget of `batch_frames` frames: its rows x steps
(what the network computes on) stay within it. The crops left over at the end of a window
(a last batch not yet full) go on into the next window, so no crop is dropped or repeated;
a finite stream's last crops make the last batch(es).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

BATCHING = ("bucket", "pack", "random")

Item = tuple[str, int, Any]  # (key, start frame, frames x F array): a crop
Row = list[Item]  # crops back to back in one row of a packed batch


@dataclass(frozen=True)
class BatchSpec:
    """batching: bucket | pack | random; batch_size (crops) or batch_frames (rows x steps);
    row_frames: a packed row's length (the crop length)."""

    batching: str = "bucket"
    batch_size: int | None = 32
    batch_frames: int | None = None
    row_frames: int = 256

    def __post_init__(self) -> None:
        if self.batching not in BATCHING:
            raise ValueError(f"batching must be one of {', '.join(BATCHING)}, got {self.batching!r}")
        if (self.batch_size is None) == (self.batch_frames is None):
            raise ValueError("give batch_size (crops per batch) or batch_frames (frames per batch), exactly one")
        if self.batch_frames is not None and self.batch_frames < self.row_frames:
            raise ValueError(f"batch_frames ({self.batch_frames}) is smaller than one crop of {self.row_frames} frames")
        if self.batching == "pack" and self.batch_frames is None:
            raise ValueError("batching 'pack' fills batches by frames: give batch_frames")


def _length(item: Item) -> int:
    return int(item[2].shape[0])


def cut(items: Sequence[Item], spec: BatchSpec) -> list[list[Item]]:
    """Consecutive batches of `items`: batch_size crops each, or as many as keep rows x longest
    within batch_frames (the last batch may be short)."""
    batches: list[list[Item]] = []
    current: list[Item] = []
    longest = 0
    for item in items:
        n = _length(item)
        if current and (
            len(current) == spec.batch_size
            if spec.batch_frames is None
            else (len(current) + 1) * max(longest, n) > spec.batch_frames
        ):
            batches.append(current)
            current, longest = [], 0
        current.append(item)
        longest = max(longest, n)
    if current:
        batches.append(current)
    return batches


def pack_rows(items: Sequence[Item], row_frames: int) -> list[Row]:
    """Best-fit decreasing: the longest crop first, each into the fullest row it still fits."""
    rows: list[Row] = []
    by_space: list[list[int]] = [[] for _ in range(row_frames + 1)]  # free steps -> rows with that many
    for item in sorted(items, key=lambda c: (-_length(c), c[0], c[1])):
        n = _length(item)
        space = next((s for s in range(n, row_frames + 1) if by_space[s]), None)
        if space is None:
            rows.append([])
            r, space = len(rows) - 1, row_frames
        else:
            r = by_space[space].pop()
        rows[r].append(item)
        by_space[space - n].append(r)
    return rows


class Batcher:
    """Turns windows of crops into batches (lists of crops, or for `pack` lists of rows)."""

    def __init__(self, spec: BatchSpec, rng: random.Random):
        self.spec, self.rng = spec, rng
        self.carry: list[Item] = []

    def _full(self, batch: list) -> bool:
        s = self.spec
        if s.batching == "pack":
            return len(batch) == s.batch_frames // s.row_frames
        if s.batch_frames is None:
            return len(batch) == s.batch_size
        return False  # a batch cut by frames is closed only by the crop that does not fit

    def add(self, window: list[Item]) -> list[list]:
        """The batches of the carried crops and this window; a last batch not yet full is carried."""
        batches = self._batches(self.carry + window)
        self.carry = []
        if batches and not self._full(batches[-1]):
            last = batches.pop()
            self.carry = [c for row in last for c in row] if self.spec.batching == "pack" else last
        if self.spec.batching != "random":
            self.rng.shuffle(batches)
        return batches

    def flush(self) -> list[list]:
        """The batches of whatever is carried (the end of a finite stream)."""
        batches, self.carry = self._batches(self.carry), []
        return batches

    def _batches(self, items: list[Item]) -> list[list]:
        s = self.spec
        if s.batching == "pack":
            rows = pack_rows(items, s.row_frames)
            self.rng.shuffle(rows)
            per = s.batch_frames // s.row_frames
            return [rows[i : i + per] for i in range(0, len(rows), per)]
        if s.batching == "bucket":
            items = sorted(items, key=lambda c: (_length(c), c[0], c[1]))
        return cut(items, s)


__all__ = ["BATCHING", "BatchSpec", "Batcher", "cut", "pack_rows"]
