"""Shared fixtures: the real speech in ../shared/data/fsdd, a slice of it, and a prepared corpus."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    """FSDD (folder with recordings/): $APCSCALE_TEST_AUDIO, default ../shared/data/fsdd from the repo root."""
    raw = os.environ.get("APCSCALE_TEST_AUDIO")
    path = Path(raw).expanduser() if raw else ROOT.parent / "shared" / "data" / "fsdd"
    if not path.is_absolute():
        path = ROOT / path
    if not (path / "recordings").is_dir() or not any((path / "recordings").glob("*.wav")):
        pytest.fail(f"the test speech is missing: no {path}/recordings/*.wav. Point APCSCALE_TEST_AUDIO at a copy of "
                    "the Free Spoken Digit Dataset (https://github.com/Jakobovski/free-spoken-digit-dataset, "
                    "commit 26eb9aa) or place it at ../shared/data/fsdd", pytrace=False)
    return path.resolve()


@pytest.fixture(scope="session")
def fsdd_slice(fsdd_dir: Path, tmp_path_factory) -> Path:
    """300 FSDD recordings (every speaker, every digit, indices 0-4), symlinked into a temporary folder."""
    out = tmp_path_factory.mktemp("fsdd_slice")
    (out / "recordings").mkdir()
    for wav in sorted((fsdd_dir / "recordings").glob("*.wav")):
        if int(wav.stem.rsplit("_", 1)[1]) < 5:
            (out / "recordings" / wav.name).symlink_to(wav)
    return out


@pytest.fixture(scope="session")
def prepared_fsdd(fsdd_dir: Path, tmp_path_factory) -> Path:
    """manifest.json of all of FSDD prepared (40 log-Mel bins; dev = one whole speaker; subsets d0..d7)."""
    from apcscale.data import ensure_prepared

    return ensure_prepared(fsdd_dir, tmp_path_factory.mktemp("prepared") / "fsdd", progress=False)
