"""`harmony api`: serve the REST API and the dashboard with uvicorn."""

from __future__ import annotations

import typer
from rich.console import Console

from controller.errors import HarmonyError
from controller.settings import get_settings

console = Console(stderr=True, highlight=False, soft_wrap=True)


def api(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 in a pod)."),
    port: int = typer.Option(
        8000, min=1, max=65535, help="Port to listen on (the operator's health port is 8080)."
    ),
    workers: int = typer.Option(
        1, min=1, max=64, help="Server processes (each with its own connection pool)."
    ),
) -> None:
    """Serve the REST API (/api/v1, /docs) and the dashboard (/) over the state store."""
    import uvicorn

    from controller.state.db import create_engine_for, describe

    settings = get_settings()
    if not settings.api_tokens:
        raise HarmonyError(
            "no API tokens: set HARMONY_API_TOKENS to a comma-separated list "
            "(prefix a token with `admin:` to let it start backtests and retraining)"
        )
    engine = create_engine_for(settings.database_url)  # a bad URL fails here, in one line
    console.print(
        f"Harmony API on http://{host}:{port}/ (docs at /docs) over {describe(engine)}"
        + (f", {workers} worker processes" if workers > 1 else "")
    )
    uvicorn.run(
        "api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
