"""An s3prl-style upstream around an exported encoder (the example of docs/encoders.md).

s3prl's upstream models take a list of 1-D 16 kHz waveforms and return a dict whose
"hidden_states" is a list of (B, T, D) tensors, one per layer, that a downstream model weights
and sums; `get_downsample_rates` tells it how many input samples make one frame. This class has
that interface without importing s3prl: to use it there, put it in an s3prl upstream's expert.py
(`class UpstreamExpert(APCUpstream)`) as s3prl's docs on adding an upstream describe.

    up = APCUpstream("encoders/lstm-w64")
    out = up([torch.randn(16000), torch.randn(12000)])
    out["hidden_states"]      # depth + 1 tensors (2, T, width): the input projection, then each layer
    out["last_hidden_state"]  # the last of them, what APC's prediction head reads
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from apcscale.models.export import Encoder, load_encoder, pad


class APCUpstream(nn.Module):
    """A frozen APC encoder as an s3prl-style upstream. sample_rate: of the waveforms given (s3prl: 16 kHz);
    they are resampled to the export's own rate by its feature settings."""

    def __init__(self, export: str | Path | Encoder, sample_rate: int = 16000):
        super().__init__()
        self.encoder = export if isinstance(export, Encoder) else load_encoder(export)
        self.sample_rate = int(sample_rate)

    def get_downsample_rates(self, key: str = "hidden_states") -> int:
        """Input samples per output frame (a 10 ms hop: 160 at 16 kHz)."""
        return round(self.sample_rate * self.encoder.feature_config.frame_shift_ms / 1000.0)

    @torch.no_grad()
    def forward(self, wavs: list[torch.Tensor]) -> dict[str, list[torch.Tensor] | torch.Tensor]:
        feats = [self.encoder.features(w.detach().float().cpu(), self.sample_rate) for w in wavs]
        x, lengths = pad(feats)
        device = self.encoder.mean.device
        hidden = self.encoder.hidden_states(x.to(device), lengths.to(device))
        return {"hidden_states": hidden, "last_hidden_state": hidden[-1], "lengths": lengths}
