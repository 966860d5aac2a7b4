"""The image, built from the Dockerfile with podman and run.

The base is a debootstrapped Debian bookworm standing in for python:3.11-slim-bookworm
(tests/image/base.py); everything above it is the Dockerfile users build. The first build
on a machine takes minutes; later ones reuse podman's layer cache.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from controller.state import migrate
from tests.conftest import service_unavailable
from tests.image.base import ensure_base_image
from tests.image.podman import build_image, image_id, run_in_image, torch_source

pytestmark = [pytest.mark.image, pytest.mark.slow, pytest.mark.timeout(1800)]

TOOLS = ("podman", "buildah", "runc", "debootstrap")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        service_unavailable("podman", f"install Debian's {', '.join(missing)}")
    base = ensure_base_image()
    previous = image_id("localhost/harmony-test:latest")
    built = build_image(base, tmp_path_factory.mktemp("image") / "build.log")
    # The replaced image is the last build's code layers; its dependency layers stay cached.
    if previous is not None and previous != image_id(built):
        subprocess.run(["podman", "rmi", previous], capture_output=True, timeout=300, check=False)
    yield built


def test_harmony_help_lists_every_component(image: str) -> None:
    finished = run_in_image(image, "--help")
    assert finished.returncode == 0, finished.stderr
    for command in ("operator", "api", "worker", "db", "backtest"):
        assert command in finished.stdout


def test_the_operator_help_runs(image: str) -> None:
    finished = run_in_image(image, "operator", "--help")
    assert finished.returncode == 0, finished.stderr
    assert "Usage" in finished.stdout and "operator" in finished.stdout


def test_db_upgrade_brings_a_sqlite_store_to_the_newest_revision(
    image: str, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)  # the image's user (uid 10001) writes here
    finished = run_in_image(image, "db", "upgrade", volumes=(f"{data}:/var/lib/harmony:z",))
    assert finished.returncode == 0, finished.stderr
    engine = create_engine(f"sqlite:///{data / 'harmony.db'}")
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    assert stored == migrate.head_revision()


def test_it_runs_as_uid_10001_with_the_cpu_torch_it_was_built_with(image: str) -> None:
    finished = run_in_image(
        image,
        "-c",
        "import os, torch; print(os.getuid(), os.getgid(), torch.__version__)",
        entrypoint="python",
    )
    assert finished.returncode == 0, finished.stderr
    uid, gid, version = finished.stdout.split()
    assert (uid, gid) == ("10001", "10001")
    assert version.startswith("2.13.0")
    if torch_source():
        assert version == "2.13.0+cpu"
