"""What clients may send: text without control characters, times the API can compute with.

Every string parameter and body field is `PlainText`: PostgreSQL refuses NUL in text (a
500 otherwise), and no name, trace or column the API takes has a control character.
Every time is `ApiTime`: aware, and within bounds far enough from the ends of Python's
datetimes that range arithmetic (the default 24 h window, conversion to UTC) cannot
overflow.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# C0 controls (NUL included), DEL, C1 controls, and lone surrogates (a JSON body can
# carry "\ud800", which no UTF-8 column or JSON document can store).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
EARLIEST_TIME = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST_TIME = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)


def has_control_characters(text: str) -> bool:
    return _CONTROL.search(text) is not None


def escape_control_characters(text: str) -> str:
    """`text` with each control character as a `\\uXXXX` escape: safe on one line."""
    return _CONTROL.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def time_in_bounds(value: dt.datetime) -> bool:
    return value.tzinfo is not None and EARLIEST_TIME <= value <= LATEST_TIME


def _plain_text(value: str) -> str:
    if has_control_characters(value):
        raise PydanticCustomError(
            "control_character",
            "must not contain control characters (NUL, tab, newline, escape) or lone "
            "surrogates; send printable text",
        )
    return value


def _bounded_time(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise PydanticCustomError(
            "timezone_missing", "needs a time zone, e.g. 2024-05-01T00:00:00Z"
        )
    if not time_in_bounds(value):
        raise PydanticCustomError(
            "time_out_of_range",
            f"must be a time between {EARLIEST_TIME:%Y-%m-%dT%H:%M:%SZ} and "
            f"{LATEST_TIME:%Y-%m-%dT%H:%M:%SZ}",
        )
    return value


PlainText = Annotated[str, AfterValidator(_plain_text)]
ApiTime = Annotated[dt.datetime, AfterValidator(_bounded_time)]
