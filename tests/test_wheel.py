"""The built wheel, installed into a fresh venv outside the repository, is a working tool.

The wheel is built from a copy of the package sources (pip wheel, no build isolation, offline),
installed without dependencies into a new venv in a temporary folder, and given this
interpreter's site-packages as a plain path line in a .pth file: the dependencies are visible,
the repository is not (a path line does not run the editable install's import hook, and
PYTHONPATH is cleared). Then, from yet another folder, as a user would: `apcscale recipes list`,
`apcscale recipes cp`, and the default sweep's plan (`apcscale sweep --dry-run`), which needs
the recipes shipped inside the wheel.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p.name for p in (ROOT / "apcscale" / "recipes" / "configs").glob("*.yaml"))


def run(cmd: list[str], *, cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "APCSCALE_RECIPES")}
    # build from a copy, so that the build's own files (build/, *.egg-info) never land in the repository
    src = base / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "apcscale", src / "apcscale", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = base / "dist"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(dist),
            str(src),
        ],
        cwd=base,
        env=env,
    )
    (wheel,) = dist.glob("apcscale-*.whl")

    venv = base / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=base, env=env)
    python = venv / "bin" / "python"
    run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        cwd=base,
        env=env,
    )
    site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base, env=env
        ).stdout.strip()
    )
    deps = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    (site / "_apcscale_test_deps.pth").write_text("".join(f"{d}\n" for d in deps))  # plain paths: no hooks run
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    env["APCSCALE_CACHE"] = str(base / "cache")
    return {
        "wheel": wheel,
        "venv": venv,
        "python": python,
        "site": site,
        "cwd": elsewhere,
        "env": env,
        "apcscale": venv / "bin" / "apcscale",
    }


def test_the_wheel_holds_the_recipes_and_the_command(installed):
    with zipfile.ZipFile(installed["wheel"]) as whl:
        names = whl.namelist()
        entry_points = whl.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert SHIPPED and sorted(Path(n).name for n in names if n.startswith("apcscale/recipes/configs/")) == SHIPPED
    assert "apcscale = apcscale.cli:main" in entry_points
    assert installed["apcscale"].is_file()


def test_the_fresh_venv_imports_its_own_copy_not_the_repository(installed):
    out = run(
        [
            str(installed["python"]),
            "-c",
            "import apcscale, apcscale.recipes.catalog as c, sys; print(apcscale.__file__); print(c.PACKAGED); "
            "print('\\n'.join(sys.path))",
        ],
        cwd=installed["cwd"],
        env=installed["env"],
    ).stdout.splitlines()
    module, packaged, *path = out
    assert Path(module).is_relative_to(installed["site"]), module
    assert (
        Path(packaged).is_relative_to(installed["site"])
        and sorted(p.name for p in Path(packaged).glob("*.yaml")) == SHIPPED
    )
    assert not any(p and Path(p).resolve() == ROOT for p in path), path


def test_recipes_list_and_cp_from_another_folder(installed):
    out = run([str(installed["apcscale"]), "recipes", "list"], cwd=installed["cwd"], env=installed["env"]).stdout
    listed = [line.split()[0] for line in out.splitlines() if line and not line.startswith(" ")]
    assert [f"{name}.yaml" for name in listed[: len(SHIPPED)]] == SHIPPED, out
    assert str(installed["site"]) in out  # "shipped recipes: <the venv's copy>"
    run(
        [str(installed["apcscale"]), "recipes", "cp", "sweep_default", "study.yaml"],
        cwd=installed["cwd"],
        env=installed["env"],
    )
    copy = installed["cwd"] / "study.yaml"
    assert copy.read_bytes() == (ROOT / "apcscale" / "recipes" / "configs" / "sweep_default.yaml").read_bytes()


def test_the_default_sweep_plans_from_the_installed_wheel(installed, fsdd_dir):
    proc = run(
        [str(installed["apcscale"]), "sweep", "--dry-run", "--no-probe", "--audio", str(fsdd_dir)],
        cwd=installed["cwd"],
        env=installed["env"],
    )
    out = proc.stdout
    shipped = installed["site"] / "apcscale" / "recipes" / "configs" / "sweep_default.yaml"
    assert "sweep fsdd-default" in out and str(shipped) in out.replace("\n", ""), out
    assert "runs:" in out and "planned in" in out, out
    # the data was prepared where the installed tool was told to (its cache), not in the repository
    assert list((Path(installed["env"]["APCSCALE_CACHE"]) / "prepared").glob("*/manifest.json"))
    assert not (installed["cwd"] / "sweeps").exists()  # a dry run writes no sweep
