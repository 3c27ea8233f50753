"""Kaldi data directories and lhotse manifests as input, built from real FSDD speech.

Sixty FSDD utterances (ten of each of the six speakers) are joined into twelve longer
recordings (five utterances each; one stored as FLAC). A Kaldi data directory (wav.scp,
segments, utt2spk) and lhotse manifests (recordings + supervisions, and a CutSet) describe the
original utterances as spans of those recordings, with speaker names that only utt2spk and the
supervisions carry. Prepared from any of them, every utterance's features must equal, bit for
bit, those prepared from the original files, and the preparation must hold out whole speakers.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from apcscale.data import Manifest, PrepareError, ensure_prepared
from apcscale.data.audio import safe_keys
from apcscale.data.inputs import scan_input
from apcscale.recipes.prepare import main as prepare_cli

SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def need_lhotse():
    """lhotse is pinned in requirements.lock, so CI (CI=true) must have it; elsewhere its absence skips."""
    try:
        import lhotse
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("lhotse is not installed, but requirements.lock pins it (make install)")
        pytest.skip("lhotse is not installed (it is pinned in requirements.lock: make install)")
    return lhotse


def features(manifest: Path) -> dict[str, tuple[np.ndarray, dict]]:
    """key -> (features, sample metadata) of every utterance of a prepared corpus, read with plain tarfile."""
    m = Manifest.load(manifest)
    out: dict[str, list] = {}
    for name in m.shards:
        with tarfile.open(m.shard_path(name)) as tar:
            for member in tar:
                key, _, ext = member.name.partition(".")
                data = tar.extractfile(member).read()
                entry = out.setdefault(key, [None, None])
                if ext == "npy":
                    entry[0] = np.load(io.BytesIO(data))
                else:
                    entry[1] = json.loads(data)
    return {k: (v[0], v[1]) for k, v in out.items()}


@pytest.fixture(scope="module")
def corpus(fsdd_dir, tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("inputs")
    folder, audio = base / "originals", base / "audio"
    folder.mkdir()
    audio.mkdir()
    utts = []  # (utterance id, recording id, start s, end s, speaker, FSDD stem)
    recordings = {}  # recording id -> file
    for speaker in SPEAKERS:
        for half in (0, 1):
            rid = f"rec-{speaker}-{half}"
            path = audio / (f"{rid}.flac" if (speaker, half) == ("lucas", 1) else f"{rid}.wav")
            pieces, at = [], 0
            for digit in range(5 * half, 5 * half + 5):
                stem = f"{digit}_{speaker}_0"
                src = fsdd_dir / "recordings" / f"{stem}.wav"
                (folder / src.name).symlink_to(src)
                samples, sr = sf.read(str(src), dtype="int16")
                assert sr == 8000
                # utterance ids with a dot (not WebDataset-safe) and speakers no file name tells
                utts.append((f"utt.{stem}", rid, at / sr, (at + len(samples)) / sr, f"spk-{speaker}", stem))
                pieces.append(samples)
                at += len(samples)
            sf.write(str(path), np.concatenate(pieces), 8000, subtype="PCM_16")
            recordings[rid] = path
    reference = features(ensure_prepared(folder, base / "prepared-originals", progress=False, workers=1))
    return {"base": base, "utts": utts, "recordings": recordings, "reference": reference}


def kaldi_dir(corpus: dict, where: Path, *, pipe: str | None = None) -> Path:
    where.mkdir(parents=True, exist_ok=True)
    lines = []
    for rid, path in sorted(corpus["recordings"].items()):
        lines.append(f"{rid} cat {path} |" if rid == pipe else f"{rid} {path}")
    (where / "wav.scp").write_text("\n".join(lines) + "\n")
    # 6 decimals are exact for 8 kHz sample positions (n / 8000 = n * 125e-6)
    (where / "segments").write_text("".join(f"{u} {r} {a:.6f} {b:.6f}\n" for u, r, a, b, _, _ in corpus["utts"]))
    (where / "utt2spk").write_text("".join(f"{u} {s}\n" for u, _, _, _, s, _ in corpus["utts"]))
    return where


def check_same_as_originals(manifest: Path, corpus: dict, ids: dict[str, str] | None = None) -> Manifest:
    """Every utterance's features equal those from its original file; speakers from the description;
    dev holds out whole speakers; the nested subsets are there."""
    got = features(manifest)
    keys = dict(zip(safe_keys([u[0] for u in corpus["utts"]]), corpus["utts"]))
    if ids is not None:  # key of the prepared sample -> utterance id
        keys = {k: next(u for u in corpus["utts"] if u[0] == ids[k]) for k in got}
    assert set(got) == set(keys) and len(got) == 60
    for key, (feats, meta) in got.items():
        uid, rid, start, end, speaker, stem = keys[key]
        ref = corpus["reference"][stem][0]
        assert feats.dtype == np.float16 and np.array_equal(feats, ref), key
        assert meta["speaker"] == speaker and meta["duration"] == pytest.approx(end - start, abs=1e-6)
    m = Manifest.load(manifest)
    assert m.data["split"]["by"] == "speaker"
    dev = set(m.data["split"]["speakers"])
    assert dev and dev < {f"spk-{s}" for s in SPEAKERS}
    assert {s["speaker"] for s in m.samples("dev")} == dev and not dev & {s["speaker"] for s in m.samples("train")}
    assert len(m.subsets) >= 3 and m.subsets[m.largest_subset]["utterances"] == len(m.samples("train"))
    return m


def test_a_kaldi_data_directory_prepares_like_the_original_files(corpus, tmp_path, monkeypatch):
    data = kaldi_dir(corpus, tmp_path / "data" / "train")
    monkeypatch.chdir(corpus["recordings"]["rec-george-0"].parent)  # one path relative, as Kaldi allows
    scp = data / "wav.scp"
    scp.write_text(scp.read_text().replace(str(corpus["recordings"]["rec-george-0"]), "rec-george-0.wav"))
    assert prepare_cli([str(data), str(tmp_path / "out"), "--no-progress", "--workers", "2"]) == 0
    m = check_same_as_originals(tmp_path / "out" / "manifest.json", corpus)
    assert m.source["kind"] == "kaldi" and m.source["root"] == str(data.resolve())
    assert m.source["segments"] and m.source["utt2spk"] and m.source["recordings"] == 12 and not m.skipped


def test_a_wav_scp_pipe_is_refused_unless_allowed(corpus, tmp_path, capsys):
    data = kaldi_dir(corpus, tmp_path / "data", pipe="rec-theo-1")
    with pytest.raises(
        PrepareError,
        match=r"wav\.scp line 10: recording 'rec-theo-1' is read through a command "
        r"\(cat .*rec-theo-1\.wav \|\); .*--allow-pipes",
    ):
        ensure_prepared(data, tmp_path / "refused", progress=False)
    assert not (tmp_path / "refused" / "manifest.json").exists()
    assert prepare_cli([str(data), str(tmp_path / "refused"), "--no-progress"]) == 2
    assert "--allow-pipes" in capsys.readouterr().err
    m = check_same_as_originals(ensure_prepared(data, tmp_path / "piped", progress=False, allow_pipes=True), corpus)
    assert any(s["path"].startswith("cat ") for s in m.samples("train") + m.samples("dev"))


def test_a_lhotse_recordings_and_supervisions_manifest_prepares_like_the_original_files(corpus, tmp_path):
    lhotse = need_lhotse()
    recs = lhotse.RecordingSet.from_recordings(
        lhotse.Recording.from_file(p, recording_id=rid) for rid, p in sorted(corpus["recordings"].items())
    )
    sups = lhotse.SupervisionSet.from_segments(
        lhotse.SupervisionSegment(uid, rid, start=a, duration=b - a, speaker=spk)
        for uid, rid, a, b, spk, _ in corpus["utts"]
    )
    recs.to_file(tmp_path / "fsdd_recordings_all.jsonl.gz")
    sups.to_file(tmp_path / "fsdd_supervisions_all.jsonl.gz")
    m = check_same_as_originals(
        ensure_prepared(tmp_path / "fsdd_recordings_all.jsonl.gz", tmp_path / "out", progress=False), corpus
    )
    assert m.source["kind"] == "lhotse" and m.source["manifest"] == "RecordingSet"
    assert m.source["supervisions"] == str(tmp_path / "fsdd_supervisions_all.jsonl.gz")
    # the supervisions given instead find their recordings by name: the same utterances
    by_sups = scan_input(tmp_path / "fsdd_supervisions_all.jsonl.gz")
    by_recs = scan_input(tmp_path / "fsdd_recordings_all.jsonl.gz")
    assert by_sups.files == by_recs.files and len(by_recs.files) == 60

    # a CutSet: one cut per supervision
    cuts = lhotse.CutSet.from_manifests(recordings=recs, supervisions=sups).trim_to_supervisions()
    cuts.to_file(tmp_path / "cuts.jsonl.gz")
    ids = dict(zip(safe_keys([c.id for c in cuts]), [c.supervisions[0].id for c in cuts]))
    m = check_same_as_originals(
        ensure_prepared(tmp_path / "cuts.jsonl.gz", tmp_path / "cuts", progress=False), corpus, ids
    )
    assert m.source["manifest"] == "CutSet"

    # lhotse describes what apcscale would not read faithfully: refused, naming the recording
    recs.resample(16000).to_file(tmp_path / "resampled_recordings.jsonl.gz")
    with pytest.raises(
        PrepareError,
        match=r"recording 'rec-george-0' of resampled_recordings\.jsonl\.gz has "
        r"transforms \(.*\); apcscale reads the audio as it is stored",
    ):
        scan_input(tmp_path / "resampled_recordings.jsonl.gz")


def test_bad_kaldi_directories_fail_naming_the_line_and_bad_audio_is_skipped(corpus, tmp_path):
    data = kaldi_dir(corpus, tmp_path / "d")
    scp, segments, utt2spk = data / "wav.scp", data / "segments", data / "utt2spk"
    good_scp, good_segments = scp.read_text(), segments.read_text()

    scp.write_text(good_scp + "lonely-id\n")
    with pytest.raises(PrepareError, match=r"wav\.scp: line 13: expected '<recording-id> <path>'"):
        scan_input(data)
    scp.write_text(good_scp + "rec-x /data/raw.ark:1234\n")
    with pytest.raises(PrepareError, match=r"line 13: '/data/raw\.ark:1234' is an entry of a Kaldi archive"):
        scan_input(data)
    scp.write_text(good_scp)
    segments.write_text(good_segments + "utt-x rec-nowhere 0.0 1.0\n")
    with pytest.raises(PrepareError, match=r"segments: line 61: recording 'rec-nowhere' is not in wav\.scp"):
        scan_input(data)
    segments.write_text(good_segments + "utt-x rec-theo-0 0.5 zero\n")
    with pytest.raises(PrepareError, match=r"segments: line 61: start and end must be seconds"):
        scan_input(data)
    segments.write_text(good_segments + "utt-x rec-theo-0 0.0 0.5\n")
    with pytest.raises(PrepareError, match=r"utt2spk: no speaker for utterance 'utt-x'"):
        scan_input(data)

    # data problems are skipped and listed, as unreadable files are: a missing file, a span past the end
    missing = str(corpus["recordings"]["rec-theo-0"]).replace("rec-theo-0", "rec-gone")
    scp.write_text(good_scp + f"rec-gone {missing}\n")
    segments.write_text(
        good_segments + "utt-gone rec-gone 0 1\nutt-late rec-theo-0 30.0 31.0\nutt-whole rec-theo-1 0 -1\n"
    )
    utt2spk.write_text(utt2spk.read_text() + "utt-gone spk-x\nutt-late spk-theo\nutt-whole spk-theo\n")
    scanned = scan_input(data)
    assert len(scanned.files) == 61 and scanned.files[-1].key == "utt-whole" and scanned.files[-1].offset is None
    reasons = {s["reason"].split(":")[0]: s for s in scanned.skipped}
    assert set(reasons) == {"utterance utt-gone", "utterance utt-late"}
    assert "no such file" in reasons["utterance utt-gone"]["reason"]
    assert "lies outside the recording" in reasons["utterance utt-late"]["reason"]

    # without segments every recording is an utterance; without utt2spk speakers are unknown
    segments.unlink()
    utt2spk.unlink()
    scp.write_text(good_scp)
    scanned = scan_input(data)
    assert [f.key for f in scanned.files] == sorted(corpus["recordings"]) and {f.speaker for f in scanned.files} == {
        None
    }


def test_optional_backends_are_imported_only_when_used(corpus, tmp_path):
    """Preparing a Kaldi directory and setting up a run import neither lhotse nor a logger backend."""
    data = kaldi_dir(corpus, tmp_path / "d")
    code = (
        f"import sys; from apcscale.data.inputs import scan_input; import apcscale.train.run; "
        f"assert len(scan_input({str(data)!r}).files) == 60; "
        f"print(sorted(m for m in ('lhotse', 'tensorboardX', 'tensorboard', 'mlflow') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
