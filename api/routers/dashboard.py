"""The dashboard: a static page at `/`, its script, and plotly.js from the `plotly` package."""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

STATIC = Path(__file__).resolve().parents[1] / "static"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
# plotly injects <style> elements, hence 'unsafe-inline' for styles only
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def index() -> HTMLResponse:
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    return HTMLResponse(page, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


@router.get("/static/{name}")
def static_file(name: str) -> FileResponse:
    from api.errors import ApiError

    allowed = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
    if name not in allowed:
        raise ApiError(404, f"no static file {name!r}", "path.name")
    return FileResponse(
        STATIC / name, media_type=allowed[name], headers={"Cache-Control": "no-cache"}
    )


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(
        PLOTLY_JS,
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )
