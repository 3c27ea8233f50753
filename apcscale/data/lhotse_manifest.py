"""A lhotse manifest as input: recordings with their supervisions, or a CutSet.

    apcscale prepare data/manifests/corpus_recordings_train.jsonl.gz prepared/corpus
    apcscale prepare data/cuts_train.jsonl.gz prepared/corpus

- a RecordingSet: its supervisions are read from the file of the same name with `recordings`
  replaced by `supervisions` (lhotse's recipes name them so); each supervision is an utterance,
  its speaker the supervision's. Without that file, each recording is an utterance of no known
  speaker. A SupervisionSet given instead finds its recordings the same way.
- a CutSet (MonoCut or MultiCut, with recordings): each cut is an utterance; its speaker is that
  of its supervisions when they agree.

lhotse (an optional extra: pip install apcscale[lhotse]) is imported only here, to read the
manifest; the audio is read by apcscale itself (soundfile), so only sources of type "file" are
read, and "command" sources when allow_pipes is given. Recordings with transforms (resampling,
speed or volume perturbation), with several sources, or with url/memory/shar sources, and
mixed or padding cuts, are refused with an error naming them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apcscale.data.audio import AudioFile
from apcscale.data.errors import PrepareError
from apcscale.data.inputs import Recording, Utterance, utterances_to_files


def _lhotse():
    try:
        import lhotse
    except ImportError as exc:
        raise PrepareError(
            "reading a lhotse manifest needs the lhotse package, which is not installed: "
            "pip install lhotse (or pip install apcscale[lhotse])"
        ) from exc
    return lhotse


def partner(path: Path, have: str, want: str) -> Path | None:
    """The file named like `path` with its last `have` replaced by `want`, if it exists."""
    name = path.name
    i = name.rfind(have)
    if i < 0:
        return None
    other = path.with_name(name[:i] + want + name[i + len(have) :])
    return other if other.is_file() else None


def _channels(value: Any) -> tuple[int, ...]:
    return tuple(int(c) for c in value) if isinstance(value, (list, tuple)) else (int(value),)


def _recording(rec, manifest: Path) -> Recording:
    where = f"recording {rec.id!r} of {manifest.name}"
    if rec.transforms:
        names = [t.get("name", "?") if isinstance(t, dict) else type(t).__name__ for t in rec.transforms]
        raise PrepareError(
            f"{where} has transforms ({', '.join(map(str, names))}); apcscale reads the audio "
            "as it is stored: give the manifest without them"
        )
    if len(rec.sources) != 1:
        raise PrepareError(
            f"{where} has {len(rec.sources)} audio sources (one file per channel); apcscale reads "
            "recordings stored in one file"
        )
    source = rec.sources[0]
    if source.type not in ("file", "command"):
        raise PrepareError(
            f"{where} has a source of type {source.type!r}; apcscale reads 'file' sources "
            "(and 'command' ones with --allow-pipes)"
        )
    return Recording(
        rec.id,
        str(source.source),
        where,
        command=source.type == "command",
        channel_ids=tuple(int(c) for c in source.channels),
    )


def read_lhotse(path: str | Path, *, allow_pipes: bool = False) -> tuple[list[AudioFile], list[dict], dict]:
    """(utterances as AudioFiles, skipped utterances, source record) of a lhotse manifest."""
    lhotse = _lhotse()
    path = Path(path)
    try:
        manifest = lhotse.load_manifest(path)
    except Exception as exc:  # noqa: BLE001 - lhotse raises ValueError, KeyError, JSON errors alike
        raise PrepareError(f"{path} is not a readable lhotse manifest ({type(exc).__name__}: {exc})") from exc
    record: dict[str, Any] = {"manifest": type(manifest).__name__}
    recordings: dict[str, Recording] = {}
    utterances: list[Utterance] = []
    if isinstance(manifest, (lhotse.RecordingSet, lhotse.SupervisionSet)):
        if isinstance(manifest, lhotse.RecordingSet):
            rec_set, sup_path = manifest, partner(path, "recordings", "supervisions")
            sup_set = lhotse.load_manifest(sup_path) if sup_path else None
        else:
            rec_path = partner(path, "supervisions", "recordings")
            if rec_path is None:
                raise PrepareError(
                    f"{path} holds supervisions; their recordings are expected in the file named "
                    "like it with 'recordings' for 'supervisions', which does not exist: give the "
                    "recordings manifest, or a CutSet"
                )
            rec_set, sup_set, sup_path = lhotse.load_manifest(rec_path), manifest, path
            path = rec_path
        for rec in rec_set:
            recordings[rec.id] = _recording(rec, path)
        if sup_set is not None:
            record["supervisions"] = str(sup_path)
            for sup in sup_set:
                if sup.recording_id not in recordings:
                    raise PrepareError(
                        f"supervision {sup.id!r} of {sup_path.name}: recording {sup.recording_id!r} "
                        f"is not in {path.name}"
                    )
                utterances.append(
                    Utterance(
                        sup.id,
                        sup.recording_id,
                        float(sup.start),
                        float(sup.start) + float(sup.duration),
                        sup.speaker,
                        _channels(sup.channel),
                    )
                )
        else:
            utterances = [Utterance(rid, rid) for rid in recordings]
    elif isinstance(manifest, lhotse.CutSet):
        from lhotse.cut import MonoCut, MultiCut

        for cut in manifest:
            if not isinstance(cut, (MonoCut, MultiCut)):
                raise PrepareError(
                    f"cut {cut.id!r} of {path.name} is a {type(cut).__name__}; apcscale reads cuts "
                    "of one recording (MonoCut, MultiCut)"
                )
            if not cut.has_recording:
                raise PrepareError(
                    f"cut {cut.id!r} of {path.name} has no recording (features only?); apcscale "
                    "prepares its features from the audio"
                )
            rec = cut.recording
            if rec.id not in recordings:
                recordings[rec.id] = _recording(rec, path)
            speakers = {s.speaker for s in cut.supervisions}
            speaker = speakers.pop() if len(speakers) == 1 else None
            utterances.append(
                Utterance(
                    cut.id,
                    rec.id,
                    float(cut.start),
                    float(cut.start) + float(cut.duration),
                    speaker,
                    _channels(cut.channel),
                )
            )
    else:
        raise PrepareError(
            f"{path} is a lhotse {type(manifest).__name__}; give recordings (with supervisions "
            "next to them) or a CutSet"
        )
    if not utterances:
        raise PrepareError(f"{path} lists no utterances")
    files, skipped = utterances_to_files(recordings, utterances, allow_pipes=allow_pipes)
    record["recordings"] = len(recordings)
    return files, skipped, record
