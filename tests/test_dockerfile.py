"""The Dockerfile, checked without a container engine: pinned slim base, two stages, an unprivileged
user, the console script as exec-form entrypoint, a healthcheck that works, runtime dependencies only
and a .dockerignore that keeps the build context small."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

from app.config import DEFAULT_PORT
from tests.processes import exporter_process, free_port

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def parse(text: str) -> list[list[Instruction]]:
    """The instructions of each stage, with continuation lines joined and comments dropped."""
    stages: list[list[Instruction]] = []
    logical = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        logical += line.strip()
        if logical.endswith("\\"):
            logical = logical.removesuffix("\\") + " "
            continue
        keyword, _, arguments = logical.partition(" ")
        instruction = Instruction(keyword.upper(), arguments.strip())
        if instruction.keyword == "FROM":
            stages.append([])
        stages[-1].append(instruction)
        logical = ""
    return stages


STAGES = parse((ROOT / "Dockerfile").read_text(encoding="utf-8"))
RUNTIME = STAGES[-1]


def arguments(stage: list[Instruction], keyword: str) -> list[str]:
    return [instruction.arguments for instruction in stage if instruction.keyword == keyword]


def exec_form(text: str) -> list[str]:
    argv = json.loads(text)
    assert isinstance(argv, list) and all(isinstance(arg, str) for arg in argv), text
    return argv


def test_the_base_image_is_a_pinned_slim_python() -> None:
    minimum = re.fullmatch(r">=(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert minimum
    for stage in STAGES:
        image = stage[0].arguments.split()[0]
        pinned = re.fullmatch(r"python:(\d+)\.(\d+)\.\d+-slim-[a-z]+", image)
        assert pinned, f"{image} is not pinned to a patch release of a slim Python image"
        assert tuple(map(int, pinned.groups())) >= tuple(map(int, minimum.groups()))


def test_the_runtime_stage_takes_only_the_build_stages_virtualenv() -> None:
    assert len(STAGES) == 2
    build_name = STAGES[0][0].arguments.split()[-1]
    assert STAGES[0][0].arguments.split()[1].upper() == "AS"
    assert arguments(RUNTIME, "COPY") == [f"--from={build_name} /opt/venv /opt/venv"]
    assert not [run for run in arguments(RUNTIME, "RUN") if "pip" in run]


def test_it_runs_as_an_unprivileged_user() -> None:
    user = arguments(RUNTIME, "USER")[-1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, user
    assert gid.isdigit() and int(gid) != 0, user
    # The numeric ids exist in the image: the user and its group are created with them.
    (created,) = arguments(RUNTIME, "RUN")
    assert f"--gid {gid}" in created and f"--uid {uid}" in created


def test_the_entrypoint_is_the_console_script() -> None:
    (entrypoint,) = arguments(RUNTIME, "ENTRYPOINT")
    assert exec_form(entrypoint) == ["llmopt-exporter"]
    assert "llmopt-exporter" in PYPROJECT["project"]["scripts"]
    assert not arguments(RUNTIME, "CMD")


def test_the_default_port_is_exposed_and_configured() -> None:
    assert arguments(RUNTIME, "EXPOSE") == [str(DEFAULT_PORT)]
    env = dict(pair.split("=", 1) for run in arguments(RUNTIME, "ENV") for pair in shlex.split(run))
    assert env["LLMOPT_PORT"] == str(DEFAULT_PORT)
    # Inside a container the exporter must listen beyond loopback to be scraped.
    assert env["LLMOPT_HOST"] == "0.0.0.0"


def test_the_healthcheck_probes_healthz_of_a_real_exporter(tmp_path: Path) -> None:
    (healthcheck,) = arguments(RUNTIME, "HEALTHCHECK")
    options, _, command = healthcheck.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = exec_form(command)
    assert argv[0] == "python" and "/healthz" in argv[-1]
    probe = [sys.executable, *argv[1:]]
    with exporter_process(tmp_path) as url:
        port = url.rsplit(":", 1)[1]
        healthy = subprocess.run(probe, env={"LLMOPT_PORT": port}, capture_output=True, check=False)
        assert healthy.returncode == 0, healthy.stderr
    nobody = subprocess.run(probe, env={"LLMOPT_PORT": str(free_port())}, capture_output=True, check=False)
    assert nobody.returncode != 0


def test_only_runtime_dependencies_are_installed() -> None:
    installs = [
        command.split()
        for run in arguments(STAGES[0], "RUN")
        for command in run.split("&&")
        if " install" in command
    ]
    assert installs, "the build stage installs the project"
    for install in installs:
        assert Path(install[0]).name == "pip", install
        targets = [token for token in install[install.index("install") + 1 :] if not token.startswith("-")]
        assert targets == ["."], f"{install}: only the project itself, without extras"


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", "tests"} <= ignored
    copied = {
        source
        for copy in arguments(STAGES[0], "COPY")
        for source in copy.split()[:-1]
        if not source.startswith("--")
    }
    assert copied == {"pyproject.toml", "README.md", "app"}
    assert not copied & ignored, "the build needs these"
