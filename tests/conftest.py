"""Fixtures for the real services the tests use: PostgreSQL, Redis and the state store.

A service that cannot be reached skips its tests with a reason naming the service,
except under CI=true, where every service must be there and its absence fails.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from controller.settings import get_settings
from controller.state import migrate
from controller.state.db import create_engine_for

ON_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get(
    "HARMONY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("HARMONY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def service_unavailable(service: str, why: str) -> None:
    """Skip (developer machine) or fail (CI) a test whose real service is missing."""
    message = f"{service} is not available: {why}"
    if ON_CI:
        pytest.fail(f"{message} (CI=true: every service must run)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real traces beside the project (always present on CI)."""
    if not SHARED_DATA.is_dir():
        service_unavailable("../shared/data", f"{SHARED_DATA} is missing")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _fresh_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Each test reads settings anew, with the data directory in a temporary folder
    whose `traces` is the shared data."""
    data_dir = tmp_path_factory.mktemp("harmony-data")
    if SHARED_DATA.is_dir():
        # HARMONY_DATA_DIR wins over ../shared/data, so the traces are linked in
        (data_dir / "traces").symlink_to(SHARED_DATA, target_is_directory=True)
    monkeypatch.setenv("HARMONY_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HARMONY_MODEL_DIR", str(data_dir / "models"))
    monkeypatch.setenv("HARMONY_DATABASE_URL", f"sqlite:///{data_dir / 'harmony.db'}")
    get_settings.cache_clear()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    get_settings.cache_clear()
    # The CLI configures logging when a test calls it in-process; later tests get it back.
    root.handlers[:] = handlers
    root.setLevel(level)


def _admin_engine() -> Engine:
    return create_engine(
        make_url(POSTGRES_URL), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )


class PostgresServer:
    """Creates and drops databases of this test session on the real server."""

    def __init__(self, admin: Engine, prefix: str) -> None:
        self.admin = admin
        self.prefix = prefix
        self.created: list[str] = []

    def url_for(self, database: str) -> str:
        return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)

    def create(self, template: str | None = None) -> str:
        name = f"{self.prefix}_{len(self.created)}"
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        with self.admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        if name in self.created:
            self.created.remove(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    admin = _admin_engine()
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        service_unavailable("PostgreSQL", f"{POSTGRES_URL}: {str(error.orig).strip()}")
    server = PostgresServer(admin, f"harmony_test_{uuid.uuid4().hex[:10]}")
    yield server
    for name in list(server.created):
        server.drop(name)
    admin.dispose()


@pytest.fixture(scope="session")
def postgres_url(postgres: PostgresServer) -> Iterator[str]:
    """A database of its own for this test session (empty: no migrations applied)."""
    name = postgres.create()
    yield postgres.url_for(name)
    postgres.drop(name)


@pytest.fixture(scope="session")
def _migrated_postgres_template(postgres: PostgresServer) -> str:
    name = postgres.create()
    engine = create_engine_for(postgres.url_for(name))
    migrate.upgrade(engine)
    engine.dispose()
    return name


@pytest.fixture(params=["sqlite", "postgresql"])
def migrated_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A state store at the newest schema, fresh for each test, on SQLite and PostgreSQL."""
    if request.param == "sqlite":
        engine = create_engine_for(f"sqlite:///{tmp_path / 'state.db'}")
        migrate.upgrade(engine)
        yield engine
        engine.dispose()
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    template = request.getfixturevalue("_migrated_postgres_template")
    name = server.create(template=template)
    engine = create_engine_for(server.url_for(name))
    yield engine
    engine.dispose()
    server.drop(name)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The real Redis, database 15, emptied before use."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.flushdb()
    except redis.RedisError as error:
        service_unavailable("Redis", f"{REDIS_URL}: {error}")
    finally:
        client.close()
    return REDIS_URL
