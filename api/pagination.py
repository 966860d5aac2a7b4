"""Keyset pagination: an opaque cursor holding the (time, id) of the last row returned."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from api.errors import ApiError
from api.schemas.inputs import has_control_characters, time_in_bounds

RowT = TypeVar("RowT")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_ID = 2**63 - 1  # the largest BIGINT


def encode_cursor(*parts: str | int) -> str:
    raw = json.dumps(list(parts), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _not_ours() -> ApiError:
    return ApiError(
        422, "not a cursor this API returned; pass `next_cursor` unchanged", "query.cursor"
    )


def _plausible(part: object, kind: type) -> bool:
    # A cursor is client input: its parts reach the database, so they get the same
    # bounds as any parameter (no NUL in text, ids that fit a BIGINT).
    if type(part) is not kind:
        return False
    if isinstance(part, str):
        return not has_control_characters(part)
    return isinstance(part, int) and 0 <= part <= MAX_ID


def decode_cursor(cursor: str, kinds: tuple[type, ...]) -> list[str | int]:
    """The parts of a cursor, checked against `kinds`; a 422 naming `query.cursor` otherwise."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeError):
        parts = None
    if (
        not isinstance(parts, list)
        or len(parts) != len(kinds)
        or not all(_plausible(part, kind) for part, kind in zip(parts, kinds, strict=True))
    ):
        raise _not_ours()
    return parts


def time_cursor(at: dt.datetime, row_id: int) -> str:
    return encode_cursor(at.astimezone(dt.UTC).isoformat(), row_id)


def decode_time_cursor(cursor: str) -> tuple[dt.datetime, int]:
    at_text, row_id = decode_cursor(cursor, (str, int))
    try:
        at = dt.datetime.fromisoformat(str(at_text))
    except ValueError:
        at = None
    if at is None or not time_in_bounds(at):
        raise _not_ours()
    return at, int(row_id)


def check_range(since: dt.datetime | None, until: dt.datetime | None) -> None:
    """`since` not after `until` (each is an `ApiTime`: aware and in bounds)."""
    if since is not None and until is not None and since > until:
        raise ApiError(422, "since must not be after until", "query.since")


def newest_first_page(
    session: Session,
    query: Select[tuple[RowT]],
    column: InstrumentedAttribute[dt.datetime],
    row_id: InstrumentedAttribute[int],
    *,
    since: dt.datetime | None,
    until: dt.datetime | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[RowT], str | None]:
    """One page of `query`'s rows, newest `column` first, and the cursor to the next page."""
    check_range(since, until)
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    if cursor is not None:
        at, last_id = decode_time_cursor(cursor)
        # the redundant `column <= at` lets the (pool_id, time) index bound the scan
        query = query.where(column <= at, or_(column < at, and_(column == at, row_id < last_id)))
    rows = list(session.scalars(query.order_by(column.desc(), row_id.desc()).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, time_cursor(getattr(last, column.key), getattr(last, row_id.key))
