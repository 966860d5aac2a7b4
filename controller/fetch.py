"""Downloading public traces once into the user's data directory, checksum verified.

`harmony trace fetch gentd26` fetches GenTD26's request trace (what `make run` replays)
from Alibaba's public clusterdata repository into `<data_dir>/traces/`, the folder the
trace loaders read when HARMONY_DATA_DIR is set or `../shared/data` is absent. The file
is verified against the SHA-256 pinned here before it is kept (gzip-compressed, as the
loaders expect).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from controller.errors import HarmonyError
from controller.settings import get_settings
from controller.traces.paths import trace_data_root

CLUSTERDATA = "https://raw.githubusercontent.com/alibaba/clusterdata/master"
CLUSTERDATA_PAGE = "https://github.com/alibaba/clusterdata/tree/master/cluster-trace-v2026-GenAI"
_CHUNK = 1 << 16

Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


@dataclass(frozen=True)
class RemoteFile:
    """One published file: where it is upstream, its checksum, and where it is kept.

    remote: path under the base URL. sha256/size: of the file as published.
    local: path under `<data_dir>/traces/` (gzip-compressed copy).
    """

    remote: str
    sha256: str
    size: int
    local: str


DATASETS: dict[str, tuple[RemoteFile, ...]] = {
    "gentd26": (
        RemoteFile(
            remote="cluster-trace-v2026-GenAI/lora_request_trace.csv",
            sha256="263fb88f1095f62d360cf89ded8cfc24fa2c5d111c1b16e7aaa9ccbfc4b37d78",
            size=2_012_418,
            local="alibaba-gentd26/lora_request_trace.csv.gz",
        ),
    ),
}


def traces_dir() -> Path:
    return get_settings().data_dir / "traces"


def fetch_dataset(
    name: str,
    *,
    base_url: str = CLUSTERDATA,
    destination: Path | None = None,
    progress: Progress | None = None,
    timeout_seconds: float = 30.0,
) -> list[tuple[Path, bool]]:
    """Download every file of dataset `name` that the trace loaders cannot find yet.

    Returns `(path, downloaded)` per file; a file already under the loaders' data root
    (`../shared/data` in a development checkout) or under `destination` is not fetched.
    """
    files = DATASETS.get(name)
    if files is None:
        raise HarmonyError(f"unknown dataset {name!r}; fetchable: {', '.join(DATASETS)}")
    root = destination or traces_dir()
    done = []
    for remote in files:
        target = root / remote.local
        present = [target] if destination else [trace_data_root() / remote.local, target]
        found = next((path for path in present if path.is_file()), None)
        if found is not None:
            done.append((found, False))
            continue
        _download(remote, base_url.rstrip("/"), target, progress, timeout_seconds)
        done.append((target, True))
    return done


def _download(
    remote: RemoteFile, base_url: str, target: Path, progress: Progress | None, timeout: float
) -> None:
    url = f"{base_url}/{remote.remote}"
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    received = 0
    with tempfile.NamedTemporaryFile(dir=target.parent, suffix=".part", delete=False) as raw:
        raw_path = Path(raw.name)
        try:
            with httpx.stream("GET", url, follow_redirects=True, timeout=timeout) as response:
                if response.status_code != 200:
                    raise HarmonyError(
                        f"cannot download {url}: HTTP {response.status_code}; "
                        f"{_manual_hint(remote, target)}"
                    )
                length = response.headers.get("content-length")
                total = int(length) if length and length.isdigit() else remote.size
                for chunk in response.iter_bytes(_CHUNK):
                    raw.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if progress is not None:
                        progress(received, total)
        except httpx.HTTPError as error:
            raw_path.unlink(missing_ok=True)
            raise HarmonyError(
                f"cannot download {url} ({type(error).__name__}: {error or 'no detail'}); "
                f"offline? {_manual_hint(remote, target)}"
            ) from None
        except BaseException:
            raw_path.unlink(missing_ok=True)
            raise
    if digest.hexdigest() != remote.sha256:
        raw_path.unlink(missing_ok=True)
        raise HarmonyError(
            f"{url}: checksum mismatch (sha256 {digest.hexdigest()[:16]}…, expected "
            f"{remote.sha256[:16]}…, {received} bytes); nothing was kept. Try again, or "
            f"{_manual_hint(remote, target)}"
        )
    try:
        compressed = target.with_name(target.name + ".part")
        with raw_path.open("rb") as source, gzip.open(compressed, "wb") as sink:
            shutil.copyfileobj(source, sink)
        os.replace(compressed, target)
    finally:
        raw_path.unlink(missing_ok=True)


def _manual_hint(remote: RemoteFile, target: Path) -> str:
    name = Path(remote.remote).name
    return (
        f"download {name} from {CLUSTERDATA_PAGE} yourself and save it gzip-compressed as {target}"
    )


def sha256_of(path: Path) -> str:
    """SHA-256 of a file's bytes (of the decompressed content for `.gz`)."""
    digest = hashlib.sha256()
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        for block in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
