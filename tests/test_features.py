"""Log-Mel features on real FSDD speech: shape, 100 frames per second, exact settings, audio naming."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from apcscale.data.audio import read_audio, scan_audio, speaker_of, utterance_keys
from apcscale.data.features import FeatureConfig


def test_default_mel_bins_follow_the_sample_rate():
    assert FeatureConfig.for_rate(8000).n_mels == 40
    assert FeatureConfig.for_rate(16000).n_mels == 80
    assert FeatureConfig.for_rate(44100).n_mels == 80
    assert FeatureConfig.for_rate(8000, n_mels=23).n_mels == 23
    cfg = FeatureConfig.for_rate(16000)
    assert (cfg.window_samples, cfg.hop_samples, cfg.frames_per_second) == (400, 160, 100.0)


def test_shape_and_frame_rate_on_a_real_file(fsdd_dir):
    path = fsdd_dir / "recordings" / "0_george_0.wav"
    wave, sr = read_audio(path)
    assert sr == 8000 and wave.dtype == np.float32 and wave.shape == (sf.info(str(path)).frames,)
    cfg = FeatureConfig.for_rate(sr)
    feats = cfg.compute(wave, sr)
    n = wave.shape[0]
    # 25 ms window (200 samples), 10 ms hop (80 samples) at 8 kHz
    assert feats.shape == (1 + (n - 200) // 80, 40) == (cfg.num_frames(n), 40)
    duration = n / sr
    assert abs(feats.shape[0] - 100 * duration) <= 2.5  # 100 frames per second of audio
    assert torch.isfinite(feats).all()
    assert torch.equal(feats, cfg.compute(wave, sr))  # no dither: deterministic


def test_100_frames_per_second_over_many_files(fsdd_dir):
    files, skipped = scan_audio(fsdd_dir)
    assert len(files) == 3000 and not skipped
    cfg = FeatureConfig.for_rate(8000)
    sample = files[::150]
    frames = sum(cfg.compute(*read_audio(f.path)).shape[0] for f in sample)
    seconds = sum(f.duration for f in sample)
    # each utterance loses its last, incomplete 25 ms window and rounds down: ~2 frames
    assert frames == pytest.approx(100 * seconds - 2 * len(sample), abs=0.5 * len(sample))


def test_resampling_to_16k_gives_80_bins_and_the_same_frame_rate(fsdd_dir):
    wave, sr = read_audio(fsdd_dir / "recordings" / "3_theo_10.wav")
    cfg = FeatureConfig.for_rate(16000)
    feats = cfg.compute(wave, sr)
    assert feats.shape[1] == 80
    assert abs(feats.shape[0] - cfg.num_frames(len(wave), sr)) <= 1
    assert abs(feats.shape[0] - 100 * len(wave) / sr) <= 3


def test_log_mel_scale_doubling_amplitude_adds_log4(fsdd_dir):
    wave, sr = read_audio(fsdd_dir / "recordings" / "7_jackson_3.wav")
    cfg = FeatureConfig.for_rate(sr)
    diff = (cfg.compute(wave * 0.5, sr) - cfg.compute(wave * 0.25, sr)).flatten()
    assert float(diff.median()) == pytest.approx(math.log(4.0), abs=1e-3)


def test_too_short_audio_has_no_frames():
    cfg = FeatureConfig.for_rate(8000)
    assert cfg.num_frames(199) == 0 and cfg.num_frames(200) == 1 and cfg.num_frames(280) == 2
    assert cfg.compute(np.zeros(150, dtype=np.float32), 8000).shape == (0, 40)


def test_settings_round_trip_through_a_dict():
    cfg = FeatureConfig.for_rate(16000, n_mels=64)
    d = cfg.to_dict()
    assert d["extractor"] == "torchaudio.compliance.kaldi.fbank" and d["frames_per_second"] == 100.0
    assert FeatureConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match="n_mels"):
        FeatureConfig(n_mels=0)


def test_speakers_and_keys_from_file_names():
    assert speaker_of("recordings/0_george_12.wav") == "george"
    assert speaker_of("train-clean-100/19/198/19-198-0001.flac") == "19"
    assert speaker_of("p225/p225_001.wav") == "p225"
    assert speaker_of("take1.wav") is None
    assert utterance_keys(["a/x.wav", "b/y.flac"]) == ["x", "y"]
    keys = utterance_keys(["a/x.wav", "b/x.wav", "c/x.y.wav"])
    assert len(set(keys)) == 3 and all("." not in k and "/" not in k for k in keys)
