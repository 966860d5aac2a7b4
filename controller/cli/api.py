"""`harmony api`: serve the REST API and the dashboard with uvicorn."""

from __future__ import annotations

import typer
from rich.console import Console

from controller.errors import HarmonyError
from controller.settings import get_settings

console = Console(stderr=True, highlight=False, soft_wrap=True)


def api(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 in a pod)."),
    port: int = typer.Option(8080, min=1, max=65535, help="Port to listen on."),
) -> None:
    """Serve the REST API (/api/v1, /docs) and the dashboard (/) over the state store."""
    import uvicorn

    from api.app import create_app
    from controller.state.db import describe

    settings = get_settings()
    if not settings.api_tokens:
        raise HarmonyError(
            "no API tokens: set HARMONY_API_TOKENS to a comma-separated list "
            "(prefix a token with `admin:` to let it start backtests and retraining)"
        )
    app = create_app(settings)
    engine = app.state.harmony.sessions.kw["bind"]
    console.print(f"Harmony API on http://{host}:{port}/ (docs at /docs) over {describe(engine)}")
    uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower(), access_log=False)
