"""Log-Mel filterbank features: torchaudio's Kaldi-compatible fbank, 25 ms window, 10 ms hop.

The exact settings are part of every manifest (`FeatureConfig.to_dict`), so a
prepared corpus says how it was made. Defaults: 80 Mel bins at 16 kHz and
above, 40 below (8 kHz telephone-band speech such as FSDD); no dither (so the
same audio always gives the same features); samples scaled to the 16-bit
integer range as Kaldi expects; snip_edges, so an utterance of n samples gives
1 + (n - window) // hop frames (100 frames per second of audio).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torchaudio.functional as AF
from torchaudio.compliance import kaldi

EXTRACTOR = "torchaudio.compliance.kaldi.fbank"


def default_n_mels(sample_rate: int) -> int:
    return 80 if sample_rate >= 16000 else 40


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = 16000
    n_mels: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    low_freq: float = 20.0
    high_freq: float = 0.0  # 0: the Nyquist frequency
    preemphasis: float = 0.97
    window: str = "povey"
    dither: float = 0.0
    waveform_scale: float = 32768.0  # float samples in [-1, 1] -> Kaldi's 16-bit range
    dtype: str = "float16"  # storage type in the shards

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        if self.n_mels < 1:
            raise ValueError(f"n_mels must be positive, got {self.n_mels}")
        if self.window_samples < 2 or self.hop_samples < 1:
            raise ValueError(f"frame settings too small for {self.sample_rate} Hz")
        if self.dtype not in ("float16", "float32"):
            raise ValueError(f"dtype must be float16 or float32, got {self.dtype!r}")

    @classmethod
    def for_rate(cls, sample_rate: int, n_mels: int | None = None, **kw: Any) -> FeatureConfig:
        """The default settings for audio at `sample_rate` (80 Mel bins at >= 16 kHz, else 40)."""
        return cls(sample_rate=int(sample_rate), n_mels=int(n_mels or default_n_mels(sample_rate)), **kw)

    @property
    def window_samples(self) -> int:
        return int(self.sample_rate * self.frame_length_ms / 1000.0)

    @property
    def hop_samples(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms / 1000.0)

    @property
    def frames_per_second(self) -> float:
        return 1000.0 / self.frame_shift_ms

    def num_frames(self, num_samples: int, sample_rate: int | None = None) -> int:
        """Frames for `num_samples` samples (at `sample_rate`, resampled to ours if it differs)."""
        n = int(num_samples)
        if sample_rate is not None and int(sample_rate) != self.sample_rate:
            n = math.ceil(n * self.sample_rate / int(sample_rate))
        return 0 if n < self.window_samples else 1 + (n - self.window_samples) // self.hop_samples

    def compute(self, wave: np.ndarray | torch.Tensor, sample_rate: int) -> torch.Tensor:
        """(frames, n_mels) float32 log-Mel features of mono samples in [-1, 1]."""
        x = torch.as_tensor(wave, dtype=torch.float32).reshape(1, -1)
        if int(sample_rate) != self.sample_rate:
            x = AF.resample(x, int(sample_rate), self.sample_rate)
        if x.shape[1] < self.window_samples:
            return torch.zeros(0, self.n_mels)
        return kaldi.fbank(
            x * self.waveform_scale,
            num_mel_bins=self.n_mels,
            sample_frequency=float(self.sample_rate),
            frame_length=self.frame_length_ms,
            frame_shift=self.frame_shift_ms,
            low_freq=self.low_freq,
            high_freq=self.high_freq,
            preemphasis_coefficient=self.preemphasis,
            window_type=self.window,
            dither=self.dither,
            snip_edges=True,
            use_energy=False,
            use_log_fbank=True,
            use_power=True,
            remove_dc_offset=True,
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["extractor"] = EXTRACTOR
        d["frames_per_second"] = self.frames_per_second
        d["window_samples"] = self.window_samples
        d["hop_samples"] = self.hop_samples
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})
