"""Engines and sessions for the state store, with errors a person can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from controller.errors import HarmonyError

SETTING = "HARMONY_DATABASE_URL"


def create_engine_for(url: str, **engine_options: Any) -> Engine:
    """An engine for `url`, or a `HarmonyError` naming the setting when the URL is malformed.

    SQLite files get their folder created and foreign keys switched on, so cascades
    behave as on PostgreSQL.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise HarmonyError(
            f"{SETTING} is not a database URL: {url!r}; use e.g. "
            "sqlite:////path/harmony.db or postgresql+psycopg://user@host:5432/harmony"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise HarmonyError(
            f"{SETTING} uses {backend!r}; Harmony supports sqlite and postgresql URLs"
        )
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {"future": True}
    if backend == "postgresql":
        options.update(pool_pre_ping=True, connect_args={"connect_timeout": 5})
    options.update(engine_options)
    try:
        engine = create_engine(parsed, **options)
    except NoSuchModuleError:
        raise HarmonyError(
            f"{SETTING} names driver {parsed.drivername!r}, which is not installed; "
            "use postgresql+psycopg:// or sqlite:///"
        ) from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def describe(engine: Engine) -> str:
    """The URL without its password, for messages."""
    return engine.url.render_as_string(hide_password=True)


def check_reachable(engine: Engine) -> None:
    """Raise a one-line `HarmonyError` when the database cannot be reached."""
    try:
        with engine.connect():
            pass
    except OperationalError as error:
        first_line = str(error.orig or error).strip().splitlines()[0]
        raise HarmonyError(
            f"cannot reach the database at {describe(engine)} ({first_line}); "
            f"check {SETTING} and that the server is running"
        ) from None


def require_current_schema(engine: Engine) -> None:
    """Refuse to run against a database whose schema is behind (or ahead of) this code."""
    from controller.state.migrate import current_revision, head_revision

    check_reachable(engine)
    current = current_revision(engine)
    head = head_revision()
    if current != head:
        found = current or "empty (no tables)"
        raise HarmonyError(
            f"the database at {describe(engine)} is at schema revision {found}, "
            f"this Harmony needs {head}: run `harmony db upgrade`"
        )


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())
