"""What can be prepared: a folder of audio, a Kaldi data directory, or a lhotse manifest.

    scanned = scan_input(path, allow_pipes=False)    # .kind, .root, .files (AudioFile), .skipped

- a folder holding `wav.scp`: a Kaldi data directory (apcscale.data.kaldi): wav.scp, and
  optionally segments and utt2spk;
- a file named *.jsonl, *.jsonl.gz, *.json or *.json.gz: a lhotse manifest (recordings, with
  their supervisions found by name; or a CutSet), read with lhotse (apcscale.data.lhotse_manifest);
- any other folder: its .wav/.flac files, searched recursively (apcscale.data.audio).

Kaldi and lhotse both describe *recordings* (a file, or a command whose output is the audio)
and *utterances* (a recording, or a span of one, with a speaker): `utterances_to_files` turns
those into the AudioFile list the preparation plans with, the same as for a folder. Relative
paths are taken from the current folder, as Kaldi and lhotse do. A command is run only when
`allow_pipes` is given. Malformed or unsupported descriptions fail with an error naming the file
and line (or the recording); a recording that is missing or unreadable, and a span outside its
recording, are skipped and listed in the manifest with the reason, as unreadable files are.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from apcscale.data.audio import AudioFile, command_output, safe_keys, scan_audio
from apcscale.data.errors import PrepareError

LHOTSE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz")
SPAN_TOLERANCE_S = 0.5  # a span may end this far past its recording's end (clipped), as Kaldi's extract-segments allows
HOW_TO_ALLOW_PIPES = (
    "apcscale runs no command from a data description unless told to: pass --allow-pipes to "
    "`apcscale prepare` (ensure_prepared(..., allow_pipes=True)), then train on the manifest it writes"
)


@dataclass(frozen=True)
class Recording:
    """A recording as a data description lists it."""

    id: str
    source: str  # a path as written (relative: from the current folder), or a shell command
    where: str  # "wav.scp line 3", "recording 'x' of cuts.jsonl.gz": for messages
    command: bool = False
    channel_ids: tuple[int, ...] | None = None  # the channel ids the file holds, in order (lhotse)


@dataclass(frozen=True)
class Utterance:
    """An utterance: a recording, or the span [start, end) s of one (end None: to the recording's end)."""

    id: str
    recording: str
    start: float = 0.0
    end: float | None = None
    speaker: str | None = None
    channels: tuple[int, ...] | None = None  # channel ids to average (default: all)


@dataclass
class Scanned:
    kind: str  # audio-folder | kaldi | lhotse
    root: Path  # the folder, the Kaldi data directory, or the manifest file
    files: list[AudioFile]
    skipped: list[dict[str, str]]
    extra: dict = field(default_factory=dict)  # more for the manifest's source record

    def describe(self) -> str:
        return {
            "audio-folder": "the audio folder",
            "kaldi": "the Kaldi data directory",
            "lhotse": "the lhotse manifest",
        }[self.kind] + f" {self.root}"

    def record(self) -> dict:
        return {"kind": self.kind, **self.extra}


def is_lhotse_manifest(path: str | Path) -> bool:
    return str(path).endswith(LHOTSE_SUFFIXES)


def input_kind(path: str | Path) -> str:
    """audio-folder, kaldi or lhotse, by what `path` is (see the module doc)."""
    p = Path(path).expanduser()
    if p.is_dir():
        return "kaldi" if (p / "wav.scp").is_file() else "audio-folder"
    if p.is_file() and is_lhotse_manifest(p):
        return "lhotse"
    if p.is_file():
        raise PrepareError(
            f"{p} is a file, and not a lhotse manifest (*{', *'.join(LHOTSE_SUFFIXES)}): give a folder "
            "of audio, a Kaldi data directory (holding wav.scp) or a lhotse manifest"
        )
    raise PrepareError(f"audio not found: {p} (a folder of audio, a Kaldi data directory or a lhotse manifest)")


def scan_input(path: str | Path, *, allow_pipes: bool = False) -> Scanned:
    """The utterances of a folder of audio, a Kaldi data directory or a lhotse manifest."""
    kind = input_kind(path)
    root = Path(path).expanduser().resolve()
    if kind == "kaldi":
        from apcscale.data.kaldi import read_kaldi_dir

        files, skipped, extra = read_kaldi_dir(root, allow_pipes=allow_pipes)
    elif kind == "lhotse":
        from apcscale.data.lhotse_manifest import read_lhotse

        files, skipped, extra = read_lhotse(root, allow_pipes=allow_pipes)
    else:
        files, skipped = scan_audio(root)
        extra = {}
    return Scanned(kind, root, files, skipped, extra)


def _header(rec: Recording) -> tuple[Path, int, int, int, int]:
    """(absolute path, sample rate, samples, channels, bytes) of a recording; OSError/RuntimeError if unreadable."""
    if rec.command:
        data = command_output(rec.source)
        info = sf.info(io.BytesIO(data))
        return Path.cwd(), int(info.samplerate), int(info.frames), int(info.channels), len(data)
    path = Path(rec.source).expanduser().absolute()
    if not path.is_file():
        raise OSError(f"no such file: {rec.source}")
    info = sf.info(str(path))
    return path, int(info.samplerate), int(info.frames), int(info.channels), path.stat().st_size


def utterances_to_files(
    recordings: dict[str, Recording], utterances: list[Utterance], *, allow_pipes: bool = False
) -> tuple[list[AudioFile], list[dict[str, str]]]:
    """AudioFiles (one per utterance, in the given order) and the utterances skipped, with the reason."""
    for utt in utterances:
        rec = recordings[utt.recording]
        if rec.command and not allow_pipes:
            shown = rec.source if len(rec.source) <= 80 else rec.source[:77] + "..."
            raise PrepareError(
                f"{rec.where}: recording {rec.id!r} is read through a command ({shown} |); " + HOW_TO_ALLOW_PIPES
            )
    headers: dict[str, tuple | str] = {}
    keys = safe_keys([u.id for u in utterances])
    files: list[AudioFile] = []
    skipped: list[dict[str, str]] = []
    for utt, key in zip(utterances, keys):
        rec = recordings[utt.recording]
        if rec.id not in headers:
            try:
                headers[rec.id] = _header(rec)
            except Exception as exc:  # noqa: BLE001 - any unreadable recording is skipped, with its reason
                headers[rec.id] = f"unreadable: {str(exc).strip() or type(exc).__name__}"
        head = headers[rec.id]
        shown = rec.source + (" |" if rec.command else "")
        span = f"{utt.start:g}-{'end' if utt.end is None else f'{utt.end:g}'} s"
        rel = shown if utt.start == 0 and utt.end is None else f"{shown}@{span.replace(' ', '')}"
        if isinstance(head, str):
            skipped.append({"path": rel, "reason": f"utterance {utt.id}: {head}"})
            continue
        path, sr, total, channels, size = head
        first = round(utt.start * sr)
        last = total if utt.end is None else round(utt.end * sr)
        if last > total + SPAN_TOLERANCE_S * sr or first >= total:
            skipped.append(
                {
                    "path": rel,
                    "reason": f"utterance {utt.id}: the span {span} lies outside the recording ({total / sr:g} s)",
                }
            )
            continue
        last = min(last, total)
        if last <= first:
            skipped.append({"path": rel, "reason": f"utterance {utt.id}: empty span {span}"})
            continue
        select = None
        if utt.channels is not None:
            ids = rec.channel_ids or tuple(range(channels))
            unknown = [c for c in utt.channels if c not in ids]
            if unknown:
                skipped.append(
                    {
                        "path": rel,
                        "reason": f"utterance {utt.id}: channel(s) {unknown} not in the recording's {list(ids)}",
                    }
                )
                continue
            if sorted(utt.channels) != sorted(ids):
                select = tuple(ids.index(c) for c in utt.channels)
        whole = first == 0 and last == total
        files.append(
            AudioFile(
                path,
                rel,
                key,
                utt.speaker,
                sr,
                last - first,
                channels,
                size,
                offset=None if whole else first,
                command=rec.source if rec.command else None,
                select=select,
            )
        )
    return files, skipped
