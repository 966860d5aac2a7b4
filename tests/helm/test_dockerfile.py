"""Static checks of the Dockerfile, the one image every component runs.

These tests parse the Dockerfile and check what can be read from its text (stages, base
images, the user, what is copied and installed, no secrets) and that it agrees with
pyproject.toml and the chart; tests/image builds the image with podman and runs it.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field

import pytest

from controller.settings import Settings
from tests.helm.chart import CHART_DIR, REPO

DOCKERFILE = (REPO / "Dockerfile").read_text()
DOCKERIGNORE = (REPO / ".dockerignore").read_text().splitlines()
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [argument for instruction, argument in self.instructions if instruction == keyword]


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        piece = stripped.removesuffix("\\").strip()
        current = f"{current} {piece}" if current else piece
        if not stripped.endswith("\\"):
            logical.append(current)
            current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in logical]


def _stages() -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the build stages in order."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction, argument in _instructions(DOCKERFILE):
        if instruction == "FROM":
            match = re.fullmatch(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", argument, re.I)
            assert match, argument
            stages.append(Stage(match.group(1), match.group(2)))
        elif not stages:
            assert instruction == "ARG", f"{instruction} before the first FROM"
            name, _, default = argument.partition("=")
            global_args[name] = default
        else:
            stages[-1].instructions.append((instruction, argument))
    return global_args, stages


def _expand(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], text)


def _final_chain() -> list[Stage]:
    """The final stage and the stages it is built FROM, with default build arguments."""
    global_args, stages = _stages()
    by_name = {stage.name: stage for stage in stages if stage.name}
    chain = [stages[-1]]
    while _expand(chain[-1].base, global_args) in by_name:
        chain.append(by_name[_expand(chain[-1].base, global_args)])
    return chain


def test_it_is_a_multi_stage_build_whose_runtime_copies_only_the_built_environment() -> None:
    _, stages = _stages()
    assert len(stages) >= 4
    names = [stage.name for stage in stages]
    assert "runtime-cpu" in names and "build" in names
    final = stages[-1]
    # the CPU runtime is the environment's stage itself: it copies no environment around
    copies = [argument for chain in _final_chain() for argument in chain.all("COPY")]
    assert sorted(copies) == ["--from=build /wheels /tmp/wheels", "pyproject.toml ./"]
    # the runtime installs only the project's own wheel, offline, without dependencies
    installs = [run for run in final.all("RUN") if "pip install" in run]
    assert len(installs) == 1
    assert "--no-deps --no-index" in installs[0] and "/tmp/wheels/*.whl" in installs[0]


def test_the_default_base_is_python_3_11_slim_and_a_build_argument_selects_cuda() -> None:
    global_args, stages = _stages()
    base = _expand(_final_chain()[-1].base, global_args)
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base), base
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    assert global_args["VARIANT"] == "cpu"
    cuda = [stage for stage in stages if stage.name == "runtime-cuda"]
    assert len(cuda) == 1 and cuda[0].base == "${CUDA_BASE_IMAGE}"
    assert global_args["CUDA_BASE_IMAGE"].startswith("nvidia/cuda:")
    assert stages[-1].base == "runtime-${VARIANT}"


def test_torch_is_the_pinned_cpu_build_and_the_project_is_installed_with_its_dependencies() -> None:
    _, stages = _stages()
    (dependencies,) = [stage for stage in stages if stage.name == "runtime-cpu"]
    (build,) = [stage for stage in stages if stage.name == "build"]
    assert build.base == "runtime-cpu"
    runs = " && ".join(dependencies.all("RUN"))
    (torch_pin,) = [dep for dep in PYPROJECT["project"]["dependencies"] if dep.startswith("torch")]
    assert f"pip install {torch_pin} ${{TORCH_SOURCE}}" in runs
    arguments = dependencies.all("ARG")
    (source_default,) = [arg for arg in arguments if arg.startswith("TORCH_SOURCE=")]
    assert source_default == 'TORCH_SOURCE="--index-url https://download.pytorch.org/whl/cpu"'
    # the dependencies are pyproject.toml's, and the project's wheel is built after them
    assert '["project"]["dependencies"]' in runs and "pip install -r" in runs
    assert "pip wheel --no-deps --wheel-dir /wheels ." in " && ".join(build.all("RUN"))


def test_every_package_of_the_distribution_is_copied_into_the_build() -> None:
    _, stages = _stages()
    (build,) = [stage for stage in stages if stage.name == "build"]
    copied = {shlex.split(argument)[0] for argument in build.all("COPY")}
    includes = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {pattern.rstrip("*") for pattern in includes}
    assert packages <= copied
    allowed = {line.removeprefix("!").rstrip("/") for line in DOCKERIGNORE if line.startswith("!")}
    assert copied <= allowed, "a COPY source is excluded by .dockerignore"


def test_it_runs_as_the_non_root_user_the_chart_expects() -> None:
    final = _final_chain()
    users = [argument for stage in final for argument in stage.all("USER")]
    assert users, "no USER: the image would run as root"
    user, _, group = users[0].partition(":")
    assert user.isdigit() and int(user) > 0, "the user must be a numeric non-root uid"
    chart_values = (CHART_DIR / "values.yaml").read_text()
    assert f"runAsUser: {user}" in chart_values
    assert f"runAsGroup: {group}" in chart_values
    # USER comes after the last RUN of the final stage: nothing runs as root after it
    instructions = [instruction for instruction, _ in final[0].instructions]
    assert instructions.index("USER") > max(
        index for index, instruction in enumerate(instructions) if instruction == "RUN"
    )


def test_one_entrypoint_for_every_command() -> None:
    final = _final_chain()[0]
    assert [json.loads(argument) for argument in final.all("ENTRYPOINT")] == [["harmony"]]


SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|TOKEN|SECRET|PRIVATE|CREDENTIAL|DATABASE_URL|REDIS_URL", re.IGNORECASE
)


def test_no_secret_is_baked_into_the_image() -> None:
    for instruction, argument in _instructions(DOCKERFILE):
        if instruction in {"ENV", "ARG", "LABEL"}:
            names = re.findall(r"(\w+)=", argument) or [argument.split()[0]]
            assert not [name for name in names if SECRET_NAME.search(name)], argument
        if instruction in {"COPY", "ADD"}:
            assert not re.search(r"\.env\b|\.pem\b|id_rsa|\.key\b|kubeconfig", argument), argument
    # the build context is deny-all, then only what the image installs
    patterns = [line.strip() for line in DOCKERIGNORE if line.strip() and not line.startswith("#")]
    assert patterns[0] == "*"
    assert "**/.env" in patterns


@pytest.mark.parametrize("variable", ["HARMONY_DATA_DIR", "HARMONY_MODEL_DIR"])
def test_the_images_settings_are_real_settings(variable: str) -> None:
    env = " ".join(argument for stage in _final_chain() for argument in stage.all("ENV"))
    assert f"{variable}=" in env
    assert variable.removeprefix("HARMONY_").lower() in Settings.model_fields
