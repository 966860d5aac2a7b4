"""`harmony worker`: the Celery worker running training and backtest tasks from Redis."""

from __future__ import annotations

import socket

import typer

from controller.errors import HarmonyError
from controller.settings import get_settings


def worker(
    concurrency: int = typer.Option(
        2, min=1, max=64, help="Tasks this worker runs at once (one process each)."
    ),
) -> None:
    """Run a Celery worker on HARMONY_REDIS_URL (the chart's worker Deployment runs this)."""
    settings = get_settings()
    if not settings.redis_url:
        raise HarmonyError(
            "no broker: set HARMONY_REDIS_URL to run a worker (without it, training and "
            "backtests run in-process and no worker is needed)"
        )
    from controller.tasks import app

    app.worker_main(
        [
            "worker",
            f"--concurrency={concurrency}",
            f"--loglevel={settings.log_level}",
            f"--hostname=harmony@{socket.gethostname()}",
        ]
    )
