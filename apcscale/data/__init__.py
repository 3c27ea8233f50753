"""Speech data: audio -> log-Mel WebDataset shards with nested subsets -> a streaming LightningDataModule.

audio = resolve_audio()                           # --audio DIR, $APCSCALE_AUDIO, or FSDD (cached)
manifest = ensure_prepared(audio, "prepared/")    # shards + manifest.json (reused when current)
dm = APCDataModule(manifest, subset="d3", crop_frames=256, batch_size=32)
"""

from apcscale.data.errors import (
    AudioSourceError,
    DataError,
    FeatureSizeError,
    ManifestError,
    PrepareError,
    ShardError,
    UnknownSubsetError,
)
from apcscale.data.features import FeatureConfig
from apcscale.data.manifest import Manifest
from apcscale.data.prepare import PrepareOptions, ensure_prepared
from apcscale.data.source import resolve_audio

__all__ = [
    "APCDataModule",
    "AudioSourceError",
    "DataError",
    "FeatureConfig",
    "FeatureSizeError",
    "Manifest",
    "ManifestError",
    "PrepareError",
    "PrepareOptions",
    "ShardError",
    "UnknownSubsetError",
    "ensure_prepared",
    "resolve_audio",
]


def __getattr__(name: str):
    # the streaming module imports Lightning: only load it when asked for (prepare does not need it)
    if name == "APCDataModule":
        from apcscale.data.stream import APCDataModule

        return APCDataModule
    raise AttributeError(f"module 'apcscale.data' has no attribute {name!r}")
