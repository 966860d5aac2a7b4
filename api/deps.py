"""Dependencies of the routers: the database session, the clock, and bearer-token auth.

Tokens come from `HARMONY_API_TOKENS` (comma-separated). A token has the read scope
unless written as `admin:TOKEN`, which gives the admin scope (read plus the POSTs);
`read:TOKEN` says the read scope explicitly. Clients send only the token itself:
`Authorization: Bearer TOKEN`. No token configured: every /api/v1 request is refused.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from api.errors import ApiError
from controller.clock import Clock
from controller.settings import Settings

ADMIN_PREFIX = "admin:"
READ_PREFIX = "read:"


class Scope(enum.IntEnum):
    read = 1
    admin = 2


def parse_tokens(tokens: Sequence[SecretStr]) -> list[tuple[str, Scope]]:
    """`HARMONY_API_TOKENS` entries as (token, scope); `admin:`/`read:` prefixes name the scope."""
    parsed = []
    for entry in tokens:
        value = entry.get_secret_value().strip()
        scope = Scope.read
        if value.startswith(ADMIN_PREFIX):
            value, scope = value[len(ADMIN_PREFIX) :], Scope.admin
        elif value.startswith(READ_PREFIX):
            value = value[len(READ_PREFIX) :]
        if value:
            parsed.append((value, scope))
    return parsed


@dataclass
class ApiContext:
    """What every request needs, built once by `create_app`."""

    settings: Settings
    sessions: sessionmaker[Session]
    clock: Clock
    tokens: list[tuple[str, Scope]]
    backtests: Any  # api.backtest_jobs.BacktestJobs (kept loose to avoid an import cycle)


def context(request: Request) -> ApiContext:
    found: ApiContext = request.app.state.harmony
    return found


Context = Annotated[ApiContext, Depends(context)]


def session(ctx: Context) -> Iterator[Session]:
    with ctx.sessions() as db:
        yield db


DbSession = Annotated[Session, Depends(session)]

_bearer = HTTPBearer(
    auto_error=False,
    description="A token from HARMONY_API_TOKENS; `admin:`-prefixed entries may POST.",
)


def _scope_of(ctx: ApiContext, presented: str) -> Scope | None:
    found: Scope | None = None
    for token, scope in ctx.tokens:
        # compare every entry in constant time, so timing tells nothing about which matched
        if hmac.compare_digest(token.encode(), presented.encode()):
            found = scope if found is None else max(found, scope)
    return found


def _authorize(
    needed: Scope, ctx: ApiContext, credentials: HTTPAuthorizationCredentials | None
) -> Scope:
    challenge = {"WWW-Authenticate": "Bearer"}
    if not ctx.tokens:
        raise ApiError(
            401,
            "no API tokens are configured on the server: set HARMONY_API_TOKENS",
            "header.Authorization",
            challenge,
        )
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401,
            "missing bearer token: send `Authorization: Bearer <token>`",
            "header.Authorization",
            challenge,
        )
    scope = _scope_of(ctx, credentials.credentials)
    if scope is None:
        raise ApiError(401, "unknown bearer token", "header.Authorization", challenge)
    if scope < needed:
        raise ApiError(
            403,
            f"this token has the {scope.name} scope; this request needs {needed.name} "
            "(an `admin:`-prefixed entry of HARMONY_API_TOKENS)",
            "header.Authorization",
        )
    return scope


def require_read(
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Scope:
    return _authorize(Scope.read, ctx, credentials)


def require_admin(
    ctx: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Scope:
    return _authorize(Scope.admin, ctx, credentials)
