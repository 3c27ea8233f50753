"""Torch's intra-op threads for a block of code (torch is imported only when used)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with `n` torch threads (None: as it is), then restore the number before it.

    Small models, small dense problems and the filterbank run fastest on one thread: with two on this
    project's busy 2-core machine the fbank of 200 speechocean762 files took 15x as long, a width-48
    LSTM's features 6x, a probe's regression 5-20x (docs/encoders.md); preparation's workers use one."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = ["torch_threads"]
