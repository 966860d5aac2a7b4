"""One JSON shape for every error the API returns, naming the field at fault.

{"error": {"status": 422, "code": "invalid_request",
           "message": "query.limit: Input should be less than or equal to 500",
           "field": "query.limit", "problems": [{"field": ..., "message": ...}]}}
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.schemas.common import ErrorBody, ErrorResponse, FieldProblem
from api.schemas.inputs import escape_control_characters
from controller.errors import HarmonyError

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error with a status, a message a person can act on and the field it concerns."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers


def error_response(
    status: int,
    message: str,
    field: str | None = None,
    problems: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorBody(
            status=status,
            code=_CODES.get(status, "error"),
            message=message,
            field=field,
            problems=problems or [],
        )
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def field_name(location: tuple[Any, ...] | list[Any]) -> str:
    """`("query", "limit")` → `query.limit`; `("body", "policies", 0)` → `body.policies[0]`."""
    name = ""
    for part in location:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            # an unknown body key is the client's text: keep the message on one line
            text = escape_control_characters(str(part))
            name += f".{text}" if name else text
    return name or "request"


def _validation_problems(error: RequestValidationError) -> list[FieldProblem]:
    problems = []
    for issue in error.errors():
        location = [part for part in issue.get("loc", ()) if part not in ("function-after",)]
        message = str(issue.get("msg", "invalid value"))
        if issue.get("type") == "json_invalid":
            message = "the body is not valid JSON"
        problems.append(FieldProblem(field=field_name(location), message=message))
    return problems


async def _on_validation(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = _validation_problems(error)
    message = "; ".join(f"{p.field}: {p.message}" for p in problems) or "invalid request"
    first = problems[0].field if problems else None
    return error_response(422, message, first, problems)


async def _on_api_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    problems = [FieldProblem(field=error.field, message=error.message)] if error.field else []
    return error_response(error.status, error.message, error.field, problems, error.headers)


async def _on_http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    detail = error.detail if isinstance(error.detail, str) else jsonable_encoder(error.detail)
    return error_response(error.status_code, str(detail), headers=error.headers)


async def _on_harmony_error(_request: Request, error: Exception) -> JSONResponse:
    return error_response(503, str(error))


async def _on_unexpected(_request: Request, error: Exception) -> JSONResponse:
    log.exception("unhandled error in the API", exc_info=error)
    return error_response(500, "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(ApiError, _on_api_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(HarmonyError, _on_harmony_error)
    app.add_exception_handler(Exception, _on_unexpected)
