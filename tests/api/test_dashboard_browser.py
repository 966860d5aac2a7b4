"""The dashboard in Debian's headless Chromium against a served API with seeded pools.

The screenshot is kept at tests/artifacts/dashboard.png for people to look at.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import Engine

from api.app import create_app
from controller.clock import ManualClock
from controller.state.db import make_session_factory
from tests.api.conftest import READ_TOKEN, api_settings
from tests.api.seed import NOW
from tests.conftest import service_unavailable

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1400,1250",
    "--virtual-time-budget=20000",
]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    service_unavailable(
        "Chromium", "the `chromium` binary is not on PATH (apt-get install chromium)"
    )
    raise AssertionError("unreachable")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served_dashboard(seeded_engine: Engine) -> Iterator[str]:
    app = create_app(
        api_settings(seeded_engine), make_session_factory(seeded_engine), ManualClock(NOW)
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("uvicorn did not start within 20 s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


def _run_chromium(binary: str, profile: Path, *arguments: str) -> str:
    completed = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


@pytest.mark.parametrize("migrated_engine", ["postgresql"], indirect=True)
def test_dashboard_lists_pools_and_draws_the_forecast_band(
    served_dashboard: str, tmp_path: Path
) -> None:
    binary = _chromium()
    url = f"{served_dashboard}#token={READ_TOKEN}&pool=gpu/a100-train"
    dom = _run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url)
    assert 'data-state="ready"' in dom, dom[:3000]
    for pool in ("gpu/a100-train", "gpu/h100-infer", "research/l4-batch"):
        assert f'data-pool="{pool}"' in dom
    assert 'data-pool="research/old-pool"' not in dom
    assert 'data-forecast-band="true"' in dom
    assert "forecast 90% band" in dom and "usable capacity" in dom
    assert "keep P(shortfall)" in dom  # a decision's reason in the table
    assert "saved vs static peak" in dom

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    screenshot.unlink(missing_ok=True)
    _run_chromium(binary, tmp_path / "profile-shot", f"--screenshot={screenshot}", url)
    assert screenshot.is_file() and screenshot.stat().st_size > 20_000


@pytest.mark.parametrize("migrated_engine", ["sqlite"], indirect=True)
def test_dashboard_without_a_token_asks_for_one(served_dashboard: str, tmp_path: Path) -> None:
    dom = _run_chromium(_chromium(), tmp_path / "profile", "--dump-dom", served_dashboard)
    assert 'data-state="needs-token"' in dom
    assert "Enter an API token" in dom
