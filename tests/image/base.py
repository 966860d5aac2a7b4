"""The image's base for builds on machines without a registry: a minimal Debian bookworm
made by `debootstrap --variant=minbase` and imported into podman.

It stands in for the public `python:3.11-slim-bookworm` (the same Debian release and
Python minor version). The root filesystem is cached as a tarball under a folder keyed by
everything that shapes it, so it is made once per machine, and imported into podman only
when podman's storage lacks it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

SUITE = "bookworm"
# Only what the image needs on top of minbase: Python 3.11 with venv for the build, and CA
# certificates for HTTPS to Prometheus and the Kubernetes API at run time.
PACKAGES = ("python3", "python3-venv", "ca-certificates")
MIRROR = os.environ.get("HARMONY_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")


def cache_dir() -> Path:
    """The folder that keeps the base across test runs (XDG cache, or ~/.cache)."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "harmony-tests" / "image-base"


def base_key() -> str:
    """A short digest of every input of the root filesystem."""
    architecture = subprocess.run(
        ["dpkg", "--print-architecture"], check=True, capture_output=True, text=True
    ).stdout.strip()
    inputs = {
        "suite": SUITE,
        "variant": "minbase",
        "packages": sorted(PACKAGES),
        "mirror": MIRROR,
        "architecture": architecture,
        # bump when the way the tarball is made below changes
        "recipe": 1,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def _make_rootfs_tarball(tarball: Path) -> None:
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="debootstrap-", dir=tarball.parent) as work:
        rootfs = Path(work) / "rootfs"
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(rootfs),
                MIRROR,
            ],
            check=True,
            capture_output=True,
            timeout=900,
        )
        # the downloaded packages and indexes are not part of an image
        for folder in ("var/cache/apt/archives", "var/lib/apt/lists"):
            subprocess.run(
                ["find", str(rootfs / folder), "-type", "f", "-delete"], check=True, timeout=60
            )
        partial = Path(work) / "rootfs.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."],
            check=True,
            timeout=300,
        )
        partial.rename(tarball)


def ensure_base_image() -> str:
    """The podman reference of the base, made and imported when missing."""
    key = base_key()
    reference = f"localhost/harmony-test-base:{key}"
    present = subprocess.run(
        ["podman", "image", "exists", reference], capture_output=True, timeout=60
    )
    if present.returncode == 0:
        return reference
    tarball = cache_dir() / f"{key}.tar"
    if not tarball.is_file():
        _make_rootfs_tarball(tarball)
    subprocess.run(
        ["podman", "import", str(tarball), reference],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return reference
