"""Parameter and FLOP counting (docs/models.md, "Counting").

N is the number of context-network parameters (the analogue of Kaplan et al.'s
non-embedding parameters); the total adds the input projection and the head.

Training FLOPs are counted analytically, per frame, for the weight matmuls and
attention (2 FLOPs per multiply-add; elementwise work, norms and biases are not
counted, as in Kaplan et al. and torch.utils.flop_counter):

- forward: 2 x weight MACs (+ attention: QK^T and AV, seq_len x d MACs each per layer);
- backward: 2 x forward (gradients w.r.t. inputs and w.r.t. weights), except for the
  input projection, whose input (the features) needs no gradient: 1 x forward.

So C ~ 6 N per frame for the context network (an LSTM layer has 4 and a GRU layer 3 gate
matrices on its input and on its state), plus 4 F d (input projection), 6 F d (head) and, for
Transformers, 12 L d T per frame for attention over T frames, T each crop's own length: counted
frames exclude padding and attention is counted per crop, whether a batch is padded or packed.
tests/test_models.py checks this against torch.utils.flop_counter within 10%.
"""

from __future__ import annotations

from dataclasses import dataclass

from apcscale.models.net import APCNet


@dataclass(frozen=True)
class ModelSize:
    n_context: int  # N: context-network parameters
    n_total: int  # with input projection and prediction head

    @property
    def n_embedding(self) -> int:
        return self.n_total - self.n_context


def count_parameters(net: APCNet) -> ModelSize:
    n_context = sum(p.numel() for p in net.context.parameters())
    n_total = sum(p.numel() for p in net.parameters())
    return ModelSize(n_context=n_context, n_total=n_total)


def forward_flops_per_frame(net: APCNet, seq_len: int) -> dict[str, float]:
    f, d = net.feature_dim, net.cfg.width
    ctx = net.context.matmul_flops_per_frame(seq_len)
    return {
        "input_proj": 2.0 * f * d,
        "context": ctx["weights"],
        "attention": ctx["attention"],
        "head": 2.0 * d * f,
    }


def training_flops_per_frame(net: APCNet, seq_len: int) -> float:
    """Forward + backward FLOPs per frame of a training step on sequences of seq_len frames."""
    fwd = forward_flops_per_frame(net, seq_len)
    return 2.0 * fwd["input_proj"] + 3.0 * (fwd["context"] + fwd["attention"] + fwd["head"])


def batch_training_flops(net: APCNet, lengths: list[int]) -> float:
    """Training FLOPs of one batch, counting each sequence at its own (unpadded) length."""
    base = training_flops_per_frame(net, 0)
    per_len = training_flops_per_frame(net, 1) - base  # attention term is linear in seq_len
    frames = sum(lengths)
    squares = sum(n * n for n in lengths)
    return base * frames + per_len * squares


def forward_flops(net: APCNet, lengths: list[int]) -> float:
    """Forward-only FLOPs of a batch (for evaluation cost)."""
    total = 0.0
    for n in lengths:
        total += n * sum(forward_flops_per_frame(net, n).values())
    return total
