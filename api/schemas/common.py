"""Shapes shared by every resource: errors, pages, and JSON-safe numbers."""

from __future__ import annotations

import math
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

Item = TypeVar("Item")


def _finite_or_none(value: Any) -> Any:
    # NaN and infinities are not JSON; the state store may hold them for "no estimate".
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


OptionalFloat = Annotated[float | None, BeforeValidator(_finite_or_none)]


class FieldProblem(BaseModel):
    field: str | None = Field(description="Where the problem is, e.g. `query.limit`.")
    message: str


class ErrorBody(BaseModel):
    status: int = Field(description="The HTTP status, repeated.")
    code: str = Field(description="A stable machine-readable name, e.g. `invalid_request`.")
    message: str = Field(description="What is wrong and, where it can, how to fix it.")
    field: str | None = Field(
        default=None, description="The first field at fault (`query.limit`, `body.sla`)."
    )
    problems: list[FieldProblem] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    """Every error of the API has this shape."""

    error: ErrorBody


class Page(BaseModel, Generic[Item]):
    """A page of a list, newest (or first) first; pass `next_cursor` as `cursor` for more."""

    model_config = ConfigDict(arbitrary_types_allowed=False)

    items: list[Item]
    next_cursor: str | None = Field(default=None, description="Opaque; absent on the last page.")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given error statuses, all with the error shape."""
    descriptions = {
        401: "No or an unknown bearer token.",
        403: "The token's scope does not allow this.",
        404: "No such resource.",
        409: "The request conflicts with the server's state.",
        413: "The request body is too large.",
        422: "A parameter or the body is invalid; `error.field` names it.",
        503: "The database is unreachable or its schema is not current.",
    }
    return {
        status: {"model": ErrorResponse, "description": descriptions.get(status, "Error.")}
        for status in statuses
    }
