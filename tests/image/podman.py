"""Build the repository's Dockerfile with podman and run commands in the image.

The build uses chroot isolation (no daemon, no user namespaces needed) and podman's layer
cache, so a rebuild after a code change only redoes the layers from the code's COPY on.
pip inside the build gets this machine's pip configuration, the files it names (CA bundle,
constraints, local indexes and wheel folders) and the wheel folders of PIP_FIND_LINKS,
all mounted read-only: nothing of the host is baked into the image.
"""

from __future__ import annotations

import configparser
import os
import shlex
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
IMAGE = "localhost/harmony-test:latest"
# runc is the runtime .ci/run installs. Without explicit limits podman asks for more open
# files than these machines allow, and runc fails with "error setting rlimit type 7".
RUN_OPTIONS = (
    "--runtime",
    "runc",
    "--ulimit",
    "nofile=20000:20000",
    "--ulimit",
    "nproc=32768:32768",
)
# pip options whose values are files or folders (or file:// URLs) on this machine.
PIP_PATH_OPTIONS = (
    "cert",
    "client-cert",
    "constraint",
    "find-links",
    "index-url",
    "extra-index-url",
)


def _pip_config_files() -> dict[Path, str]:
    """This machine's pip configuration files, each with where the build's root user reads it."""
    user_config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    candidates = {
        Path("/etc/pip.conf"): "/etc/pip.conf",
        Path("/etc/xdg/pip/pip.conf"): "/etc/xdg/pip/pip.conf",
        user_config / "pip" / "pip.conf": "/root/.config/pip/pip.conf",
        Path.home() / ".pip" / "pip.conf": "/root/.pip/pip.conf",
    }
    if os.environ.get("PIP_CONFIG_FILE"):
        candidates[Path(os.environ["PIP_CONFIG_FILE"])] = "/etc/pip.conf"
    return {source: target for source, target in candidates.items() if source.is_file()}


def _local_path(value: str) -> Path | None:
    path = Path(value.removeprefix("file://")) if value.startswith("file://") else Path(value)
    return path if path.is_absolute() and path.exists() else None


def find_links_folders() -> list[Path]:
    """The wheel folders PIP_FIND_LINKS names that exist here."""
    values = os.environ.get("PIP_FIND_LINKS", "").split()
    return [path for value in values if (path := _local_path(value)) is not None]


def build_mounts() -> list[str]:
    """`-v SOURCE:TARGET:ro` arguments for pip's configuration and what it names."""
    mounts: dict[str, str] = {}
    for source, target in _pip_config_files().items():
        mounts[target] = str(source)
        parser = configparser.ConfigParser()
        parser.read(source)
        for section in parser.sections():
            for option in PIP_PATH_OPTIONS:
                for value in parser.get(section, option, fallback="").split():
                    if (path := _local_path(value)) is None:
                        continue
                    # a local index's pages link files beside it (../../files/...)
                    if option.endswith("index-url"):
                        path = path.parent
                    mounts[str(path)] = str(path)
    for variable in ("PIP_CERT", "SSL_CERT_FILE"):
        if (path := _local_path(os.environ.get(variable, ""))) is not None:
            mounts[str(path)] = str(path)
    for folder in find_links_folders():
        mounts[str(folder)] = str(folder)
    return [f"--volume={source}:{target}:ro" for target, source in sorted(mounts.items())]


def torch_source() -> str:
    """The Dockerfile's TORCH_SOURCE: a local folder with torch's CPU wheel when there is one
    (its `+cpu` version sorts above the index's, and torch's own dependencies still come from
    the configured indexes), otherwise "" for the Dockerfile's default, PyTorch's CPU index."""
    for folder in find_links_folders():
        if any(folder.glob("torch-*+cpu-*.whl")):
            return f"--find-links {shlex.quote(str(folder))}"
    return ""


def build_image(base: str, log: Path) -> str:
    """Build the Dockerfile on `base` into IMAGE; the build's output goes to `log`."""
    arguments = [
        "podman",
        "build",
        "--isolation=chroot",
        "--layers",
        f"--build-arg=PYTHON_IMAGE={base}",
        *build_mounts(),
        f"--tag={IMAGE}",
        str(REPO),
    ]
    if source := torch_source():
        arguments.insert(4, f"--build-arg=TORCH_SOURCE={source}")
    with log.open("w") as output:
        finished = subprocess.run(
            arguments, stdout=output, stderr=subprocess.STDOUT, timeout=1500, check=False
        )
    if finished.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        raise AssertionError(f"podman build failed ({finished.returncode}):\n{tail}")
    return IMAGE


def image_id(reference: str) -> str | None:
    found = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Id}}", reference],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return found.stdout.strip() if found.returncode == 0 else None


def run_in_image(
    image: str, *command: str, entrypoint: str | None = None, volumes: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run `command` in a fresh container of `image`, without a network."""
    arguments = ["podman", "run", "--rm", "--network=none", *RUN_OPTIONS]
    arguments += [f"--volume={volume}" for volume in volumes]
    if entrypoint is not None:
        arguments.append(f"--entrypoint={entrypoint}")
    return subprocess.run(
        [*arguments, image, *command], capture_output=True, text=True, timeout=300, check=False
    )
