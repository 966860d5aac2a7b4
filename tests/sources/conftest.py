"""A real Prometheus (Debian's `prometheus` package) filled with a slice of a real trace.

The fixture writes the first two days of `fisher:container1` as OpenMetrics, turns it into
TSDB blocks with `promtool tsdb create-blocks-from openmetrics`, and starts `prometheus` on
a free loopback port over that TSDB, with basic auth on. Some series are altered on purpose
(a one-hour hole, NaN values, a second container) so that partial answers can be tested.
Missing binaries skip the tests with a reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import datetime as dt
import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import httpx
import numpy as np
import pytest

from controller.series import Series
from controller.traces import TraceOptions, load_trace
from tests.prometheus import start_prometheus

USER = "harmony"
PASSWORD = "harmony-test-password"
# bcrypt (cost 4, to keep the server's check fast) of PASSWORD, for Prometheus' web config.
PASSWORD_HASH = "$2b$04$hIePWt8ItPbeIR27o5BYP.OxCMdPZFaKFqvL6mhcdAJ6fxAlWB/ii"
SLICE_ROWS = 288  # two days of 10-minute rows
HOLE = slice(100, 106)  # one hour missing from harmony_test_load_gappy
NAN_ROWS = (50, 51, 52)  # NaN in harmony_test_load_nan


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    trace: Series  # the slice written, on its 10-minute grid
    other: Series  # the same slice of fisher:container2 (a second series of one metric)


def _samples(name: str, labels: str, series: Series, column: str, skip: slice | None = None):
    values = series.column(column).copy()
    stamps = series.timestamps()
    rows = range(len(series))
    for row in rows:
        if skip is not None and skip.start <= row < skip.stop:
            continue
        value = values[row]
        text = "NaN" if np.isnan(value) else repr(float(value))
        yield f"{name}{{{labels}}} {text} {stamps[row]:.0f}"


def write_openmetrics(path: Path, trace: Series, other: Series) -> None:
    nan_trace = trace.with_values(trace.values.copy())
    nan_trace.values[list(NAN_ROWS), trace.names.index("load")] = np.nan
    lines: list[str] = ["# TYPE harmony_test_load gauge"]
    lines += _samples("harmony_test_load", 'container="1"', trace, "load")
    lines += _samples("harmony_test_load", 'container="2"', other, "load")
    lines += ["# TYPE harmony_test_cpu_busy gauge"]
    lines += _samples("harmony_test_cpu_busy", 'container="1"', trace, "cpu.busy")
    lines += ["# TYPE harmony_test_load_gappy gauge"]
    lines += _samples("harmony_test_load_gappy", 'container="1"', trace, "load", HOLE)
    lines += ["# TYPE harmony_test_load_nan gauge"]
    lines += _samples("harmony_test_load_nan", 'container="1"', nan_trace, "load")
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="session")
def prometheus_server(
    shared_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    trace = load_trace("fisher:container1", TraceOptions()).slice(0, SLICE_ROWS)
    other = load_trace("fisher:container2", TraceOptions()).slice(0, SLICE_ROWS)
    folder = tmp_path_factory.mktemp("prometheus")
    openmetrics = folder / "slice.om"
    write_openmetrics(openmetrics, trace, other)
    server = start_prometheus(
        openmetrics,
        folder,
        basic_auth_users={USER: PASSWORD_HASH},
        ready_auth=(USER, PASSWORD),
    )
    try:
        yield PrometheusServer(url=server.url, trace=trace, other=other)
    finally:
        server.stop()


class _Proxy(http.server.BaseHTTPRequestHandler):
    """Fails the first `failures` requests with 503, demands `token` if set, then forwards."""

    upstream = ""
    failures = 0
    token: str | None = None
    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        cls = type(self)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        cls.seen.append(self.headers.get("Authorization", ""))
        if cls.failures > 0:
            cls.failures -= 1
            self._reply(503, b'{"status":"error","error":"overloaded (test proxy)"}')
            return
        if cls.token is not None and self.headers.get("Authorization") != f"Bearer {cls.token}":
            self._reply(401, b"Unauthorized\n")
            return
        upstream = httpx.post(
            cls.upstream + self.path,
            content=body,
            headers={"Content-Type": self.headers.get("Content-Type", "")},
            auth=(USER, PASSWORD),
            timeout=10,
        )
        self._reply(upstream.status_code, upstream.content)

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class ProxyControl:
    url: str
    handler: type[_Proxy]


@pytest.fixture
def proxy(prometheus_server: PrometheusServer) -> Iterator[ProxyControl]:
    """A loopback HTTP front of the real Prometheus that can fail or demand a token."""
    handler = type("Proxy", (_Proxy,), {"upstream": prometheus_server.url, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield ProxyControl(url=f"http://127.0.0.1:{server.server_address[1]}", handler=handler)
    finally:
        server.shutdown()
        server.server_close()


def on_grid(series: Series, row: int) -> dt.datetime:
    return series.start + series.step * row
