"""Alembic environment: migrates the engine handed over by controller.state.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from controller.settings import get_settings
from controller.state.db import create_engine_for
from controller.state.models import Base

target_metadata = Base.metadata


def _engine() -> Engine:
    engine = context.config.attributes.get("engine")
    if isinstance(engine, Engine):
        return engine
    # Plain `alembic` invocations (no engine handed over) use the configured database.
    return create_engine_for(get_settings().database_url)


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
