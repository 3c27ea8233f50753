"""Model configuration: architecture and size (width x depth)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from apcscale.utils.schema import check

ARCHITECTURES = ("lstm", "gru", "transformer")
#: the architectures with attention heads (the others take no `heads`)
ATTENTION = ("transformer",)


@dataclass
class ModelConfig:
    """An APC model: input projection -> causal context network -> linear head.

    arch: "lstm" or "gru" (residual unidirectional LSTM / GRU stack) or "transformer" (causal,
        pre-LN, RoPE).
    width, depth: size of the context network; N counts its parameters.
    heads: attention heads (transformer only); default width // 64, at least 1.
    time_shift: predict the frame n steps ahead (Chung et al.: n = 3).
    """

    arch: Literal["lstm", "gru", "transformer"] = "lstm"
    width: int = 256
    depth: int = 3
    heads: int | None = None
    ff_mult: int = 4
    time_shift: int = 3
    dropout: float = 0.0

    def validate(self) -> None:
        check(self.width >= 1, "width", f"must be positive, got {self.width}")
        check(self.depth >= 1, "depth", f"must be positive, got {self.depth}")
        check(self.time_shift >= 1, "time_shift", f"must be >= 1, got {self.time_shift}")
        check(0.0 <= self.dropout < 1.0, "dropout", f"must be in [0, 1), got {self.dropout}")
        check(self.ff_mult >= 1, "ff_mult", f"must be positive, got {self.ff_mult}")
        if self.arch in ATTENTION:
            heads = self.num_heads
            check(heads >= 1, "heads", f"must be positive, got {heads}")
            check(self.width % heads == 0, "heads", f"width {self.width} is not divisible by {heads} heads")
            check(
                (self.width // heads) % 2 == 0,
                "heads",
                f"head dimension width/heads = {self.width // heads} must be even (rotary embeddings)",
            )
        else:
            check(self.heads is None, "heads", "only transformer models have attention heads")

    @property
    def num_heads(self) -> int:
        if self.heads is not None:
            return self.heads
        return max(1, self.width // 64)

    @property
    def label(self) -> str:
        return f"{self.arch}-w{self.width}-d{self.depth}"
