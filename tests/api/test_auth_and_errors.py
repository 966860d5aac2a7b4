"""Bearer tokens with read/admin scopes, one error shape, size limits, CORS, health."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Engine

from api.app import create_app
from api.deps import Scope, parse_tokens
from controller.cli.main import main
from controller.clock import ManualClock
from controller.state.db import create_engine_for, make_session_factory
from tests.api.conftest import ADMIN, READ, api_settings
from tests.api.seed import NOW

# The queries are exercised on both dialects in test_pools; auth and errors on SQLite.
SQLITE_ONLY = pytest.mark.parametrize("migrated_engine", ["sqlite"], indirect=True)
VALID_SPEC = {"trace": "fisher:container1", "policies": ["static"]}


def _error(response: object) -> dict[str, object]:
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message", "field", "problems"}
    assert body["error"]["status"] == response.status_code  # type: ignore[attr-defined]
    return dict(body["error"])


def test_token_scopes_are_parsed_from_prefixes() -> None:
    tokens = [SecretStr("plain"), SecretStr("admin:boss"), SecretStr("read:viewer")]
    assert parse_tokens(tokens) == [
        ("plain", Scope.read),
        ("boss", Scope.admin),
        ("viewer", Scope.read),
    ]


@SQLITE_ONLY
def test_no_token_is_401_and_unknown_token_is_401(client: TestClient) -> None:
    missing = client.get("/api/v1/pools")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    error = _error(missing)
    assert error["field"] == "header.Authorization" and "missing bearer token" in str(
        error["message"]
    )
    wrong = client.get("/api/v1/pools", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert _error(wrong)["message"] == "unknown bearer token"


@SQLITE_ONLY
def test_read_token_cannot_post_admin_can(client: TestClient) -> None:
    assert client.get("/api/v1/pools", headers=ADMIN).status_code == 200
    refused = client.post("/api/v1/backtests", json=VALID_SPEC, headers=READ)
    assert refused.status_code == 403
    assert "needs admin" in str(_error(refused)["message"])
    retrain = client.post("/api/v1/pools/gpu/a100-train/retrain", headers=READ)
    assert retrain.status_code == 403


@SQLITE_ONLY
def test_no_configured_tokens_refuses_every_api_call(seeded_engine: Engine) -> None:
    settings = api_settings(seeded_engine, api_tokens=[])
    app = create_app(settings, make_session_factory(seeded_engine), ManualClock(NOW))
    with TestClient(app) as client:
        response = client.get("/api/v1/pools", headers=READ)
        assert response.status_code == 401
        assert "HARMONY_API_TOKENS" in str(_error(response)["message"])
        assert client.get("/healthz").status_code == 200


@SQLITE_ONLY
def test_validation_errors_name_the_field(client: TestClient) -> None:
    response = client.get("/api/v1/pools", params={"limit": 0}, headers=READ)
    assert response.status_code == 422
    error = _error(response)
    assert error["field"] == "query.limit"
    assert str(error["message"]).startswith("query.limit: ")
    bad_cursor = client.get("/api/v1/pools", params={"cursor": "garbage"}, headers=READ)
    assert _error(bad_cursor)["field"] == "query.cursor"
    naive = client.get(
        "/api/v1/pools/gpu/a100-train/decisions",
        params={"since": "2024-05-01T00:00:00"},
        headers=READ,
    )
    assert naive.status_code == 422 and _error(naive)["field"] == "query.since"
    spec = client.post("/api/v1/backtests", json={**VALID_SPEC, "sla": 2}, headers=ADMIN)
    assert spec.status_code == 422 and _error(spec)["field"] == "body.sla"
    policy = client.post(
        "/api/v1/backtests", json={**VALID_SPEC, "policies": ["magic"]}, headers=ADMIN
    )
    assert _error(policy)["field"] == "body.policies[0]"
    not_json = client.post(
        "/api/v1/backtests",
        content=b"{not json",
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert not_json.status_code == 422 and "not valid JSON" in str(_error(not_json)["message"])


@SQLITE_ONLY
def test_trace_files_on_the_server_are_not_accepted(client: TestClient) -> None:
    response = client.post(
        "/api/v1/backtests", json={**VALID_SPEC, "trace": "csv:etc.passwd"}, headers=ADMIN
    )
    assert response.status_code == 422
    assert _error(response)["field"] == "body.trace"
    unknown = client.post(
        "/api/v1/backtests", json={**VALID_SPEC, "trace": "nosuch:thing"}, headers=ADMIN
    )
    assert "unknown trace kind 'nosuch'" in str(_error(unknown)["message"])


@SQLITE_ONLY
def test_large_bodies_are_refused(client: TestClient) -> None:
    big = {"trace": "fisher:container1", "demand_column": "x" * 70_000}
    response = client.post("/api/v1/backtests", json=big, headers=ADMIN)
    assert response.status_code == 413
    assert _error(response)["code"] == "request_too_large"

    def chunks():  # no Content-Length: the body is counted as it streams
        for _ in range(20):
            yield b" " * 4096

    streamed = client.post(
        "/api/v1/backtests", content=chunks(), headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


@SQLITE_ONLY
def test_unknown_route_has_the_error_shape(client: TestClient) -> None:
    response = client.get("/api/v1/nothing", headers=READ)
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


@SQLITE_ONLY
def test_cors_is_off_unless_configured(seeded_engine: Engine, client: TestClient) -> None:
    origin = {"Origin": "https://dash.example", "Access-Control-Request-Method": "GET"}
    assert (
        "access-control-allow-origin" not in client.options("/api/v1/pools", headers=origin).headers
    )
    settings = api_settings(seeded_engine, api_cors_origins=["https://dash.example"])
    app = create_app(settings, make_session_factory(seeded_engine), ManualClock(NOW))
    with TestClient(app) as allowed:
        preflight = allowed.options("/api/v1/pools", headers=origin)
        assert preflight.headers["access-control-allow-origin"] == "https://dash.example"


@SQLITE_ONLY
def test_health_and_readiness(client: TestClient, tmp_path: Path) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    empty = create_engine_for(f"sqlite:///{tmp_path / 'empty.db'}")
    app = create_app(api_settings(empty), make_session_factory(empty), ManualClock(NOW))
    with TestClient(app) as not_ready:
        response = not_ready.get("/readyz")
        assert response.status_code == 503
        assert "harmony db upgrade" in str(_error(response)["message"])


@SQLITE_ONLY
def test_retrain_of_a_spec_that_cannot_be_trained_is_409_naming_the_field(
    client: TestClient,
) -> None:
    response = client.post("/api/v1/pools/gpu/a100-train/retrain", headers=ADMIN)
    assert response.status_code == 409
    message = str(_error(response)["message"])
    assert message.startswith("pool gpu/a100-train cannot be trained: spec.target")
    assert client.post("/api/v1/pools/gpu/nope/retrain", headers=ADMIN).status_code == 404


@SQLITE_ONLY
def test_retrain_is_queued_in_process_and_its_failure_is_logged(
    seeded_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy import func, select

    from controller.state.models import ModelVersion, Pool
    from tests.operator.helpers import pool_spec_document

    sessions = make_session_factory(seeded_engine)
    with sessions.begin() as db:
        pool = db.scalar(select(Pool).where(Pool.name == "h100-infer"))
        assert pool is not None
        # Trainable, but its Prometheus (port 9, discard) answers nothing.
        pool.spec = pool_spec_document(prometheus={"url": "http://127.0.0.1:9", "timeout": "1s"})
    app = create_app(api_settings(seeded_engine), sessions, ManualClock(NOW))
    with TestClient(app) as client:
        response = client.post("/api/v1/pools/gpu/h100-infer/retrain", headers=ADMIN)
        assert response.status_code == 202, response.text
        assert response.json()["queued"] is True
        assert response.json()["task_id"].startswith("local-")
        app.state.harmony.backtests.wait(timeout=60)
    failures = [r for r in caplog.records if "background job" in r.getMessage()]
    assert failures and "train_stored_pool" in failures[0].getMessage()
    with sessions() as db:
        assert db.scalar(select(func.count()).select_from(ModelVersion)) == 0


@SQLITE_ONLY
def test_dashboard_and_plotly_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and '<ul id="pools">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    plotly_js = client.get("/vendor/plotly.min.js")
    assert plotly_js.status_code == 200 and b"plotly.js v" in plotly_js.content[:200]
    assert client.get("/static/dashboard.js").status_code == 200
    assert client.get("/static/..%2Fapp.py").status_code == 404
    assert client.get("/openapi.json").json()["info"]["title"] == "Harmony"


def test_harmony_api_refuses_to_start_without_tokens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HARMONY_API_TOKENS", "")
    assert main(["api", "--port", "1"]) == 1
    assert "HARMONY_API_TOKENS" in capsys.readouterr().err
