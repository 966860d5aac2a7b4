"""A per-session cache of trace loads (`shared_data` comes from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controller.series import Series
from controller.traces import TraceOptions, load_trace


@pytest.fixture(scope="session")
def cached_trace(shared_data: Path) -> Callable[[str], Series]:
    """Loads a trace with default options once per session; tests must not modify it."""
    loaded: dict[str, Series] = {}

    def load(spec: str) -> Series:
        if spec not in loaded:
            loaded[spec] = load_trace(spec, TraceOptions())
        return loaded[spec]

    return load
