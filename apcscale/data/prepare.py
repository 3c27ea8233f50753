"""Audio -> log-Mel WebDataset shards, nested training subsets and a manifest.

    ensure_prepared(audio, out_dir) -> out_dir/manifest.json

`audio`: a folder of audio files, a Kaldi data directory or a lhotse manifest (apcscale.data.inputs).

Layout of out_dir:

    manifest.json              settings, statistics, splits, subsets, shard checksums, skipped files
    train/shard-000000.tar     WebDataset shards: per utterance {key}.npy (frames x n_mels, float16)
    train/shard-000000.json      and {key}.json (key, speaker, path, n_frames, duration, crc32);
    dev/shard-000000.tar       the .json next to each shard is its index (checksum, samples, statistics)

How the corpus is cut (all deterministic, a function of the file names, sizes and options only):

- dev split: whole speakers when every file's speaker is known (FSDD, LibriSpeech naming,
  speaker folders, Kaldi's utt2spk, lhotse's supervisions), taken in a hashed order until
  `dev_fraction` of the utterances is reached (at least one speaker, never all); otherwise
  utterances selected by a hash of their key.
- nested training subsets d0 (smallest) ... dK (all training audio): the training utterances in
  a hashed order; d_k is the shortest prefix holding total / 2^(K-k) frames, so each subset
  holds every smaller one and sizes step by ~2x. K is as large as `max_subsets` allows while
  d0 keeps at least `min_subset_frames`. Shards never straddle subset boundaries, so a subset
  is a list of whole shards.
- statistics: per-dimension mean and variance of the whole training split, accumulated in
  float64 from the stored (float16) values, so they normalise exactly what is streamed.

Shards are written by a process pool (all cores by default), each shard once: a rerun
verifies the shards present (index, plan hash and sha256 of the tar) and writes only the
missing or stale ones; a finished manifest with the same plan is reused as is. Tar members
carry fixed metadata (mtime 0, uid/gid 0, no user names, sorted members), so the same input
gives the same shards and the same manifest, byte for byte, whatever the number of workers.
Audio that cannot be read (or is too short for one frame), and audio that is mostly digital
silence (apcscale.data.screen: half or more of its 10 ms blocks exactly constant), is skipped
and listed under `skipped` in the manifest with the reason.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import json
import os
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from apcscale.data.audio import AudioFile, read_audio
from apcscale.data.errors import PrepareError
from apcscale.data.features import FeatureConfig
from apcscale.data.inputs import scan_input
from apcscale.data.screen import screen, silent_skips
from apcscale.utils.threads import torch_threads

FORMAT = "apcscale.features/1"
MANIFEST = "manifest.json"
SPLITS = ("train", "dev")
DEV_BY = ("auto", "speaker", "utterance")
_SHARD_FILE = re.compile(r"^shard-\d{6}\.(tar|json)$")


@dataclass(frozen=True)
class PrepareOptions:
    """How a corpus is cut; all of it is recorded in the manifest (`options`)."""

    dev_fraction: float = 0.05  # share of utterances held out (whole speakers when known)
    dev_by: str = "auto"  # auto: whole speakers when every file's speaker is known, else utterances
    shard_utterances: int = 256  # at most this many utterances per shard
    shard_frames: int = 250_000  # and at most this many frames (~40 MB at 80 Mel bins)
    min_subset_frames: int = 500  # the smallest nested subset holds at least this (5 s)
    max_subsets: int = 12  # at most this many nested subsets (2^11 = 2048x span)
    sample_rate: int | None = None  # feature sample rate; default: the most common in the input
    seed: int = 0  # salt of the hashed orders (dev choice, subset order)

    def __post_init__(self) -> None:
        if not 0.0 < self.dev_fraction < 1.0:
            raise PrepareError(f"dev_fraction must be in (0, 1), got {self.dev_fraction}")
        for name in ("shard_utterances", "shard_frames", "min_subset_frames", "max_subsets"):
            if int(getattr(self, name)) < 1:
                raise PrepareError(f"{name} must be positive, got {getattr(self, name)}")
        if self.dev_by not in DEV_BY:
            raise PrepareError(f"dev_by must be one of {', '.join(DEV_BY)}, got {self.dev_by!r}")
        if self.sample_rate is not None and int(self.sample_rate) < 1000:
            raise PrepareError(f"sample_rate must be at least 1000 Hz, got {self.sample_rate}")

    @classmethod
    def from_kwargs(cls, **kw: Any) -> PrepareOptions:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(kw) - names)
        if unknown:
            raise PrepareError(f"unknown preparation option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        return cls(**{k: v for k, v in kw.items() if v is not None})


# ----------------------------------------------------------------------------------------------
# the plan: which utterance goes to which split, subset and shard
# ----------------------------------------------------------------------------------------------


@dataclass
class ShardPlan:
    name: str  # e.g. "train/shard-000003.tar"
    split: str
    files: list[AudioFile]
    est_frames: int

    def digest(self, features: dict[str, Any]) -> str:
        items = [
            [f.rel, f.size, f.key, f.speaker, f.sample_rate, f.num_samples] + ([f.how()] if f.how() else [])
            for f in self.files
        ]
        return _sha256_json({"format": FORMAT, "name": self.name, "features": features, "items": items})

    def index_name(self) -> str:
        return self.name[: -len(".tar")] + ".json"


@dataclass
class Plan:
    features: FeatureConfig
    options: PrepareOptions
    split: dict[str, Any]  # how dev was chosen
    shards: list[ShardPlan]  # train shards in subset order, then dev shards
    subset_ends: list[int]  # subset k = the first subset_ends[k] train shards
    skipped: list[dict[str, str]]  # found but unusable (from the headers)
    files_found: int
    sample_rates: dict[str, int]

    @property
    def train_shards(self) -> list[ShardPlan]:
        return [s for s in self.shards if s.split == "train"]

    def digest(self) -> str:
        feats = self.features.to_dict()
        return _sha256_json(
            {
                "format": FORMAT,
                "features": feats,
                "options": asdict(self.options),
                "split": self.split,
                "shards": [s.digest(feats) for s in self.shards],
                "subset_ends": self.subset_ends,
                "skipped": self.skipped,
            }
        )


def _hash_order(seed: int, tag: str, name: str) -> str:
    return hashlib.sha256(f"{seed}:{tag}:{name}".encode()).hexdigest()


def choose_dev(
    files: list[AudioFile], fraction: float, seed: int, by: str = "auto"
) -> tuple[list[AudioFile], list[AudioFile], dict]:
    """(train, dev, description): by "speaker" (whole speakers; "auto" does so when every file's
    speaker is known) or by "utterance" (hashed utterances, every speaker in both splits)."""
    speakers = Counter(f.speaker for f in files)
    if by == "speaker" and (None in speakers or len(speakers) < 2):
        unknown = [f.rel for f in files if f.speaker is None][:3]
        raise PrepareError(
            "dev_by speaker needs at least 2 known speakers"
            + (f"; no speaker in the name of {', '.join(unknown)} ..." if unknown else "")
        )
    if by != "utterance" and None not in speakers and len(speakers) >= 2:
        order = sorted(speakers, key=lambda s: _hash_order(seed, "dev-speaker", s))
        chosen: list[str] = []
        count = 0
        for spk in order[:-1]:  # never all of them
            chosen.append(spk)
            count += speakers[spk]
            if count >= fraction * len(files):
                break
        dev_set = set(chosen)
        info = {"by": "speaker", "fraction": fraction, "speakers": sorted(dev_set)}
        dev = [f for f in files if f.speaker in dev_set]
        train = [f for f in files if f.speaker not in dev_set]
    else:
        scores = {f.key: int(_hash_order(seed, "dev-utterance", f.key), 16) / 16**64 for f in files}
        dev = [f for f in files if scores[f.key] < fraction]
        if not dev and len(files) >= 2:
            dev = [min(files, key=lambda f: scores[f.key])]
        dev_keys = {f.key for f in dev}
        train = [f for f in files if f.key not in dev_keys]
        unknown = [f.rel for f in files if f.speaker is None]
        reason = (
            "asked"
            if by == "utterance"
            else f"no speaker could be read from the names of {len(unknown)} of {len(files)} files (e.g. {unknown[0]})"
            if unknown
            else "only one speaker in the corpus"
        )
        info = {"by": "utterance", "fraction": fraction, "reason": reason}
    return train, dev, info


def nested_ends(frames: list[int], min_frames: int, max_subsets: int) -> list[int]:
    """Ends (utterance counts) of nested prefixes of ~2x growing frame totals, the last = all."""
    n, total = len(frames), sum(frames)
    if n == 0:
        return []
    k = 0
    while k + 1 < max_subsets and total / 2 ** (k + 1) >= min_frames and 2 ** (k + 1) <= n:
        k += 1
    cum = list(np.cumsum(frames, dtype=np.int64))
    ends: list[int] = []
    for i in range(k + 1):
        end = min(n, bisect.bisect_left(cum, total / 2 ** (k - i)) + 1)
        if ends and end <= ends[-1]:
            continue
        ends.append(end)
    ends[-1] = n
    return ends


def _chunk(files: list[AudioFile], frames: list[int], max_utts: int, max_frames: int) -> Iterator[tuple[list, int]]:
    cur: list[AudioFile] = []
    cur_frames = 0
    for f, t in zip(files, frames):
        if cur and (len(cur) >= max_utts or cur_frames + t > max_frames):
            yield cur, cur_frames
            cur, cur_frames = [], 0
        cur.append(f)
        cur_frames += t
    if cur:
        yield cur, cur_frames


def make_plan(
    files: list[AudioFile], skipped: list[dict[str, str]], opts: PrepareOptions, n_mels: int | None, files_found: int
) -> Plan:
    rates = Counter(f.sample_rate for f in files)
    sample_rate = int(opts.sample_rate or max(rates, key=lambda r: (rates[r], r)))
    cfg = FeatureConfig.for_rate(sample_rate, n_mels)
    usable, skipped = [], list(skipped)
    for f in files:
        if cfg.num_frames(f.num_samples, f.sample_rate) < 1:
            skipped.append(
                {
                    "path": f.rel,
                    "reason": f"too short: {f.num_samples} samples at {f.sample_rate} Hz, "
                    f"under one {cfg.frame_length_ms:g} ms window",
                }
            )
        else:
            usable.append(f)
    if len(usable) < 2:
        raise PrepareError(f"need at least 2 usable audio files, found {len(usable)} ({len(skipped)} skipped)")
    train, dev, split = choose_dev(usable, opts.dev_fraction, opts.seed, opts.dev_by)
    train.sort(key=lambda f: _hash_order(opts.seed, "subset-order", f.key))
    dev.sort(key=lambda f: f.key)
    est = {f.key: cfg.num_frames(f.num_samples, f.sample_rate) for f in usable}
    train_frames = [est[f.key] for f in train]
    ends = nested_ends(train_frames, opts.min_subset_frames, opts.max_subsets)

    shards: list[ShardPlan] = []
    subset_ends: list[int] = []
    start = 0
    for end in ends:
        block = train[start:end]
        for group, fr in _chunk(block, train_frames[start:end], opts.shard_utterances, opts.shard_frames):
            shards.append(ShardPlan(f"train/shard-{len(shards):06d}.tar", "train", group, fr))
        subset_ends.append(len(shards))
        start = end
    for i, (group, fr) in enumerate(_chunk(dev, [est[f.key] for f in dev], opts.shard_utterances, opts.shard_frames)):
        shards.append(ShardPlan(f"dev/shard-{i:06d}.tar", "dev", group, fr))
    skipped.sort(key=lambda s: s["path"])
    return Plan(cfg, opts, split, shards, subset_ends, skipped, files_found, {str(r): rates[r] for r in sorted(rates)})


# ----------------------------------------------------------------------------------------------
# writing one shard (runs in a worker process)
# ----------------------------------------------------------------------------------------------


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


class _Moments:
    """Per-dimension count, mean and M2, merged with Chan et al.'s parallel update (float64)."""

    def __init__(self, dim: int):
        self.n = 0
        self.mean = np.zeros(dim, dtype=np.float64)
        self.m2 = np.zeros(dim, dtype=np.float64)

    def add(self, n: int, mean: np.ndarray, m2: np.ndarray) -> None:
        if n == 0:
            return
        total = self.n + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta * delta * (self.n * n / total)
        self.n = total

    def add_frames(self, x: np.ndarray) -> None:
        x = x.astype(np.float64)
        mean = x.mean(axis=0)
        self.add(x.shape[0], mean, ((x - mean) ** 2).sum(axis=0))

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "mean": self.mean.tolist(), "m2": self.m2.tolist()}


def _worker_init() -> None:
    import signal

    import torch

    torch.set_num_threads(1)
    # Ctrl-C reaches the whole process group: the parent handles it (the pool is terminated,
    # shards already written stay and are reused); a traceback from every worker helps no one
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def write_shard(job: dict[str, Any]) -> dict[str, Any]:
    """Compute the features of one shard's files and write the tar and its index; returns the index."""
    from webdataset import TarWriter

    cfg = FeatureConfig.from_dict(job["features"])
    dtype = np.dtype(cfg.dtype)
    out = Path(job["out"])
    tar_path = out / job["name"]
    index_path = out / job["index"]
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tar_path.with_name(f"{tar_path.name}.tmp-{os.getpid()}")
    samples, skipped = [], []
    moments = _Moments(cfg.n_mels)
    with open(tmp, "wb") as stream:
        writer = TarWriter(stream, user="", group="", mode=0o644, encoder=False, mtime=0)
        for path, rel, key, speaker, *how in job["items"]:
            try:
                wave, sr = read_audio(path, **(how[0] if how else {}))
            except Exception as exc:  # noqa: BLE001 - skipped and listed, never fatal
                skipped.append(
                    {"path": rel, "reason": f"unreadable: {str(exc).replace(path, rel) or type(exc).__name__}"}
                )
                continue
            if wave.size == 0:
                skipped.append({"path": rel, "reason": "empty: no audio samples"})
                continue
            if not np.isfinite(wave).all():
                skipped.append({"path": rel, "reason": "corrupt: non-finite samples"})
                continue
            feats = cfg.compute(wave, sr).numpy().astype(dtype)
            if feats.shape[0] == 0:
                skipped.append(
                    {
                        "path": rel,
                        "reason": f"too short: {wave.size} samples at {sr} Hz, "
                        f"under one {cfg.frame_length_ms:g} ms window",
                    }
                )
                continue
            if not np.isfinite(feats).all():
                skipped.append({"path": rel, "reason": "corrupt: non-finite features"})
                continue
            npy = _npy_bytes(feats)
            duration = round(wave.size / sr, 6)
            meta = {
                "key": key,
                "speaker": speaker,
                "path": rel,
                "n_frames": int(feats.shape[0]),
                "duration": duration,
                "sample_rate": sr,
                "crc32": zlib.crc32(npy),
            }
            writer.write({"__key__": key, "npy": npy, "json": _json_bytes(meta)})
            moments.add_frames(feats)
            samples.append(
                {"key": key, "speaker": speaker, "path": rel, "n_frames": int(feats.shape[0]), "duration": duration}
            )
        writer.close()
    digest, size = file_sha256(tmp)
    os.replace(tmp, tar_path)
    index = {
        "format": FORMAT,
        "name": job["name"],
        "split": job["split"],
        "plan": job["plan"],
        "sha256": digest,
        "bytes": size,
        "samples": samples,
        "skipped": skipped,
        "stats": moments.to_dict(),
    }
    _write_json_atomic(index_path, index)
    return index


def file_sha256(path: str | Path) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _sha256_json(obj: Any) -> str:
    return hashlib.sha256(_json_bytes(obj)).hexdigest()


def _write_json_atomic(path: Path, obj: Any, indent: int | None = None) -> None:
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    text = json.dumps(obj, sort_keys=True, indent=indent) + "\n" if indent else json.dumps(obj, sort_keys=True)
    tmp.write_text(text)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# the driver
# ----------------------------------------------------------------------------------------------


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _verified_index(out: Path, shard: ShardPlan, plan_hash: str) -> dict[str, Any] | None:
    """The shard's index if the shard on disk is complete, from this plan, and intact."""
    index_path, tar_path = out / shard.index_name(), out / shard.name
    if not (index_path.is_file() and tar_path.is_file()):
        return None
    try:
        index = json.loads(index_path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if index.get("plan") != plan_hash or index.get("format") != FORMAT:
        return None
    if tar_path.stat().st_size != index.get("bytes") or file_sha256(tar_path)[0] != index.get("sha256"):
        return None
    return index


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One preparation of a folder at a time (others wait, then find it done)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with open(out / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _manifest_is_current(out: Path, plan_hash: str, root: str) -> bool:
    path = out / MANIFEST
    if not path.is_file():
        return False
    try:
        m = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if m.get("format") != FORMAT or m.get("plan") != plan_hash or m.get("source", {}).get("root") != root:
        return False
    for name, info in m.get("shards", {}).items():
        p = out / name
        if not p.is_file() or p.stat().st_size != info.get("bytes"):
            return False
    return True


def _console(progress: bool):
    from rich.console import Console

    return Console(stderr=True, quiet=not progress)


def ensure_prepared(
    audio_dir: str | Path,
    out_dir: str | Path,
    *,
    n_mels: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    source: dict[str, Any] | None = None,
    allow_pipes: bool = False,
    **prepare_options: Any,
) -> Path:
    """Prepare `audio_dir` into `out_dir` unless already done; returns out_dir/manifest.json.

    `audio_dir`: a folder of audio, a Kaldi data directory or a lhotse manifest (apcscale.data.inputs).
    A finished preparation with the same input (file names and sizes) and settings is reused;
    a partial one is resumed (shards already written and verified are kept); a different one is
    brought up to date (stale shards replaced). prepare_options: see `PrepareOptions`.
    `source`: extra fields for the manifest's source record (e.g. the corpus name).
    `allow_pipes`: run the commands of a Kaldi wav.scp (`... |`) or of lhotse command sources;
    refused by default.
    """
    opts = PrepareOptions.from_kwargs(**prepare_options)
    out = Path(out_dir).expanduser().resolve()
    scanned = scan_input(audio_dir, allow_pipes=allow_pipes)
    root, files, scan_skipped = scanned.root, scanned.files, scanned.skipped
    out.mkdir(parents=True, exist_ok=True)
    console = _console(progress)

    if not files:
        first = f"; first: {scan_skipped[0]['path']}: {scan_skipped[0]['reason']}" if scan_skipped else ""
        raise PrepareError(f"no readable audio in {scanned.describe()} ({len(scan_skipped)} unreadable{first})")
    found = len(files) + len(scan_skipped)
    files, silent = silent_skips(files, screen(files, out, workers=int(workers or _cpu_count()), console=console))
    plan = make_plan(files, scan_skipped + silent, opts, n_mels, files_found=found)
    plan_hash = plan.digest()
    if plan.split.get("by") == "utterance" and plan.split.get("reason") != "asked":
        console.print(
            f"[yellow]dev split by utterance, not by speaker[/yellow]: {plan.split['reason']}; dev "
            "utterances share their speakers with the training data (name files <speaker>/<file> or "
            "<speaker>_<id>.wav to hold out whole speakers)"
        )

    with _locked(out):
        if _manifest_is_current(out, plan_hash, str(root)):
            console.print(f"[green]up to date[/green]: {out / MANIFEST}")
            return out / MANIFEST
        feats = plan.features.to_dict()
        digests = {s.name: s.digest(feats) for s in plan.shards}
        indexes: dict[str, dict[str, Any]] = {}
        todo: list[ShardPlan] = []
        for shard in plan.shards:
            index = _verified_index(out, shard, digests[shard.name])
            if index is None:
                todo.append(shard)
            else:
                indexes[shard.name] = index
        _remove_stale(out, plan)
        if todo:
            indexes.update(_run_jobs(out, plan, todo, digests, workers, console))
        manifest = _assemble(plan, plan_hash, indexes, root, {**scanned.record(), **(source or {})})
        _write_json_atomic(out / MANIFEST, manifest, indent=1)
    if todo:
        console.print(
            f"wrote {len(todo)} of {len(plan.shards)} shards to {out} "
            f"({len(plan.shards) - len(todo)} already there and verified)"
        )
    else:
        console.print(f"all {len(plan.shards)} shards already there and verified; manifest rewritten")
    return out / MANIFEST


def _remove_stale(out: Path, plan: Plan) -> None:
    wanted = {s.name for s in plan.shards} | {s.index_name() for s in plan.shards}
    for split in SPLITS:
        folder = out / split
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            rel = f"{split}/{p.name}"
            if (_SHARD_FILE.match(p.name) and rel not in wanted) or ".tmp-" in p.name:
                p.unlink()


def _run_jobs(
    out: Path, plan: Plan, todo: list[ShardPlan], digests: dict[str, str], workers: int | None, console
) -> dict[str, dict[str, Any]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    feats = plan.features.to_dict()
    jobs = [
        {
            "out": str(out),
            "name": s.name,
            "index": s.index_name(),
            "split": s.split,
            "plan": digests[s.name],
            "features": feats,
            "items": [[str(f.path), f.rel, f.key, f.speaker] + ([f.how()] if f.how() else []) for f in s.files],
        }
        for s in sorted(todo, key=lambda s: -s.est_frames)
    ]  # largest first: better load balance
    sizes = {s.name: len(s.files) for s in todo}
    n_workers = max(1, min(int(workers or _cpu_count()), len(jobs)))
    import multiprocessing as mp

    if mp.current_process().daemon:  # e.g. inside a DataLoader worker: no child processes allowed
        n_workers = 1
    results: dict[str, dict[str, Any]] = {}
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("utterances"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, disable=console.quiet, transient=False) as bar:
        task = bar.add_task(
            f"log-Mel shards ({n_workers} worker{'s' if n_workers > 1 else ''})", total=sum(sizes.values())
        )
        if n_workers == 1:
            with torch_threads(1):
                for job in jobs:
                    index = write_shard(job)
                    results[index["name"]] = index
                    bar.advance(task, sizes[index["name"]])
        else:
            import torch

            ctx = mp.get_context("spawn") if torch.cuda.is_initialized() else mp.get_context()
            with ctx.Pool(n_workers, initializer=_worker_init) as pool:
                for index in pool.imap_unordered(write_shard, jobs):
                    results[index["name"]] = index
                    bar.advance(task, sizes[index["name"]])
    return results


def _summary(indexes: list[dict[str, Any]], fps: float) -> dict[str, Any]:
    frames = sum(sum(s["n_frames"] for s in ix["samples"]) for ix in indexes)
    seconds = sum(sum(s["duration"] for s in ix["samples"]) for ix in indexes)
    return {
        "shards": [ix["name"] for ix in indexes],
        "utterances": sum(len(ix["samples"]) for ix in indexes),
        "frames": frames,
        "hours": frames / (fps * 3600.0),
        "audio_seconds": round(seconds, 3),
    }


def _assemble(
    plan: Plan, plan_hash: str, indexes: dict[str, dict[str, Any]], root: Path, source: dict[str, Any] | None
) -> dict[str, Any]:
    cfg = plan.features
    fps = cfg.frames_per_second
    train = [indexes[s.name] for s in plan.shards if s.split == "train"]
    dev = [indexes[s.name] for s in plan.shards if s.split == "dev"]
    moments = _Moments(cfg.n_mels)
    for ix in train:
        st = ix["stats"]
        moments.add(st["n"], np.asarray(st["mean"], dtype=np.float64), np.asarray(st["m2"], dtype=np.float64))
    if moments.n == 0:
        raise PrepareError("no training audio could be read; see the skipped files")
    var = moments.m2 / moments.n
    subsets = {}
    for k, end in enumerate(plan.subset_ends):
        subsets[f"d{k}"] = _summary(train[:end], fps)
    splits = {}
    for name, group in (("train", train), ("dev", dev)):
        info = _summary(group, fps)
        info["speakers"] = len({s["speaker"] for ix in group for s in ix["samples"]})
        splits[name] = info
    skipped = sorted(plan.skipped + [s for ix in indexes.values() for s in ix["skipped"]], key=lambda s: s["path"])
    shards = {}
    for s in plan.shards:
        ix = indexes[s.name]
        shards[s.name] = {
            "split": s.split,
            "sha256": ix["sha256"],
            "bytes": ix["bytes"],
            "utterances": len(ix["samples"]),
            "frames": sum(x["n_frames"] for x in ix["samples"]),
        }
    src = {
        "kind": "audio-folder",
        "root": str(root),
        "files_found": plan.files_found,
        "utterances": splits["train"]["utterances"] + splits["dev"]["utterances"],
        "sample_rates": plan.sample_rates,
    }
    src.update(source or {})
    return {
        "format": FORMAT,
        "plan": plan_hash,
        "source": src,
        "features": cfg.to_dict(),
        "options": asdict(plan.options),
        "split": plan.split,
        "stats": {"frames": moments.n, "mean": moments.mean.tolist(), "var": var.tolist()},
        "splits": splits,
        "subsets": subsets,
        "shards": shards,
        "skipped": skipped,
    }
