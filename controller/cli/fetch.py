"""`harmony trace fetch DATASET`: download a public trace once, checksum verified."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from controller.fetch import CLUSTERDATA, DATASETS, fetch_dataset

console = Console(stderr=True, highlight=False)


def fetch(
    dataset: Annotated[str, typer.Argument(help=f"What to download: {', '.join(DATASETS)}.")],
    base_url: Annotated[
        str, typer.Option("--base-url", help="Mirror of Alibaba's clusterdata repository.")
    ] = CLUSTERDATA,
) -> None:
    """Download a public trace into the data directory (once; SHA-256 verified)."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bars:
        task = bars.add_task(f"fetching {dataset}", total=None)

        def advance(done: int, total: int | None) -> None:
            bars.update(task, completed=done, total=total)

        files = fetch_dataset(dataset, base_url=base_url, progress=advance)
    for path, downloaded in files:
        verb = "downloaded and verified" if downloaded else "already present"
        typer.echo(f"{dataset}: {verb}: {path}")


def register(trace_app: typer.Typer) -> None:
    """Add `fetch` to the `harmony trace` group."""
    trace_app.command("fetch")(fetch)
