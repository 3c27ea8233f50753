"""The manifest of a prepared corpus: typed access, checks with clear errors.

m = Manifest.load("prepared/manifest.json")      # or the folder holding it
m.feature_dim, m.mean, m.std                      # (F,), float64
m.subsets                                         # {"d0": {...}, ..., "dK": {...}}, small to large
m.subset("d3")["frames"], m.dev["frames"]
m.shard_paths(m.subset("d3")["shards"])
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from apcscale.data.errors import ManifestError, ShardError, UnknownSubsetError
from apcscale.data.features import FeatureConfig
from apcscale.data.prepare import FORMAT, MANIFEST, file_sha256

_REQUIRED = ("format", "features", "stats", "splits", "subsets", "shards", "skipped", "source")
STD_FLOOR = 1e-5


class Manifest:
    def __init__(self, data: dict[str, Any], path: Path):
        self.data = data
        self.path = path

    # -------------------------------------------------------------------------------- loading

    @classmethod
    def load(cls, path: str | Path) -> Manifest:
        p = Path(path).expanduser()
        if p.is_dir():
            p = p / MANIFEST
        if not p.is_file():
            raise ManifestError(
                f"manifest not found: {p} (make one with: python -m apcscale.recipes.prepare AUDIO_DIR OUT_DIR)"
            )
        try:
            data = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"manifest {p} is not readable JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ManifestError(f"manifest {p} does not hold a JSON object")
        if data.get("format") != FORMAT:
            raise ManifestError(
                f"manifest {p} has format {data.get('format')!r}, expected {FORMAT!r} "
                "(prepare the audio again with this version)"
            )
        missing = [k for k in _REQUIRED if k not in data]
        if missing:
            raise ManifestError(f"manifest {p} lacks field(s) {', '.join(missing)}")
        m = cls(data, p.resolve())
        m._check()
        return m

    def _check(self) -> None:
        f = self.feature_dim
        for name in ("mean", "var"):
            v = self.data["stats"].get(name)
            if not isinstance(v, list) or len(v) != f:
                raise ManifestError(f"manifest {self.path}: stats.{name} must be a list of {f} numbers")
        if not self.subsets:
            raise ManifestError(f"manifest {self.path} lists no training subsets")
        for name, info in list(self.subsets.items()) + [("dev", self.dev)]:
            for shard in info.get("shards", []):
                if shard not in self.shards:
                    raise ManifestError(f"manifest {self.path}: {name} names shard {shard}, which is not listed")

    # ----------------------------------------------------------------------------- properties

    @property
    def root(self) -> Path:
        """The folder the shard paths are relative to."""
        return self.path.parent

    @property
    def features(self) -> dict[str, Any]:
        return dict(self.data["features"])

    @property
    def feature_config(self) -> FeatureConfig:
        return FeatureConfig.from_dict(self.data["features"])

    @property
    def feature_dim(self) -> int:
        return int(self.data["features"]["n_mels"])

    @property
    def frames_per_second(self) -> float:
        return float(self.data["features"].get("frames_per_second", 100.0))

    @cached_property
    def mean(self) -> np.ndarray:
        return np.asarray(self.data["stats"]["mean"], dtype=np.float64)

    @cached_property
    def var(self) -> np.ndarray:
        return np.asarray(self.data["stats"]["var"], dtype=np.float64)

    @property
    def std(self) -> np.ndarray:
        """sqrt(var), floored at 1e-5 so that normalising never divides by zero."""
        return np.sqrt(np.maximum(self.var, STD_FLOOR**2))

    @property
    def subsets(self) -> dict[str, dict[str, Any]]:
        """{name: {shards, utterances, frames, hours, audio_seconds}} from the smallest to the largest."""
        subs = self.data["subsets"]
        return {k: subs[k] for k in sorted(subs, key=lambda k: (int(subs[k]["frames"]), k))}

    @property
    def subset_names(self) -> list[str]:
        return list(self.subsets)

    @property
    def largest_subset(self) -> str:
        return self.subset_names[-1]

    @property
    def smallest_subset(self) -> str:
        return self.subset_names[0]

    def subset(self, name: str | None = None) -> dict[str, Any]:
        """A training subset's record (default: the largest); unknown names list the known ones."""
        name = name or self.largest_subset
        subs = self.subsets
        if name not in subs:
            listing = ", ".join(f"{k} ({v['frames']:,} frames, {v['hours']:.3g} h)" for k, v in subs.items())
            raise UnknownSubsetError(f"no subset {name!r} in {self.path}; it has {listing}")
        return subs[name]

    @property
    def splits(self) -> dict[str, dict[str, Any]]:
        return self.data["splits"]

    @property
    def train(self) -> dict[str, Any]:
        return self.data["splits"]["train"]

    @property
    def dev(self) -> dict[str, Any]:
        return self.data["splits"]["dev"]

    @property
    def shards(self) -> dict[str, dict[str, Any]]:
        return self.data["shards"]

    @property
    def skipped(self) -> list[dict[str, str]]:
        return list(self.data["skipped"])

    @property
    def source(self) -> dict[str, Any]:
        return dict(self.data["source"])

    # --------------------------------------------------------------------------------- shards

    def shard_path(self, name: str) -> Path:
        return self.root / name

    def shard_paths(self, names: list[str]) -> list[Path]:
        return [self.shard_path(n) for n in names]

    def shard_index(self, name: str) -> dict[str, Any]:
        """The index written beside a shard (its samples with key, speaker, path, n_frames, duration)."""
        p = self.shard_path(name[: -len(".tar")] + ".json")
        try:
            return json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ShardError(f"index of shard {self.shard_path(name)} is missing or unreadable ({p}): {exc}") from exc

    def samples(self, which: str) -> list[dict[str, Any]]:
        """Sample records of a subset name or split ("train", "dev"), in shard order."""
        info = self.splits[which] if which in self.splits else self.subset(which)
        return [s for name in info["shards"] for s in self.shard_index(name)["samples"]]

    def keys(self, which: str) -> list[str]:
        return [s["key"] for s in self.samples(which)]

    def verify(self, names: list[str] | None = None, *, deep: bool = False) -> None:
        """Check that shards exist with their recorded size (and sha256 when deep); ShardError names them."""
        problems = []
        for name in names if names is not None else list(self.shards):
            info, p = self.shards[name], self.shard_path(name)
            if not p.is_file():
                problems.append(f"{p}: missing")
            elif p.stat().st_size != info["bytes"]:
                problems.append(f"{p}: {p.stat().st_size} bytes, the manifest says {info['bytes']}")
            elif deep and file_sha256(p)[0] != info["sha256"]:
                problems.append(f"{p}: sha256 differs from the manifest (corrupt)")
        if problems:
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise ShardError("bad shard(s): " + "; ".join(problems[:5]) + more)

    def __repr__(self) -> str:
        return (
            f"Manifest({self.path}, {self.feature_dim} dims, {len(self.subsets)} subsets, "
            f"train {self.train['hours']:.3g} h, dev {self.dev['hours']:.3g} h)"
        )
