"""The Alembic revisions build the schema the ORM models describe, up and down."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from controller.errors import HarmonyError
from controller.state import migrate
from controller.state.db import create_engine_for, require_current_schema, table_names
from controller.state.models import Base
from tests.conftest import PostgresServer

TABLES = [
    "actions",
    "alembic_version",
    "backtest_results",
    "backtest_runs",
    "calibration_posteriors",
    "decisions",
    "forecasts",
    "model_versions",
    "pools",
]


def schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_up_down_up_on_postgresql(postgres: PostgresServer) -> None:
    engine = create_engine_for(postgres.url_for(postgres.create()))
    migrate.upgrade(engine)
    assert table_names(engine) == TABLES
    assert migrate.current_revision(engine) == migrate.head_revision()

    migrate.downgrade(engine, "base")
    assert table_names(engine) == ["alembic_version"]
    assert migrate.current_revision(engine) is None

    migrate.upgrade(engine)
    assert table_names(engine) == TABLES
    assert schema_differences(engine) == []
    engine.dispose()


def test_models_and_migrations_agree(migrated_engine: Engine) -> None:
    assert schema_differences(migrated_engine) == []


def test_every_revision_steps_down_and_up_on_sqlite(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'walk.db'}")
    revisions = [revision for revision, _down, _message in migrate.history()]
    for revision in revisions:
        migrate.upgrade(engine, revision)
        assert migrate.current_revision(engine) == revision
    for revision in reversed(revisions):
        migrate.downgrade(engine, "-1")
        assert migrate.current_revision(engine) != revision
    assert table_names(engine) == ["alembic_version"]


def test_a_database_behind_is_refused_with_the_fix(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'old.db'}")
    with pytest.raises(HarmonyError, match=r"run `harmony db upgrade`"):
        require_current_schema(engine)
    migrate.upgrade(engine)
    require_current_schema(engine)


def test_unknown_revision_is_one_clear_error(tmp_path: Path) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(HarmonyError, match="migration to 'nope' failed"):
        migrate.upgrade(engine, "nope")
