"""`harmony db …`: the state store's schema and housekeeping."""

from __future__ import annotations

import datetime as dt

import typer
from rich.console import Console
from rich.table import Table

from controller.clock import SystemClock
from controller.settings import get_settings
from controller.state import migrate
from controller.state.db import (
    check_reachable,
    create_engine_for,
    describe,
    make_session_factory,
    require_current_schema,
)
from controller.state.retention import prune_old_rows

app = typer.Typer(help="Create, upgrade and inspect the state store.", no_args_is_help=True)
console = Console(highlight=False, soft_wrap=True)


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Bring the database schema up to REVISION (default: the newest)."""
    engine = create_engine_for(get_settings().database_url)
    check_reachable(engine)
    before = migrate.current_revision(engine)
    migrate.upgrade(engine, revision)
    after = migrate.current_revision(engine)
    if before == after:
        console.print(f"database {describe(engine)} already at revision {after}")
    else:
        console.print(f"database {describe(engine)} upgraded {before or 'base'} → {after}")


@app.command()
def downgrade(revision: str = typer.Argument(..., help="Target revision, or 'base'.")) -> None:
    """Take the database schema back to REVISION."""
    engine = create_engine_for(get_settings().database_url)
    check_reachable(engine)
    migrate.downgrade(engine, revision)
    after = migrate.current_revision(engine)
    console.print(f"database {describe(engine)} now at revision {after or 'base'}")


@app.command()
def current() -> None:
    """Print the database's schema revision and whether it is the newest."""
    engine = create_engine_for(get_settings().database_url)
    check_reachable(engine)
    revision = migrate.current_revision(engine)
    head = migrate.head_revision()
    state = "up to date" if revision == head else f"behind {head}: run `harmony db upgrade`"
    console.print(f"{describe(engine)}: {revision or 'empty'} ({state})")


@app.command()
def history() -> None:
    """List the schema revisions, oldest first."""
    table = Table("revision", "revises", "description")
    for revision, down, message in migrate.history():
        table.add_row(revision, down or "-", message)
    console.print(table)


@app.command()
def prune(
    batch_size: int = typer.Option(5000, min=1, help="Rows deleted per transaction."),
) -> None:
    """Delete rows older than HARMONY_RETENTION_DAYS."""
    settings = get_settings()
    engine = create_engine_for(settings.database_url)
    require_current_schema(engine)
    report = prune_old_rows(
        make_session_factory(engine),
        SystemClock(),
        dt.timedelta(days=settings.retention_days),
        batch_size=batch_size,
    )
    table = Table("table", "rows deleted", title=f"older than {report.cutoff:%Y-%m-%d %H:%M} UTC")
    for name, count in report.deleted.items():
        table.add_row(name, str(count))
    console.print(table)
