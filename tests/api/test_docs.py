"""/docs and /redoc work in an air-gapped cluster: every asset they load is served by the
API itself, from the fastapi-offline package, and none comes from another host."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

SQLITE_ONLY = pytest.mark.parametrize("migrated_engine", ["sqlite"], indirect=True)
ASSET = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']""")
CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@SQLITE_ONLY
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_reference_no_other_host_and_their_assets_load(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", html, re.IGNORECASE), html
    assets = ASSET.findall(html)
    assert any(asset.endswith(".js") for asset in assets), assets
    for asset in assets:
        assert asset.startswith("/"), asset
        loaded = client.get(asset)
        assert loaded.status_code == 200, asset
        assert len(loaded.content) > 0
        expected = next((kind for end, kind in CONTENT_TYPES.items() if asset.endswith(end)), "")
        assert expected in loaded.headers["content-type"], (asset, loaded.headers)


@SQLITE_ONLY
def test_swagger_ui_is_a_current_one_that_reads_openapi_3_1(client: TestClient) -> None:
    # FastAPI writes OpenAPI 3.1, which Swagger UI renders from version 5 on.
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    bundle = client.get("/vendor/docs/swagger-ui-bundle.js").text
    assert re.search(r'"5\.\d+\.\d+"', bundle)
    assert '"validatorUrl": null' in client.get("/docs").text  # no call to validator.swagger.io
