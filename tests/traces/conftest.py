"""Shared pieces of the trace tests: the real data folder and a per-session cache of loads."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controller.series import Series
from controller.traces import TraceOptions, load_trace

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the shared trace data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def cached_trace(shared_data: Path) -> Callable[[str], Series]:
    """Loads a trace with default options once per session; tests must not modify it."""
    loaded: dict[str, Series] = {}

    def load(spec: str) -> Series:
        if spec not in loaded:
            loaded[spec] = load_trace(spec, TraceOptions())
        return loaded[spec]

    return load
