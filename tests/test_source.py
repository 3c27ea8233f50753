"""Where audio comes from: a given folder, $APCSCALE_AUDIO, or FSDD downloaded once (file:// and http://)
and verified by checksum; offline without audio, a clear error."""

import http.server
import os
import tarfile
import threading
from pathlib import Path

import pytest

from apcscale.data import AudioSourceError, resolve_audio
from apcscale.data.source import FSDD_FILES, FSDD_RECORDINGS_SHA256, cached_fsdd, download_fsdd, recordings_checksum

HOW_TO = ("--audio DIR", "APCSCALE_AUDIO=DIR", "make run AUDIO=DIR")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """Nothing from the caller's environment: an empty cache, no audio setting, no reachable default URL."""
    monkeypatch.setenv("APCSCALE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("APCSCALE_AUDIO", raising=False)
    monkeypatch.setenv("APCSCALE_FSDD_URL", "http://127.0.0.1:9/unreachable.tar.gz")


def make_archive(path: Path, recordings: list[Path], top="free-spoken-digit-dataset-26eb9aa") -> Path:
    """A GitHub-style archive: top folder, recordings/ and some other files."""
    with tarfile.open(path, "w:gz", compresslevel=1) as tar:
        readme = path.parent / "README.md"
        readme.write_text("FSDD\n")
        tar.add(readme, f"{top}/README.md")
        for wav in recordings:
            tar.add(wav, f"{top}/recordings/{wav.name}")
    return path


@pytest.fixture(scope="module")
def fsdd_archive(fsdd_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("archive") / "26eb9aa.tar.gz"
    return make_archive(out, sorted((fsdd_dir / "recordings").glob("*.wav")))


@pytest.fixture()
def http_server(tmp_path):
    """A local HTTP server for tmp_path/www; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(www), **kw)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_pinned_checksum_is_that_of_the_test_speech(fsdd_dir):
    assert recordings_checksum(fsdd_dir / "recordings") == (FSDD_RECORDINGS_SHA256, FSDD_FILES)


def test_given_folder_then_environment(fsdd_dir, monkeypatch, tmp_path):
    assert resolve_audio(fsdd_dir) == fsdd_dir
    assert resolve_audio(str(fsdd_dir)) == fsdd_dir
    monkeypatch.setenv("APCSCALE_AUDIO", str(fsdd_dir))
    assert resolve_audio() == fsdd_dir
    assert resolve_audio(tmp_path) == tmp_path.resolve()  # the argument wins over the environment
    with pytest.raises(AudioSourceError, match="does not exist") as err:
        resolve_audio(tmp_path / "nowhere")
    assert all(h in str(err.value) for h in HOW_TO)
    monkeypatch.setenv("APCSCALE_AUDIO", str(tmp_path / "nowhere"))
    with pytest.raises(AudioSourceError, match="APCSCALE_AUDIO"):
        resolve_audio()


def test_offline_without_audio_says_how_to_supply_it():
    with pytest.raises(AudioSourceError, match="could not download FSDD") as err:
        resolve_audio()
    assert all(h in str(err.value) for h in HOW_TO)


def test_download_from_a_file_url_then_cached(fsdd_archive, monkeypatch, tmp_path):
    monkeypatch.setenv("APCSCALE_FSDD_URL", fsdd_archive.as_uri())
    folder = resolve_audio()
    assert folder == tmp_path / "cache" / "fsdd-26eb9aa"
    assert recordings_checksum(folder / "recordings") == (FSDD_RECORDINGS_SHA256, FSDD_FILES)
    assert not (folder / "README.md").exists()  # only recordings/ is extracted
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["fsdd-26eb9aa"]  # no leftovers
    # the second time comes from the cache: the URL is not used
    monkeypatch.setenv("APCSCALE_FSDD_URL", "http://127.0.0.1:9/unreachable.tar.gz")
    assert resolve_audio() == folder == cached_fsdd()


def test_download_over_http(fsdd_archive, http_server, tmp_path):
    www, base = http_server
    os.symlink(fsdd_archive, www / "fsdd.tar.gz")
    folder = download_fsdd(f"{base}/fsdd.tar.gz", tmp_path / "other-cache", progress=False)
    assert recordings_checksum(folder / "recordings")[0] == FSDD_RECORDINGS_SHA256
    with pytest.raises(AudioSourceError, match="404"):
        download_fsdd(f"{base}/missing.tar.gz", tmp_path / "c2", progress=False)


def test_checksum_mismatch_is_an_error_and_nothing_is_cached(fsdd_dir, http_server, tmp_path):
    www, base = http_server
    few = sorted((fsdd_dir / "recordings").glob("*.wav"))[:20]
    make_archive(www / "bad.tar.gz", few)
    with pytest.raises(AudioSourceError, match="checksum mismatch") as err:
        download_fsdd(f"{base}/bad.tar.gz", tmp_path / "cache", progress=False)
    assert "20 recordings" in str(err.value) and all(h in str(err.value) for h in HOW_TO)
    assert cached_fsdd(tmp_path / "cache") is None
    assert not any((tmp_path / "cache").iterdir())


def test_not_an_archive(tmp_path, monkeypatch):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"<html>rate limited</html>")
    monkeypatch.setenv("APCSCALE_FSDD_URL", junk.as_uri())
    with pytest.raises(AudioSourceError, match="not a readable tar.gz"):
        resolve_audio()
