"""Screening audio before it is planned: files that are mostly digital silence (or any constant).

A recording that is mostly exact zeros (a muted channel, a padded export, a placeholder) has
no speech to learn from, yet its frames count as training data and pull the normalisation:
one 10-minute all-zero wav among 300 FSDD files was 83% of the training frames and moved the
manifest's per-dimension mean from 9.7..15.6 to -11.4..-10.4.

The measure: the share of a file's 10 ms blocks (the feature hop) in which every sample is
the same value. A block of real speech or of recorded room noise is never exactly constant;
digital silence (or a DC offset, a clipped rail) always is. A file with at least
`SILENT_FRACTION` of such blocks is skipped, with the reason, like an unreadable file.
Measured on every file of the two corpora the tests and docs use: FSDD (3,000 files) at most
0.051, speechocean762 (2,240 files) at most 0.126 (median 0 in both); an all-zero file is 1.0.

Screening reads every utterance once (a whole file, or the span a Kaldi segment or a lhotse
supervision names); the result is cached in the output folder (`screen.json`, keyed by the
utterance and its file's path, size and sample count, as the plan identifies them), so a rerun
on an unchanged corpus reads no audio, makes the same plan (the skip list is part of the plan's
hash) and reuses every shard. Audio read from a shell command (a Kaldi wav.scp pipe) is not
screened: the command would run once more for every utterance.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from apcscale.data.audio import AudioFile, read_audio

#: a file with at least this share of exactly constant 10 ms blocks is skipped as silent
SILENT_FRACTION = 0.5
CACHE = "screen.json"
VERSION = 2


def constant_fraction(wave: np.ndarray, sample_rate: int) -> float:
    """Share of the 10 ms blocks of `wave` in which every sample is the same value (1.0 if none)."""
    hop = max(1, int(sample_rate) // 100)
    n = wave.size // hop
    if n == 0:
        return 1.0 if wave.size == 0 or float(wave.max()) == float(wave.min()) else 0.0
    blocks = np.asarray(wave[: n * hop]).reshape(n, hop)
    return float((blocks.max(axis=1) == blocks.min(axis=1)).mean())


def _measure(item: tuple[str, dict]) -> float | None:
    path, how = item
    try:
        wave, sr = read_audio(path, **how)
    except Exception:  # noqa: BLE001 - unreadable audio is skipped later, with its own reason
        return None
    return constant_fraction(wave, sr)


def _key(f: AudioFile) -> str:
    return f"{f.rel}:{f.size}:{f.num_samples}:{f.sample_rate}:{f.offset}:{f.select}"


def screen(files: list[AudioFile], out: Path, workers: int = 1, console=None) -> dict[str, float]:
    """utterance key -> constant fraction of every utterance not read from a command (read once;
    cached in out/screen.json)."""
    cache_path = out / CACHE
    try:
        cached = json.loads(cache_path.read_text())
        entries = cached.get("files", {}) if cached.get("version") == VERSION else {}
    except (OSError, ValueError, AttributeError):
        entries = {}
    result: dict[str, float] = {}
    todo: list[AudioFile] = []
    for f in files:
        if f.command is not None:
            continue
        hit = entries.get(f.key)
        if isinstance(hit, list) and len(hit) == 2 and hit[0] == _key(f) and hit[1] is not None:
            result[f.key] = float(hit[1])
        else:
            todo.append(f)
    if not todo:
        return result
    items = [(str(f.path), f.how()) for f in todo]
    if console is not None:
        console.print(f"screening {len(todo)} utterances for digital silence")
    measured = _map(items, workers)
    for f, value in zip(todo, measured):
        if value is not None:
            result[f.key] = value
    keep = {f.key: [_key(f), result[f.key]] for f in files if f.key in result}
    tmp = cache_path.with_name(f".{CACHE}.tmp-{os.getpid()}")
    try:
        tmp.write_text(json.dumps({"version": VERSION, "files": keep}, sort_keys=True))
        os.replace(tmp, cache_path)
    except OSError:
        pass  # a cache only: the next run screens again
    return result


def _map(items: list[tuple[str, dict]], workers: int) -> list[float | None]:
    """Measure every item on `workers` threads: reading (libsndfile) and the block test (numpy)
    release the GIL, and threads need no fork (a fork of a process that runs Ray or OpenMP
    threads can deadlock in the child)."""
    from concurrent.futures import ThreadPoolExecutor

    n = max(1, min(int(workers), len(items)))
    if n == 1:
        return [_measure(item) for item in items]
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(_measure, items))


def silent_skips(files: list[AudioFile], fractions: dict[str, float]) -> tuple[list[AudioFile], list[dict[str, Any]]]:
    """(files kept, skip records) for the files at or over SILENT_FRACTION."""
    kept, skipped = [], []
    for f in files:
        frac = fractions.get(f.key)
        if frac is not None and frac >= SILENT_FRACTION:
            which = "" if f.offset is None else f"utterance {f.key}: "  # a span of a recording
            skipped.append(
                {
                    "path": f.rel,
                    "reason": f"{which}silent: {frac:.0%} of its 10 ms blocks are digitally "
                    f"constant (skipped from {SILENT_FRACTION:.0%}; see docs/data.md)",
                }
            )
        else:
            kept.append(f)
    return kept, skipped


__all__ = ["SILENT_FRACTION", "constant_fraction", "screen", "silent_skips"]
