"""The API over a real, migrated state store (SQLite and PostgreSQL), with seeded pools."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from api.app import create_app
from controller.clock import ManualClock
from controller.settings import Settings
from controller.state.db import make_session_factory
from tests.api.seed import NOW, seed_pool

READ_TOKEN = "read-token-123"
ADMIN_TOKEN = "admin-token-456"
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def api_settings(engine: Engine, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": engine.url.render_as_string(hide_password=False),
        "api_tokens": [SecretStr(READ_TOKEN), SecretStr(f"admin:{ADMIN_TOKEN}")],
        "redis_url": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def seeded_engine(migrated_engine: Engine) -> Engine:
    """Three live pools in two namespaces and a deleted one."""
    sessions = make_session_factory(migrated_engine)
    with sessions.begin() as db:
        seed_pool(db, "gpu", "a100-train")
        seed_pool(db, "gpu", "h100-infer", steps=60, with_forecast=False)
        seed_pool(db, "research", "l4-batch", steps=30)
        seed_pool(db, "research", "old-pool", steps=5, deleted=True)
    return migrated_engine


@pytest.fixture
def client(seeded_engine: Engine) -> Iterator[TestClient]:
    app = create_app(
        api_settings(seeded_engine), make_session_factory(seeded_engine), ManualClock(NOW)
    )
    with TestClient(app) as test_client:
        yield test_client


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serve_api(seeded_engine: Engine) -> Iterator[str]:
    """The API and dashboard over `seeded_engine` served by uvicorn on a free loopback
    port; its base URL."""
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


@pytest.fixture
def served_dashboard(seeded_engine: Engine) -> Iterator[str]:
    """The seeded API and dashboard, served; its base URL."""
    with serve_api(seeded_engine) as url:
        yield url
