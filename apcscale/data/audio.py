"""Audio files: find them (wav/flac, recursively), name them, read them (or a span of them).

Reading goes through soundfile (libsndfile), not torchaudio.load (which needs
torchcodec). Every file gets an utterance key (the file stem when stems are
unique, else its relative path) and, when the naming tells it, a speaker:

    FSDD         {digit}_{speaker}_{index}.wav      -> speaker
    LibriSpeech  {speaker}-{chapter}-{utterance}.flac -> speaker
    otherwise    the parent folder, for files below the top folder

An AudioFile is one utterance: a whole file, or a span of one (a Kaldi segment, a lhotse
supervision or cut: `offset`), possibly read from a command's output (`command`, a Kaldi
wav.scp pipe) or from some of its channels (`select`); see apcscale.data.inputs.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

AUDIO_SUFFIXES = (".wav", ".flac")

_FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")
_LIBRI_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


@dataclass(frozen=True)
class AudioFile:
    """One utterance: an audio file found under a root folder, or a span of a listed recording
    (header information only)."""

    path: Path  # absolute
    rel: str  # posix path relative to the root (a listed recording: its path or command as written)
    key: str  # utterance key (unique, no dots or slashes)
    speaker: str | None
    sample_rate: int
    num_samples: int  # of the utterance (of the span, for a span)
    channels: int
    size: int  # bytes on disk (of a command's output)
    offset: int | None = None  # a span: its first sample in the file; None: the whole file
    command: str | None = None  # read the audio from this shell command's output instead of `path`
    select: tuple[int, ...] | None = None  # average these channels (default: all)

    @property
    def duration(self) -> float:
        return self.num_samples / self.sample_rate

    def how(self) -> dict:
        """read_audio's keyword arguments beyond the path (empty for a whole file)."""
        out: dict = {}
        if self.offset is not None:
            out.update(offset=self.offset, frames=self.num_samples)
        if self.command is not None:
            out["command"] = self.command
        if self.select is not None:
            out["select"] = list(self.select)
        return out


def find_audio(root: str | Path) -> list[Path]:
    """Audio files under `root` (recursive, following symlinks once), sorted by relative path."""
    root = Path(root)
    found: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or not name.lower().endswith(AUDIO_SUFFIXES):
                continue
            path = Path(dirpath) / name
            found.append((path.relative_to(root).as_posix(), path))
    found.sort(key=lambda item: item[0])
    return [path for _, path in found]


def speaker_of(rel: str) -> str | None:
    """The speaker a relative path names, or None when it cannot be told."""
    p = Path(rel)
    m = _FSDD_NAME.match(p.stem)
    if m:
        return m.group(2).lower()
    m = _LIBRI_NAME.match(p.stem)
    if m:
        return m.group(1)
    if len(p.parts) >= 2:
        return p.parent.name
    return None


def utterance_keys(rels: list[str]) -> list[str]:
    """Unique WebDataset-safe keys (no dots or slashes): stems if unique, else relative paths."""
    stems = [_UNSAFE.sub("_", Path(r).stem) for r in rels]
    if len(set(stems)) == len(stems):
        return stems
    keys = [_UNSAFE.sub("_", str(Path(r).with_suffix("")).replace("/", "__")) for r in rels]
    counts = Counter(keys)
    return [k if counts[k] == 1 else f"{k}-{hashlib.sha1(r.encode()).hexdigest()[:8]}" for k, r in zip(keys, rels)]


def safe_keys(ids: list[str]) -> list[str]:
    """WebDataset-safe unique keys for utterance ids (Kaldi, lhotse): unsafe characters replaced,
    clashes told apart by a hash of the id."""
    keys = [_UNSAFE.sub("_", i) or "_" for i in ids]
    counts = Counter(keys)
    return [k if counts[k] == 1 else f"{k}-{hashlib.sha1(i.encode()).hexdigest()[:8]}" for k, i in zip(keys, ids)]


def scan_audio(root: str | Path) -> tuple[list[AudioFile], list[dict[str, str]]]:
    """Header information of every audio file under `root`, and the files that cannot be opened.

    Returns (files, skipped) where skipped holds {"path": relative path, "reason": ...}.
    """
    root = Path(root).resolve()
    paths = find_audio(root)
    rels = [p.relative_to(root).as_posix() for p in paths]
    keys = utterance_keys(rels)
    files: list[AudioFile] = []
    skipped: list[dict[str, str]] = []
    for path, rel, key in zip(paths, rels, keys):
        try:
            info = sf.info(str(path))
            size = path.stat().st_size
        except Exception as exc:  # noqa: BLE001 - any unreadable file is skipped, with its reason
            skipped.append({"path": rel, "reason": f"unreadable: {_clean(exc, path, rel)}"})
            continue
        if info.frames <= 0 or info.samplerate <= 0:
            skipped.append({"path": rel, "reason": "empty: no audio samples"})
            continue
        files.append(
            AudioFile(
                path, rel, key, speaker_of(rel), int(info.samplerate), int(info.frames), int(info.channels), int(size)
            )
        )
    return files, skipped


def command_output(command: str, timeout: float = 600.0) -> bytes:
    """The stdout of a shell command (a Kaldi wav.scp pipe); an error names the command and its stderr."""
    proc = subprocess.run(command, shell=True, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise OSError(f"command exited with status {proc.returncode}: {command} {tail[0]}".strip())
    if not proc.stdout:
        raise OSError(f"command wrote no audio: {command}")
    return proc.stdout


def read_audio(
    path: str | Path,
    *,
    offset: int | None = None,
    frames: int | None = None,
    command: str | None = None,
    select: list[int] | None = None,
) -> tuple[np.ndarray, int]:
    """Mono float32 samples in [-1, 1] and the sample rate (channels are averaged).

    offset/frames: only that span (samples); command: the audio is that shell command's output;
    select: average only these channels.
    """
    source = io.BytesIO(command_output(command)) if command is not None else str(path)
    data, sr = sf.read(
        source, dtype="float32", always_2d=True, start=offset or 0, frames=-1 if frames is None else frames
    )
    if select is not None:
        data = data[:, list(select)]
    wave = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.ascontiguousarray(wave, dtype=np.float32), int(sr)


def _clean(exc: BaseException, path: Path, rel: str) -> str:
    """An error message without the machine-specific absolute path."""
    return str(exc).replace(str(path), rel).strip() or type(exc).__name__
