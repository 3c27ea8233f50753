"""The labels a corpus carries, per probe task.

    task      label                                    held out             where it comes from
    digit     the spoken digit 0-9                     whole speakers       FSDD names <digit>_<speaker>_<index>.wav
    speaker   the speaker                              utterances of the    the file's speaker (FSDD and LibriSpeech
                                                       training speakers    names, speaker folders, Kaldi utt2spk, lhotse)
    gender    the speaker's gender                     whole speakers       speakers.json beside the audio (speechocean762)
    age       the speaker's age group (child, adult)   whole speakers       speakers.json ("age_group")

speakers.json (as /work/shared/data/speechocean762 has it) maps a speaker id to its fields
({"spk0001": {"gender": "male", "age_group": "child", "files": [...]}}); it is looked for in the
audio folder and the folder above it (for a `recordings/` folder given as the audio).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apcscale.data.audio import AudioFile

_FSDD = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)$")
SPEAKERS_JSON = "speakers.json"


class ProbeError(ValueError):
    """A probe that cannot run as asked (unknown task, labels the corpus lacks, ...): one line, naming the culprit."""


@dataclass(frozen=True)
class Task:
    name: str
    title: str  # as tables and plots name it
    held_out: str  # "speakers": whole speakers held out; "utterances": utterances of the training speakers
    needs: str  # what labels it reads, for errors


TASKS: dict[str, Task] = {
    "digit": Task("digit", "digit", "speakers", "FSDD file names <digit>_<speaker>_<index>.wav"),
    "speaker": Task(
        "speaker",
        "speaker",
        "utterances",
        "a speaker for each file (FSDD or LibriSpeech names, speaker folders, a Kaldi utt2spk, lhotse supervisions)",
    ),
    "gender": Task("gender", "gender", "speakers", f"a {SPEAKERS_JSON} beside the audio with a 'gender' per speaker"),
    "age": Task("age", "age group", "speakers", f"a {SPEAKERS_JSON} beside the audio with an 'age_group' per speaker"),
}


def parse_tasks(text: str | list[str] | None) -> list[str] | None:
    """Task names from "digit,speaker" (or a list of such); None: every task the corpus carries.
    An unknown name fails with the known ones."""
    if not text:
        return None
    names = [t.strip() for part in ([text] if isinstance(text, str) else text) for t in part.split(",") if t.strip()]
    for n in names:
        if n not in TASKS:
            import difflib

            close = difflib.get_close_matches(n, list(TASKS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ProbeError(f"unknown task '{n}'{hint}; tasks: {', '.join(TASKS)}")
    return list(dict.fromkeys(names))


def speaker_table(root: Path) -> tuple[Path | None, dict[str, dict[str, Any]]]:
    """(path, {speaker: fields}) of the speakers.json beside the audio, or (None, {})."""
    for folder in (root if root.is_dir() else root.parent, (root if root.is_dir() else root.parent).parent):
        path = folder / SPEAKERS_JSON
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise ProbeError(f"{path}: not readable JSON ({exc})") from None
            if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
                raise ProbeError(f"{path}: expected an object of speaker -> fields")
            return path, data
    return None, {}


def _file_speakers(table: dict[str, dict[str, Any]]) -> dict[str, str]:
    """File name -> speaker, from the speakers' "files" lists."""
    return {Path(str(name)).name: spk for spk, fields in table.items() for name in fields.get("files") or []}


def labels_for(task: str, files: list[AudioFile], root: Path) -> list[str | None]:
    """The label of each file for `task` (None where the file has none). Fails when the corpus
    carries no label for it."""
    spec = TASKS[task]
    if task == "digit":
        labels = [(m.group(1) if (m := _FSDD.match(Path(f.rel).stem)) else None) for f in files]
    elif task == "speaker":
        labels = [f.speaker for f in files]
    else:
        path, table = speaker_table(root)
        field = "gender" if task == "gender" else "age_group"
        by_file = _file_speakers(table)
        labels = []
        for f in files:
            spk = f.speaker if f.speaker in table else by_file.get(Path(f.rel).name)
            value = (table.get(spk) or {}).get(field) if spk is not None else None
            labels.append(None if value is None else str(value))
    if not any(label is not None for label in labels):
        raise ProbeError(f"task '{task}': {root} carries no {spec.title} labels (it needs {spec.needs})")
    if len({label for label in labels if label is not None}) < 2:
        raise ProbeError(f"task '{task}': {root} has a single {spec.title} class; a classifier needs two or more")
    return labels


def available_tasks(files: list[AudioFile], root: Path) -> list[str]:
    """The tasks whose labels the corpus carries (in TASKS order)."""
    out = []
    for name in TASKS:
        try:
            labels_for(name, files, root)
        except ProbeError:
            continue
        out.append(name)
    return out
