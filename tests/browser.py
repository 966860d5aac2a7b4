"""Debian's headless Chromium for the tests that look at a page: its DOM once scripts ran,
and a screenshot kept under tests/artifacts/ for people to look at."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.conftest import service_unavailable

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# Not UTC on purpose: a page that shows local time somewhere shows it as a different hour.
BROWSER_TIMEZONE = "America/New_York"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--virtual-time-budget=20000",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    service_unavailable(
        "Chromium", "the `chromium` binary is not on PATH (apt-get install chromium)"
    )
    raise AssertionError("unreachable")


def run_chromium(
    binary: str, profile: Path, *arguments: str, window: tuple[int, int] = (1400, 1250)
) -> str:
    """Chromium's stdout (the DOM with --dump-dom)."""
    completed = subprocess.run(
        [
            binary,
            *CHROMIUM_FLAGS,
            f"--window-size={window[0]},{window[1]}",
            f"--user-data-dir={profile}",
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "TZ": BROWSER_TIMEZONE},
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def screenshot(
    binary: str, profile: Path, url: str, name: str, window: tuple[int, int] = (1400, 1250)
) -> Path:
    """A PNG of the page at `url`, kept as tests/artifacts/`name`."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    path.unlink(missing_ok=True)
    run_chromium(binary, profile, f"--screenshot={path}", url, window=window)
    assert path.is_file() and path.stat().st_size > 20_000
    return path
