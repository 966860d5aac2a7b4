"""`harmony trace fetch`: download from a local file server (never the internet), verified."""

from __future__ import annotations

import functools
import gzip
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.cli.main import main
from controller.errors import HarmonyError
from controller.fetch import DATASETS, fetch_dataset, sha256_of

REMOTE = DATASETS["gentd26"][0]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An http.server on loopback serving `tmp_path/www`; yields (base URL, folder)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def publish(root: Path, content: bytes) -> None:
    target = root / REMOTE.remote
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)


def test_download_is_verified_and_kept_gzipped(
    mirror: tuple[str, Path], shared_data: Path, tmp_path: Path
) -> None:
    base_url, root = mirror
    with gzip.open(shared_data / "alibaba-gentd26" / "lora_request_trace.csv.gz", "rb") as real:
        publish(root, real.read())
    destination = tmp_path / "traces"
    seen: list[tuple[int, int | None]] = []
    files = fetch_dataset(
        "gentd26",
        base_url=base_url,
        destination=destination,
        progress=lambda done, total: seen.append((done, total)),
    )
    target = destination / REMOTE.local
    assert files == [(target, True)]
    assert sha256_of(target) == REMOTE.sha256
    assert seen[-1] == (REMOTE.size, REMOTE.size)
    assert not list(target.parent.glob("*.part"))
    # A second call finds the file and downloads nothing.
    (root / REMOTE.remote).unlink()
    assert fetch_dataset("gentd26", base_url=base_url, destination=destination) == [(target, False)]


def test_checksum_mismatch_keeps_nothing(mirror: tuple[str, Path], tmp_path: Path) -> None:
    base_url, root = mirror
    publish(root, b"gmt_create,exec_time_seconds\n2024-11-15 16:57:50,32.0\n")
    destination = tmp_path / "traces"
    with pytest.raises(HarmonyError, match="checksum mismatch") as caught:
        fetch_dataset("gentd26", base_url=base_url, destination=destination)
    assert "\n" not in str(caught.value)
    assert not any(path.is_file() for path in destination.rglob("*"))


def test_missing_upstream_file_says_where_to_put_it(
    mirror: tuple[str, Path], tmp_path: Path
) -> None:
    base_url, _ = mirror
    destination = tmp_path / "traces"
    with pytest.raises(HarmonyError, match="HTTP 404") as caught:
        fetch_dataset("gentd26", base_url=base_url, destination=destination)
    assert str(destination / REMOTE.local) in str(caught.value)


def test_offline_cli_prints_one_line_with_the_place_for_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # An (empty) data dir of its own, as on a machine without the shared data.
    monkeypatch.setenv("HARMONY_DATA_DIR", str(tmp_path / "empty"))
    code = main(["trace", "fetch", "gentd26", "--base-url", f"http://127.0.0.1:{port}"])
    error = capsys.readouterr().err.strip()
    assert code == 1
    assert len(error.splitlines()) == 1
    assert "cannot download" in error and "lora_request_trace.csv.gz" in error


def test_cli_reports_a_file_already_present(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["trace", "fetch", "gentd26"])
    out = capsys.readouterr().out
    assert code == 0
    assert "already present" in out


def test_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(HarmonyError, match="unknown dataset 'gentd27'; fetchable: gentd26"):
        fetch_dataset("gentd27", destination=tmp_path)
