"""Where the audio comes from: a folder you name, or FSDD downloaded once and verified.

    resolve_audio(audio=None) -> folder of audio

1. `audio` when given (a folder of audio or a Kaldi data directory; a lhotse manifest file;
   "fsdd" for the cached FSDD; "librispeech:SUBSET" for a LibriSpeech subset fetched through
   torchaudio.datasets),
2. else the environment variable APCSCALE_AUDIO,
3. else FSDD from the cache ($APCSCALE_CACHE, default ~/.cache/apcscale),
4. else FSDD downloaded once from the public archive of Jakobovski/free-spoken-digit-dataset at
   commit 26eb9aa ($APCSCALE_FSDD_URL overrides the address; file:// works), its recordings/
   extracted and verified against a pinned content checksum.

Offline with no audio given, AudioSourceError says how to supply audio.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

from apcscale.data.errors import AudioSourceError
from apcscale.data.inputs import LHOTSE_SUFFIXES, is_lhotse_manifest
from apcscale.utils.log import get_logger

_log = get_logger(__name__)

FSDD_COMMIT = "26eb9aa"
FSDD_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{FSDD_COMMIT}.tar.gz"
# sha256 over the sorted lines "{file name}\t{sha256 of the file}\n" of recordings/*.wav at that commit
FSDD_RECORDINGS_SHA256 = "8dac6ce326e419e9fcfadedf2e4a67d6c08a40968c34bb8fa2b4e27d74753d5a"
FSDD_FILES = 3000

HOW_TO_SUPPLY = (
    "Supply audio yourself: pass --audio DIR, or set APCSCALE_AUDIO=DIR, or run `make run AUDIO=DIR` "
    "(DIR: a folder of .wav/.flac files, searched recursively, for example a copy of "
    "https://github.com/Jakobovski/free-spoken-digit-dataset; or a Kaldi data directory; or a lhotse manifest)."
)

LIBRISPEECH_SUBSETS = (
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
)


def cache_dir() -> Path:
    return Path(os.environ.get("APCSCALE_CACHE") or Path.home() / ".cache" / "apcscale").expanduser()


def fsdd_cache_dir(cache: str | Path | None = None) -> Path:
    return Path(cache or cache_dir()) / f"fsdd-{FSDD_COMMIT}"


def recordings_checksum(folder: str | Path) -> tuple[str, int]:
    """(content sha256, number of files) of folder/*.wav, as pinned in FSDD_RECORDINGS_SHA256."""
    pairs = sorted((p.name, hashlib.sha256(p.read_bytes()).hexdigest()) for p in Path(folder).glob("*.wav"))
    h = hashlib.sha256()
    for name, digest in pairs:
        h.update(f"{name}\t{digest}\n".encode())
    return h.hexdigest(), len(pairs)


def cached_fsdd(cache: str | Path | None = None, expected_sha256: str = FSDD_RECORDINGS_SHA256) -> Path | None:
    """The cached, verified FSDD folder, or None."""
    folder = fsdd_cache_dir(cache)
    marker = folder / ".verified"
    if marker.is_file() and (folder / "recordings").is_dir() and marker.read_text().strip() == expected_sha256:
        return folder
    return None


def download_fsdd(
    url: str | None = None,
    cache: str | Path | None = None,
    *,
    expected_sha256: str = FSDD_RECORDINGS_SHA256,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download the FSDD archive, extract recordings/*.wav, verify them; returns the cached folder."""
    url = url or os.environ.get("APCSCALE_FSDD_URL") or FSDD_URL
    target = fsdd_cache_dir(cache)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".fsdd-download-", dir=target.parent))
    try:
        archive = work / "fsdd.tar.gz"
        if progress:
            _log.info(f"downloading FSDD (commit {FSDD_COMMIT}, ~20 MB) from {url} into {target}")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, open(archive, "wb") as f:
                shutil.copyfileobj(response, f, 1 << 20)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                reason = f"HTTP {exc.code} {exc.reason}"
            else:
                reason = getattr(exc, "reason", None) or exc
            raise AudioSourceError(f"could not download FSDD from {url} ({reason}). {HOW_TO_SUPPLY}") from exc
        staged = work / "fsdd"
        recordings = staged / "recordings"
        recordings.mkdir(parents=True)
        try:
            with tarfile.open(archive, "r:*") as tar:
                for member in tar:
                    parts = Path(member.name).parts
                    if member.isfile() and len(parts) >= 2 and parts[-2] == "recordings" and parts[-1].endswith(".wav"):
                        src = tar.extractfile(member)
                        if src is not None:
                            (recordings / parts[-1]).write_bytes(src.read())
        except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
            raise AudioSourceError(
                f"the file downloaded from {url} is not a readable tar.gz archive ({exc}). {HOW_TO_SUPPLY}"
            ) from exc
        got, n = recordings_checksum(recordings)
        if n == 0:
            raise AudioSourceError(f"the archive from {url} holds no recordings/*.wav. {HOW_TO_SUPPLY}")
        if got != expected_sha256:
            raise AudioSourceError(
                f"checksum mismatch for FSDD from {url}: its {n} recordings have content sha256 {got}, expected "
                f"{expected_sha256} ({FSDD_FILES} recordings of commit {FSDD_COMMIT}); the download is damaged "
                f"or not that commit. {HOW_TO_SUPPLY}"
            )
        (staged / ".verified").write_text(got + "\n")
        try:
            os.rename(staged, target)
        except OSError:
            if cached_fsdd(cache, expected_sha256) is None:  # a broken leftover, not a concurrent download
                shutil.rmtree(target, ignore_errors=True)
                os.rename(staged, target)
        return target
    finally:
        shutil.rmtree(work, ignore_errors=True)


def librispeech_dir(subset: str, cache: str | Path | None = None, *, download: bool = True) -> Path:
    """A LibriSpeech subset's folder of .flac files, downloaded through torchaudio.datasets.LIBRISPEECH.

    Only the download and extraction go through torchaudio; the files are then read as an audio
    folder (soundfile), since torchaudio's own loading needs torchcodec.
    """
    if subset not in LIBRISPEECH_SUBSETS:
        raise AudioSourceError(f"unknown LibriSpeech subset {subset!r}; choose one of {', '.join(LIBRISPEECH_SUBSETS)}")
    root = Path(cache or cache_dir()) / "librispeech"
    folder = root / "LibriSpeech" / subset
    marker = folder / ".apcscale-complete"
    if marker.is_file():
        return folder
    if not download:
        raise AudioSourceError(f"LibriSpeech {subset} is not in {root}. {HOW_TO_SUPPLY}")
    root.mkdir(parents=True, exist_ok=True)
    try:
        from torchaudio.datasets import LIBRISPEECH

        LIBRISPEECH(str(root), url=subset, download=True)
    except Exception as exc:  # noqa: BLE001 - network, checksum or extraction failures alike
        raise AudioSourceError(f"could not download LibriSpeech {subset} into {root} ({exc}). {HOW_TO_SUPPLY}") from exc
    if not folder.is_dir():
        raise AudioSourceError(f"LibriSpeech {subset} was downloaded but {folder} is missing")
    marker.write_text("ok\n")
    return folder


def _local(value: str | Path, origin: str) -> Path:
    text = str(value)
    if text == "fsdd":
        return cached_fsdd() or download_fsdd()
    if text.startswith("librispeech:"):
        return librispeech_dir(text.split(":", 1)[1])
    path = Path(text).expanduser()
    if path.is_dir() or (path.is_file() and is_lhotse_manifest(path)):
        return path.resolve()
    if path.is_file():
        raise AudioSourceError(
            f"audio {path} ({origin}) is a file, and not a lhotse manifest "
            f"(*{', *'.join(LHOTSE_SUFFIXES)}). {HOW_TO_SUPPLY}"
        )
    raise AudioSourceError(f"audio folder {path} ({origin}) does not exist or is not a folder. {HOW_TO_SUPPLY}")


def resolve_audio(audio: str | Path | None = None) -> Path:
    """The audio to use: `audio`, else $APCSCALE_AUDIO, else FSDD (cached or downloaded once).

    A folder (of audio files, or a Kaldi data directory) or a lhotse manifest file
    (see apcscale.data.inputs)."""
    if audio is not None and str(audio) != "":
        return _local(audio, "given")
    env = os.environ.get("APCSCALE_AUDIO")
    if env:
        return _local(env, "from APCSCALE_AUDIO")
    return cached_fsdd() or download_fsdd()
