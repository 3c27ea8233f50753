"""A Kaldi data directory as input: wav.scp, and optionally segments and utt2spk.

    wav.scp    <recording-id> <path>              a plain audio file (wav, flac; relative: from the current folder)
               <recording-id> <command> |         a pipe (e.g. `sox x.sph -t wav - |`): refused unless allow_pipes
    segments   <utterance-id> <recording-id> <start s> <end s>     (end -1: to the recording's end)
    utt2spk    <utterance-id> <speaker-id>

Without segments each recording is one utterance (its id the recording id). With utt2spk every
utterance must have a speaker (as Kaldi's validate_data_dir.sh requires), and the dev split holds
out whole speakers; without it, speakers are unknown and dev is held out by utterance. Other files
(text, spk2utt, feats.scp, ...) are not read. Archive entries (`x.ark:123`) are not supported.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from apcscale.data.audio import AudioFile
from apcscale.data.errors import PrepareError
from apcscale.data.inputs import Recording, Utterance, utterances_to_files

_ARCHIVE = re.compile(r"\.ark:\d+$")


def _lines(path: Path) -> Iterator[tuple[int, list[str], str]]:
    """(line number, fields, the rest after the first field) of each non-empty line."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise PrepareError(f"{path}: not readable as text ({exc})") from exc
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            head_rest = line.split(maxsplit=1)
            yield number, line.split(), head_rest[1].strip() if len(head_rest) > 1 else ""


def read_wav_scp(path: Path) -> dict[str, Recording]:
    recordings: dict[str, Recording] = {}
    for number, fields, rest in _lines(path):
        where = f"{path.name} line {number}"
        if len(fields) < 2:
            raise PrepareError(
                f"{path}: line {number}: expected '<recording-id> <path>' or "
                f"'<recording-id> <command> |', got {' '.join(fields)!r}"
            )
        rid = fields[0]
        if rid in recordings:
            raise PrepareError(f"{path}: line {number}: recording id {rid!r} listed twice")
        if rest.endswith("|"):
            recordings[rid] = Recording(rid, rest[:-1].strip(), where, command=True)
        elif _ARCHIVE.search(rest):
            raise PrepareError(
                f"{path}: line {number}: {rest!r} is an entry of a Kaldi archive, which apcscale does "
                "not read; write the audio out as files (e.g. wav-copy scp:wav.scp ark,scp:...) first"
            )
        else:
            recordings[rid] = Recording(rid, rest, where)
    if not recordings:
        raise PrepareError(f"{path} lists no recordings")
    return recordings


def read_segments(path: Path, recordings: dict[str, Recording]) -> list[Utterance]:
    out: list[Utterance] = []
    seen: set[str] = set()
    for number, fields, _ in _lines(path):
        if len(fields) != 4:
            raise PrepareError(
                f"{path}: line {number}: expected '<utterance-id> <recording-id> <start> <end>', "
                f"got {' '.join(fields)!r}"
            )
        uid, rid, start_text, end_text = fields
        try:
            start, end = float(start_text), float(end_text)
        except ValueError:
            raise PrepareError(
                f"{path}: line {number}: start and end must be seconds, got {start_text!r} and {end_text!r}"
            ) from None
        if uid in seen:
            raise PrepareError(f"{path}: line {number}: utterance id {uid!r} listed twice")
        if rid not in recordings:
            raise PrepareError(f"{path}: line {number}: recording {rid!r} is not in wav.scp")
        if start < 0 or (end != -1 and end <= start):
            raise PrepareError(
                f"{path}: line {number}: a segment needs 0 <= start < end (or end -1), got {start_text} {end_text}"
            )
        seen.add(uid)
        out.append(Utterance(uid, rid, start, None if end == -1 else end))
    return out


def read_utt2spk(path: Path) -> dict[str, str]:
    out: dict[str, str] = {}
    for number, fields, _ in _lines(path):
        if len(fields) != 2:
            raise PrepareError(
                f"{path}: line {number}: expected '<utterance-id> <speaker-id>', got {' '.join(fields)!r}"
            )
        out[fields[0]] = fields[1]
    return out


def read_kaldi_dir(data_dir: str | Path, *, allow_pipes: bool = False) -> tuple[list[AudioFile], list[dict], dict]:
    """(utterances as AudioFiles, skipped utterances, source record) of a Kaldi data directory."""
    data_dir = Path(data_dir)
    recordings = read_wav_scp(data_dir / "wav.scp")
    segments = data_dir / "segments"
    if segments.is_file():
        utterances = read_segments(segments, recordings)
    else:
        utterances = [Utterance(rid, rid) for rid in recordings]
    utt2spk = data_dir / "utt2spk"
    if utt2spk.is_file():
        speakers = read_utt2spk(utt2spk)
        missing = [u.id for u in utterances if u.id not in speakers]
        if missing:
            raise PrepareError(
                f"{utt2spk}: no speaker for utterance {missing[0]!r}"
                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                + "; every utterance needs one (Kaldi's utils/fix_data_dir.sh drops those without)"
            )
        utterances = [Utterance(u.id, u.recording, u.start, u.end, speakers[u.id]) for u in utterances]
    files, skipped = utterances_to_files(recordings, utterances, allow_pipes=allow_pipes)
    record = {"recordings": len(recordings), "segments": segments.is_file(), "utt2spk": utt2spk.is_file()}
    return files, skipped, record
