"""Bad input gets a 422 naming the field and the fix, never a 500 (real PostgreSQL, which
refuses NUL in text, and whose driver gets the datetimes the API computes)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.pagination import encode_cursor
from api.schemas.inputs import EARLIEST_TIME, LATEST_TIME, escape_control_characters
from tests.api.conftest import ADMIN, READ

POSTGRES_ONLY = pytest.mark.parametrize("migrated_engine", ["postgresql"], indirect=True)
POOL = "/api/v1/pools/gpu/a100-train"
# A trace of a known kind whose file does not exist: a run it starts fails at once.
CHEAP_SPEC = {"trace": "fisher:container999", "policies": ["static"]}


def _refused(response: Any, field: str, words: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert words in error["message"] and "\n" not in error["message"]


@POSTGRES_ONLY
@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/v1/pools", {"namespace": "\x00"}, "query.namespace"),
        ("/api/v1/pools", {"namespace": "gpu\x1b[2J"}, "query.namespace"),
        ("/api/v1/pools", {"cursor": "\x00"}, "query.cursor"),
        ("/api/v1/backtests", {"cursor": "a\x00"}, "query.cursor"),
        (f"{POOL}/decisions", {"cursor": "\x85"}, "query.cursor"),
    ],
)
def test_control_characters_in_parameters_are_422(
    client: TestClient, path: str, params: dict[str, str], field: str
) -> None:
    response = client.get(path, params=params, headers=READ)
    _refused(response, field, "must not contain control characters")


@POSTGRES_ONLY
def test_control_characters_in_the_body_are_422(client: TestClient) -> None:
    for column in ("a\x00b", "load\n", "\x7f"):
        spec = {**CHEAP_SPEC, "demand_column": column}
        response = client.post("/api/v1/backtests", json=spec, headers=ADMIN)
        _refused(response, "body.demand_column", "send printable text")
    lone_surrogate = b'{"trace": "fisher:container1", "demand_column": "a\\ud800"}'
    response = client.post(
        "/api/v1/backtests",
        content=lone_surrogate,
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    assert response.status_code == 422 and response.json()["error"]["field"] == "body.demand_column"


@POSTGRES_ONLY
@pytest.mark.parametrize(
    ("member", "field"),
    [
        ('"sla": NaN', "body.sla"),
        ('"scale": Infinity', "body.scale"),
        ('"seed": 1e400', "body.seed"),
    ],
)
def test_numbers_json_cannot_carry_are_422(client: TestClient, member: str, field: str) -> None:
    # Python's JSON parser takes NaN and Infinity; no HTTP client library sends them.
    raw = f'{{"trace": "fisher:container999", {member}}}'.encode()
    response = client.post(
        "/api/v1/backtests", content=raw, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["error"]["field"] == field


@POSTGRES_ONLY
def test_unicode_that_is_printable_is_accepted(client: TestClient) -> None:
    response = client.get("/api/v1/pools", params={"namespace": "été-😀"}, headers=READ)
    assert response.status_code == 200 and response.json()["items"] == []


@POSTGRES_ONLY
@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (f"{POOL}/history", {"until": "0001-01-01T00:00:00Z"}, "query.until"),
        (f"{POOL}/savings", {"until": "0001-01-01T00:30:00Z"}, "query.until"),
        (f"{POOL}/decisions", {"since": "0001-01-01T00:00:00+05:00"}, "query.since"),
        (f"{POOL}/actions", {"until": "9999-12-31T23:59:59-05:00"}, "query.until"),
        (f"{POOL}/history", {"since": "9999-12-31T23:59:59Z"}, "query.since"),
    ],
)
def test_times_out_of_range_are_422(
    client: TestClient, path: str, params: dict[str, str], field: str
) -> None:
    response = client.get(path, params=params, headers=READ)
    _refused(response, field, "must be a time between 1970-01-01T00:00:00Z and 9999-01-01")


@POSTGRES_ONLY
def test_the_bounds_themselves_are_accepted(client: TestClient) -> None:
    for path in ("history", "savings", "decisions", "actions"):
        for until in (EARLIEST_TIME, LATEST_TIME):
            response = client.get(
                f"{POOL}/{path}", params={"until": until.isoformat()}, headers=READ
            )
            assert response.status_code == 200, (path, until, response.text)


@POSTGRES_ONLY
@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/api/v1/pools", encode_cursor("gpu\x00", "a")),
        ("/api/v1/backtests", encode_cursor(2**64)),
        ("/api/v1/backtests", encode_cursor(-1)),
        (f"{POOL}/decisions", encode_cursor("0001-01-01T00:00:00+05:00", 1)),
        (f"{POOL}/actions", encode_cursor("2024-05-01T00:00:00+00:00", 2**70)),
    ],
)
def test_crafted_cursors_are_422(client: TestClient, path: str, cursor: str) -> None:
    response = client.get(path, params={"cursor": cursor}, headers=READ)
    _refused(response, "query.cursor", "pass `next_cursor` unchanged")


@POSTGRES_ONLY
def test_every_string_parameter_refuses_nul(client: TestClient) -> None:
    """Walks the OpenAPI document, so a parameter added later is covered too."""
    document = client.get("/openapi.json").json()
    checked = 0
    for template, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                types = {s.get("type") for s in parameter["schema"].get("anyOf", [])}
                if "string" not in types | {parameter["schema"].get("type")}:
                    continue
                where, name = parameter["in"], parameter["name"]
                path = template.format(namespace="gpu", name="a100-train", run_id=1)
                params = {}
                if where == "path":
                    path = template.replace(f"{{{name}}}", "%00").format(
                        namespace="gpu", name="a100-train"
                    )
                else:
                    params[name] = "\x00"
                response = client.request(method, path, params=params, headers=ADMIN)
                assert response.status_code == 422, (method, path, name, response.text)
                assert response.json()["error"]["field"] == f"{where}.{name}"
                checked += 1
    assert checked >= 15


@POSTGRES_ONLY
def test_an_unknown_body_key_is_named_on_one_line(client: TestClient) -> None:
    response = client.post("/api/v1/backtests", json={**CHEAP_SPEC, "a\nb": 1}, headers=ADMIN)
    _refused(response, "body.a\\u000ab", "Extra inputs are not permitted")


def test_escape_control_characters() -> None:
    assert escape_control_characters("a\x00b\n\x85é") == "a\\u0000b\\u000a\\u0085é"


@POSTGRES_ONLY
@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"sla_kind": "queue"}, "sla_kind queue needs max_delay_seconds"),
        ({"max_delay_seconds": 600}, "max_delay_seconds applies to sla_kind queue only"),
        ({"sla_kind": "queue", "max_delay_seconds": 0}, "greater than 0"),
        ({"sla_kind": "latency"}, "'shortfall' or 'queue'"),
    ],
)
def test_queue_sla_settings_that_do_not_fit_are_422(
    client: TestClient, extra: dict[str, Any], words: str
) -> None:
    response = client.post("/api/v1/backtests", json={**CHEAP_SPEC, **extra}, headers=ADMIN)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert words in message and "\n" not in message
