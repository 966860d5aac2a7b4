"""Schemathesis drives every operation from the app's own OpenAPI document: no 5xx, and
every response (errors included) matches the schema it declares. Real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import Engine

from api.app import create_app
from controller.clock import ManualClock
from controller.state.db import make_session_factory
from tests.api.conftest import ADMIN, api_settings
from tests.api.seed import NOW

# What the issue asks: no 5xx, and status, content type, headers and body as declared.
# (Schemathesis' positive-data check is left out: an opaque cursor that this API did not
# issue is schema-valid text and is rightly refused with a 422 naming query.cursor.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def api_app(seeded_engine: Engine) -> Iterator[FastAPI]:
    app = create_app(
        api_settings(seeded_engine), make_session_factory(seeded_engine), ManualClock(NOW)
    )
    yield app
    # backtests that a generated spec started must end before the database is dropped
    app.state.harmony.backtests.wait(timeout=120)


@pytest.mark.parametrize("migrated_engine", ["postgresql"], indirect=True)
def test_api_conforms_to_its_openapi(api_app: FastAPI) -> None:
    # One hypothesis run per operation (schemathesis' pytest plugin does not load under
    # pytest 9 here, so each operation's strategy is driven directly).
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def exercise(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=ADMIN, checks=CHECKS)

        exercise()
