"""Alembic, driven from code: the CLI, the tests and the Helm migration job all call this."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Engine

import migrations
from controller.errors import HarmonyError


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    # env.py uses this engine instead of building one from a URL string.
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    script = ScriptDirectory(str(Path(migrations.__file__).parent))
    head = script.get_current_head()
    if head is None:
        raise HarmonyError("no migrations found in the installed package; reinstall Harmony")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    _run(command.upgrade, engine, revision)


def downgrade(engine: Engine, revision: str) -> None:
    _run(command.downgrade, engine, revision)


def _run(step: Callable[[Config, str], None], engine: Engine, revision: str) -> None:
    try:
        step(alembic_config(engine), revision)
    except CommandError as error:
        raise HarmonyError(
            f"migration to {revision!r} failed: {error}; `harmony db history` lists revisions"
        ) from None


def history() -> list[tuple[str, str | None, str]]:
    """(revision, down_revision, message) from base to head."""
    script = ScriptDirectory(str(Path(migrations.__file__).parent))
    rows = []
    for rev in script.walk_revisions():
        down = rev.down_revision if isinstance(rev.down_revision, str) else None
        rows.append((rev.revision, down, rev.doc or ""))
    return list(reversed(rows))
