"""How a frame budget maps onto Lightning's loop.

Lightning evaluates at the end of a training "epoch". Our training stream is
infinite (it cycles the subset, so data-limited runs repeat their data), so an
epoch here is one *evaluation interval*: `EvalIntervals` hands batches from one
persistent stream and stops iterating after the batch that reaches the module's
next evaluation point. Lightning then runs the dev evaluation, and the next
epoch continues the same stream where it left off (no restart of loader
workers, no replayed data).

Lightning fetches one batch ahead, so the decision for batch k+1 is taken while
batch k is about to train: `APCModule.interval_ends_after(frames of batch k)`
answers it from the exact frame count (under DDP, from the last global batch,
the same on every rank).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import lightning as L


class EvalIntervals:
    """Iterate a persistent stream, one evaluation interval per `iter()`.

    No `__len__` on purpose: Lightning then treats the train loader as infinite
    and validates when the iteration ends.
    """

    def __init__(self, stream: Iterable, module: Any):
        self.stream = stream
        self.module = module
        self._it: Iterator | None = None

    def __iter__(self) -> Iterator:
        if self._it is None:
            self._it = iter(self.stream)
        while True:
            batch = next(self._it)
            yield batch
            # resumed when Lightning fetches the next batch, just before `batch` trains
            if self.module.interval_ends_after(batch["n_frames"]):
                return


class IntervalDataModule(L.LightningDataModule):
    """Wraps a data module so that its training stream ends at evaluation points."""

    def __init__(self, inner: L.LightningDataModule, module: Any):
        super().__init__()
        self.inner = inner
        self.module = module
        self._train: EvalIntervals | None = None

    def prepare_data(self) -> None:
        self.inner.prepare_data()

    def setup(self, stage: str) -> None:
        self.inner.trainer = self.trainer
        self.inner.setup(stage)

    def train_dataloader(self) -> EvalIntervals:
        if self._train is None:
            self._train = EvalIntervals(self.inner.train_dataloader(), self.module)
        return self._train

    def val_dataloader(self):
        return self.inner.val_dataloader()

    def teardown(self, stage: str) -> None:
        self.inner.teardown(stage)
