"""The errors the data layer raises, each with a message a user can act on."""

from __future__ import annotations


class DataError(Exception):
    """Base class of apcscale.data errors."""


class AudioSourceError(DataError):
    """No audio could be found or fetched (offline, bad path, checksum mismatch)."""


class PrepareError(DataError):
    """Feature preparation cannot proceed (no usable audio, bad options)."""


class ManifestError(DataError, ValueError):
    """A manifest is missing, unreadable or inconsistent."""


class ShardError(DataError):
    """A shard is missing, corrupt or does not match the manifest; the message names it.

    Takes a single message argument so that it survives being re-raised from a
    DataLoader worker process.
    """


class FeatureSizeError(ShardError):
    """A sample's feature matrix does not have the manifest's feature size."""


class UnknownSubsetError(DataError, KeyError):
    """A subset name the manifest does not have; the message lists those it has."""

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return str(self.args[0]) if self.args else ""
