"""Start a real Prometheus (Debian's package) over TSDB blocks built from OpenMetrics text.

Shared by the metric-source tests and the operator's end-to-end tests.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import service_unavailable


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RunningPrometheus:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_prometheus(
    openmetrics: Path,
    folder: Path,
    *,
    basic_auth_users: dict[str, str] | None = None,
    ready_auth: tuple[str, str] | None = None,
) -> RunningPrometheus:
    """Backfill `openmetrics` into a fresh TSDB under `folder` and serve it on loopback.

    `basic_auth_users` maps user names to bcrypt hashes for Prometheus' web config;
    `ready_auth` is what the readiness probe sends then. Skips (fails under CI=true)
    when the binaries are missing.
    """
    binary, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if binary is None or promtool is None:
        service_unavailable("prometheus", "install Debian's `prometheus` package")
    assert binary is not None and promtool is not None
    tsdb = folder / "tsdb"
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(tsdb)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (folder / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\n")
    arguments = [
        binary,
        f"--config.file={folder / 'prometheus.yml'}",
        f"--storage.tsdb.path={tsdb}",
        "--storage.tsdb.retention.time=100y",
        "--log.level=warn",
    ]
    if basic_auth_users:
        users = "".join(f"  {user}: '{hashed}'\n" for user, hashed in basic_auth_users.items())
        (folder / "web.yml").write_text(f"basic_auth_users:\n{users}")
        arguments.append(f"--web.config.file={folder / 'web.yml'}")
    port = free_port()
    arguments.append(f"--web.listen-address=127.0.0.1:{port}")
    log_path = folder / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(arguments, stdout=log, stderr=subprocess.STDOUT)
    server = RunningPrometheus(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"prometheus exited at start: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(f"{server.url}/-/ready", auth=ready_auth, timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"prometheus did not become ready within 60 s: {log_path.read_text()[-2000:]}")
