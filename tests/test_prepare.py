"""Preparation on real FSDD speech: splits, nested subsets, statistics, determinism, resume, bad audio."""

import io
import json
import shutil
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from apcscale.data import Manifest, ManifestError, PrepareError, UnknownSubsetError, ensure_prepared
from apcscale.recipes.prepare import main as prepare_cli


def tar_samples(path: Path) -> dict[str, np.ndarray]:
    """Read a shard with plain tarfile (independently of the streaming code)."""
    out = {}
    with tarfile.open(path) as tar:
        for member in tar:
            if member.name.endswith(".npy"):
                out[member.name[:-4]] = np.load(io.BytesIO(tar.extractfile(member).read()))
    return out


def subset_keys(m: Manifest, name: str) -> set[str]:
    return {k for shard in m.subset(name)["shards"] for k in tar_samples(m.shard_path(shard))}


def test_layout_and_speaker_dev_split(prepared_fsdd):
    m = Manifest.load(prepared_fsdd)
    assert m.feature_dim == 40 and m.features["sample_rate"] == 8000 and m.features["frames_per_second"] == 100
    assert all((m.root / name).is_file() for name in m.shards)
    assert all(n.startswith("train/") for n in m.train["shards"]) and all(n.startswith("dev/") for n in m.dev["shards"])
    # dev: one whole speaker of the six (500 utterances); train: the other five
    assert m.data["split"]["by"] == "speaker" and len(m.data["split"]["speakers"]) == 1
    dev_speaker = m.data["split"]["speakers"][0]
    dev, train = m.samples("dev"), m.samples("train")
    assert len(dev) == 500 and {s["speaker"] for s in dev} == {dev_speaker}
    assert len(train) == 2500 and dev_speaker not in {s["speaker"] for s in train}
    assert m.train["speakers"] == 5 and m.dev["speakers"] == 1
    assert not m.skipped and m.source["files_found"] == 3000


def test_frames_match_the_audio_at_100_per_second(prepared_fsdd, fsdd_dir):
    m = Manifest.load(prepared_fsdd)
    info = {p.stem: sf.info(str(p)).frames for p in (fsdd_dir / "recordings").glob("*.wav")}
    samples = m.samples("train") + m.samples("dev")
    assert all(s["n_frames"] == 1 + (info[s["key"]] - 200) // 80 for s in samples)
    frames = sum(s["n_frames"] for s in samples)
    seconds = sum(info.values()) / 8000
    # 100 frames per second, less ~2 per utterance (the last incomplete 25 ms window, rounding down)
    assert frames == pytest.approx(100 * seconds - 2 * len(samples), rel=0.002)
    # and what the shards hold is what the index says
    shard = m.train["shards"][0]
    stored = tar_samples(m.shard_path(shard))
    index = {s["key"]: s["n_frames"] for s in m.shard_index(shard)["samples"]}
    assert {k: v.shape for k, v in stored.items()} == {k: (n, 40) for k, n in index.items()}
    assert all(v.dtype == np.float16 for v in stored.values())


def test_nested_subsets_span_two_orders_of_magnitude_in_2x_steps(prepared_fsdd):
    m = Manifest.load(prepared_fsdd)
    names = list(m.subsets)
    assert names == [f"d{i}" for i in range(len(names))] and len(names) >= 8
    frames = [m.subsets[n]["frames"] for n in names]
    assert frames[-1] / frames[0] >= 100
    assert frames[-1] == m.train["frames"] and m.largest_subset == names[-1]
    for small, big in zip(frames, frames[1:]):
        assert 1.6 <= big / small <= 2.5
    previous: set[str] = set()
    for name in names:
        info = m.subsets[name]
        keys = subset_keys(m, name)
        assert previous < keys  # each subset holds every smaller one
        assert len(keys) == info["utterances"]
        assert info["hours"] == pytest.approx(info["frames"] / 360_000)
        previous = keys


def test_statistics_are_those_of_the_training_split(prepared_fsdd):
    m = Manifest.load(prepared_fsdd)
    x = np.concatenate([v.astype(np.float64) for s in m.train["shards"] for v in tar_samples(m.shard_path(s)).values()])
    assert x.shape == (m.train["frames"], 40) == (m.data["stats"]["frames"], 40)
    np.testing.assert_allclose(m.mean, x.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(m.var, x.var(axis=0), rtol=1e-7)
    np.testing.assert_allclose(m.std, x.std(axis=0), rtol=1e-7)


def test_same_input_same_bytes_whatever_the_workers(fsdd_slice, tmp_path):
    a = ensure_prepared(fsdd_slice, tmp_path / "a", workers=1, progress=False, shard_utterances=40)
    b = ensure_prepared(fsdd_slice, tmp_path / "b", workers=2, progress=False, shard_utterances=40)
    assert a.read_bytes() == b.read_bytes()
    shards = sorted(p.relative_to(a.parent) for p in a.parent.rglob("*.tar"))
    assert len(shards) >= 8
    assert shards == sorted(p.relative_to(b.parent) for p in b.parent.rglob("*.tar"))
    assert all((a.parent / s).read_bytes() == (b.parent / s).read_bytes() for s in shards)
    m = Manifest.load(a)
    assert m.dev["utterances"] == 50  # 300 files, 6 speakers: one speaker held out
    with tarfile.open(a.parent / shards[0]) as tar:
        members = tar.getmembers()
    assert all(t.mtime == 0 and t.uid == 0 and t.gid == 0 and t.uname == "" for t in members)


def test_rerun_reuses_and_resumes(fsdd_slice, tmp_path):
    out = tmp_path / "p"
    manifest = ensure_prepared(fsdd_slice, out, workers=2, progress=False, shard_utterances=40)
    original = manifest.read_bytes()
    shards = sorted(out.rglob("*.tar"))
    stamps = {p: p.stat().st_mtime_ns for p in shards}
    time.sleep(0.01)
    # (how fast a rerun is: benchmarks/bench_prepare.py; here, that it rewrites nothing)
    assert ensure_prepared(fsdd_slice, out, workers=2, progress=False, shard_utterances=40) == manifest
    assert {p: p.stat().st_mtime_ns for p in shards} == stamps and manifest.read_bytes() == original

    # a partial preparation: one shard gone, one damaged, no manifest
    gone, damaged = shards[1], shards[3]
    gone.unlink()
    data = bytearray(damaged.read_bytes())
    data[5000:5010] = b"\xff" * 10
    damaged.write_bytes(bytes(data))
    manifest.unlink()
    damaged_stamp = damaged.stat().st_mtime_ns
    ensure_prepared(fsdd_slice, out, workers=2, progress=False, shard_utterances=40)
    assert manifest.read_bytes() == original
    rewritten = {p for p in shards if p.stat().st_mtime_ns != stamps[p]}
    assert rewritten == {gone, damaged} and damaged.stat().st_mtime_ns != damaged_stamp
    Manifest.load(manifest).verify(deep=True)


def test_changed_settings_prepare_again(fsdd_slice, tmp_path):
    out = tmp_path / "p"
    ensure_prepared(fsdd_slice, out, progress=False)
    m = Manifest.load(ensure_prepared(fsdd_slice, out, n_mels=24, progress=False))
    assert m.feature_dim == 24 and len(m.mean) == 24
    assert tar_samples(m.shard_path(m.dev["shards"][0]))["0_george_0"].shape[1] == 24


def test_corrupt_and_unreadable_audio_is_skipped_and_listed(fsdd_slice, tmp_path):
    audio = tmp_path / "audio"
    shutil.copytree(fsdd_slice, audio, symlinks=False)
    rec = audio / "recordings"
    (rec / "8_theo_90.wav").write_bytes(b"RIFF\x00\x00garbage, not audio" * 20)
    good = (rec / "1_lucas_0.wav").read_bytes()
    (rec / "2_lucas_91.wav").write_bytes(good[:30])  # cut inside the header
    (rec / "3_lucas_92.wav").write_bytes(good[:44])  # a header and no samples
    (rec / "4_lucas_93.wav").write_bytes(good[: 44 + 2 * 150])  # 150 samples: under one 25 ms window
    (rec / "5_lucas_94.wav").write_bytes(b"")
    manifest = ensure_prepared(audio, tmp_path / "out", workers=2, progress=False)
    m = Manifest.load(manifest)
    reasons = {s["path"]: s["reason"] for s in m.skipped}
    assert set(reasons) == {
        f"recordings/{n}"
        for n in ("8_theo_90.wav", "2_lucas_91.wav", "3_lucas_92.wav", "4_lucas_93.wav", "5_lucas_94.wav")
    }
    assert reasons["recordings/8_theo_90.wav"].startswith("unreadable")
    assert reasons["recordings/2_lucas_91.wav"].startswith("unreadable")
    assert reasons["recordings/3_lucas_92.wav"].startswith("empty")
    assert reasons["recordings/4_lucas_93.wav"].startswith("too short")
    assert m.train["utterances"] + m.dev["utterances"] == 300
    assert m.source["files_found"] == 305


def test_unknown_speakers_split_by_utterance(fsdd_dir, tmp_path):
    audio = tmp_path / "flat"
    audio.mkdir()
    for i, wav in enumerate(sorted((fsdd_dir / "recordings").glob("*.wav"))[::25]):
        (audio / f"take{i:03d}.wav").symlink_to(wav)
    m = Manifest.load(ensure_prepared(audio, tmp_path / "out", progress=False, dev_fraction=0.2))
    assert m.data["split"]["by"] == "utterance"
    dev = set(m.keys("dev"))
    assert 10 <= len(dev) <= 40 and not dev & set(m.keys("train"))
    assert m.dev["utterances"] + m.train["utterances"] == 120


def test_dev_split_by_utterance_or_by_speaker_on_request(fsdd_slice, fsdd_dir, tmp_path):
    """dev_by utterance: known speakers, but every one of them in both splits (for corpora with a
    handful of speakers); dev_by speaker: refused, naming files, when the names tell no speaker."""
    m = Manifest.load(
        ensure_prepared(fsdd_slice, tmp_path / "utt", progress=False, dev_fraction=0.2, dev_by="utterance")
    )
    assert m.data["split"]["by"] == "utterance" and m.data["options"]["dev_by"] == "utterance"
    speakers = lambda split: {s["speaker"] for s in m.samples(split)}  # noqa: E731
    assert len(speakers("dev")) == 6 and speakers("dev") == speakers("train")
    assert not set(m.keys("dev")) & set(m.keys("train")) and 30 <= m.dev["utterances"] <= 90
    flat = tmp_path / "flat"
    flat.mkdir()
    for i, wav in enumerate(sorted((fsdd_dir / "recordings").glob("*.wav"))[:20]):
        (flat / f"take{i:03d}.wav").symlink_to(wav)
    with pytest.raises(PrepareError, match=r"dev_by speaker needs .*take000\.wav"):
        ensure_prepared(flat, tmp_path / "o", progress=False, dev_by="speaker")
    with pytest.raises(PrepareError, match="dev_by must be one of auto, speaker, utterance"):
        ensure_prepared(flat, tmp_path / "o", progress=False, dev_by="room")


def test_bad_requests_fail_clearly(tmp_path, prepared_fsdd):
    with pytest.raises(PrepareError, match="unknown preparation option"):
        ensure_prepared(tmp_path, tmp_path / "o", progress=False, shard_size=3)
    with pytest.raises(PrepareError, match="no readable"):
        ensure_prepared(tmp_path, tmp_path / "o", progress=False)
    with pytest.raises(PrepareError, match="not found"):
        ensure_prepared(tmp_path / "nowhere", tmp_path / "o", progress=False)
    with pytest.raises(ManifestError, match="manifest not found"):
        Manifest.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not readable JSON"):
        Manifest.load(tmp_path / "bad.json")
    m = Manifest.load(prepared_fsdd.parent)  # the folder works too
    with pytest.raises(UnknownSubsetError, match=r"no subset 'd99'.*d0 .*d7") as err:
        m.subset("d99")
    assert isinstance(err.value, KeyError)


def test_cli(fsdd_slice, tmp_path, capsys):
    assert (
        prepare_cli(
            [str(fsdd_slice), str(tmp_path / "cli"), "--n-mels", "32", "--workers", "2", "--no-progress", "--verify"]
        )
        == 0
    )
    path = Path(capsys.readouterr().out.strip())
    assert path == tmp_path / "cli" / "manifest.json" and Manifest.load(path).feature_dim == 32
    assert prepare_cli([str(tmp_path / "nowhere"), str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--audio DIR" in err and "APCSCALE_AUDIO" in err
    assert json.loads(path.read_text())["options"]["shard_utterances"] == 256


def test_a_digitally_silent_file_is_skipped_and_a_rerun_reuses_everything(fsdd_slice, tmp_path, monkeypatch):
    """Issue 12, defect 5: one 10-minute all-zero wav among 300 FSDD files was 83% of the training
    frames and moved the mean from 9.7..15.6 to about -11. It is skipped, with its reason."""
    import apcscale.data.screen as screen

    audio = tmp_path / "audio"
    shutil.copytree(fsdd_slice, audio, symlinks=True)
    sf.write(audio / "recordings" / "silence.wav", np.zeros(10 * 60 * 8000, dtype=np.int16), 8000, subtype="PCM_16")
    out = tmp_path / "out"
    manifest = ensure_prepared(audio, out, workers=2, progress=False)
    m = Manifest.load(manifest)
    assert [s["path"] for s in m.skipped] == ["recordings/silence.wav"]
    assert m.skipped[0]["reason"].startswith("silent: 100% of its 10 ms blocks are digitally constant")
    assert m.train["utterances"] + m.dev["utterances"] == 300 and m.train["frames"] < 20_000
    assert 9.0 < min(m.mean) and max(m.mean) < 16.0  # the speech's statistics, not the silence's
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.tar")}
    before = manifest.read_bytes()

    def no_reading(*args, **kwargs):
        raise AssertionError("an unchanged corpus was screened again")

    monkeypatch.setattr(screen, "_map", no_reading)
    assert ensure_prepared(audio, out, workers=2, progress=False) == manifest
    assert manifest.read_bytes() == before and {p: p.stat().st_mtime_ns for p in out.rglob("*.tar")} == stamps


def test_no_real_recording_is_taken_for_silence(fsdd_dir):
    """Every FSDD file stays far under the threshold (the most constant: 5% of its blocks)."""
    from apcscale.data.audio import read_audio
    from apcscale.data.screen import SILENT_FRACTION, constant_fraction

    worst = max(constant_fraction(*read_audio(p)) for p in sorted((fsdd_dir / "recordings").glob("*.wav")))
    assert 0.0 < worst < SILENT_FRACTION / 5
    t = np.arange(8000) / 8000
    assert constant_fraction(np.full(8000, 0.25, dtype=np.float32), 8000) == 1.0  # a DC offset is as empty
    assert constant_fraction((0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000) == 0.0
