"""The Makefile's `bench` and `lint` targets run real things: every benchmark script with flags it
has, and linters that pass on the code as it is."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def recipe(target: str) -> list[list[str]]:
    """The commands of a Makefile target, split into words, with $(BIN) as this interpreter's folder."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"^{target}\s*:(?!=)", line))
    out = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        out.append(shlex.split(line.strip().replace("$(BIN)", str(Path(sys.executable).parent))))
    return out


def test_bench_runs_every_benchmark_script_with_flags_it_defines():
    commands = recipe("bench")
    scripts = [cmd[1] for cmd in commands]
    assert sorted(scripts) == sorted(f"benchmarks/{p.name}" for p in (ROOT / "benchmarks").glob("bench_*.py"))
    for cmd in commands:
        assert cmd[0] == str(Path(sys.executable).parent / "python"), cmd
        source = (ROOT / cmd[1]).read_text()
        for flag in (word for word in cmd[2:] if word.startswith("--")):
            assert re.search(rf"add_argument\(\s*\"{re.escape(flag)}\"", source), f"{cmd[1]} has no {flag} option"


def test_lint_passes():
    commands = recipe("lint")
    names = [Path(cmd[0]).name for cmd in commands]
    assert "hadolint" in names and any("compileall" in cmd for cmd in commands)
    assert ["check", "format"] == [cmd[1] for cmd in commands if Path(cmd[0]).name == "ruff"]  # lint and format
    for cmd in commands:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout}{proc.stderr}"
