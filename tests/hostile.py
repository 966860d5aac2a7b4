"""Values a user or an attacker sends and schema-driven generation rarely does.

NUL and other control characters, unicode, the ends of the datetime range, numbers past
every bound, and garbage where a number belongs. `CANONICAL` is sent to every parameter
of the fuzz tests; the strategies add breadth around it.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from hypothesis import strategies as st

CANONICAL_TEXT: tuple[str, ...] = ("\x00", "a\x00b", "\x1b[2J\n", "é😀\u202e", "", "banana")
EXTREME_TIMES: tuple[str, ...] = (
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:30:00Z",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59Z",
    "9999-12-31T23:59:59.999999-05:00",
)
CANONICAL_NUMBERS: tuple[int | float, ...] = (
    0,
    -1,
    2**64,
    -(2**63) - 1,
    1e308,
    -1e308,
    float("nan"),
    float("inf"),
)
CANONICAL: tuple[Any, ...] = (*CANONICAL_TEXT, *EXTREME_TIMES, *CANONICAL_NUMBERS)
CANONICAL_JSON: tuple[Any, ...] = tuple(
    value for value in CANONICAL if not isinstance(value, float) or math.isfinite(value)
)
# How numbers look on a command line or in a query string when they are not numbers.
NUMBER_GARBAGE: tuple[str, ...] = ("inf", "-inf", "nan", "1e400", "-0", "1_000", "0x1f", "١٢")
# The canonical values as a shell hands them over (no NUL: it ends a C string), fewer
# since each costs a whole command; `[/x]` is markup to a rich console.
CANONICAL_ARGUMENTS: tuple[str, ...] = (
    "",
    "banana",
    "\x1b[2J\n",
    "[/x]",
    "-1",
    "0",
    "inf",
    "nan",
    "1e400",
    str(2**64),
)


def texts() -> st.SearchStrategy[str]:
    """Any UTF-8 text, with control characters (NUL included) drawn often."""
    controls = st.characters(categories=["Cc"])
    return st.one_of(
        st.sampled_from(CANONICAL_TEXT),
        st.text(st.characters(codec="utf-8"), max_size=24),
        st.text(st.one_of(controls, st.characters(codec="utf-8")), min_size=1, max_size=8),
    )


def _fixed_offsets() -> st.SearchStrategy[dt.tzinfo]:
    minutes = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)
    return minutes.map(lambda m: dt.timezone(dt.timedelta(minutes=m)))


def times() -> st.SearchStrategy[str]:
    """ISO 8601 times from year 1 to 9999, in any fixed offset, or naive."""
    any_time = st.datetimes(
        min_value=dt.datetime(1, 1, 1),
        max_value=dt.datetime(9999, 12, 31, 23, 59, 59),
        timezones=st.none() | _fixed_offsets(),
    )
    return st.one_of(st.sampled_from(EXTREME_TIMES), any_time.map(dt.datetime.isoformat))


def numbers() -> st.SearchStrategy[int | float]:
    """Zero, negatives, numbers past 64 bits, NaN and the infinities."""
    return st.one_of(
        st.sampled_from(CANONICAL_NUMBERS),
        st.integers(),
        st.integers(min_value=2**62, max_value=2**130).flatmap(lambda n: st.sampled_from([n, -n])),
        st.floats(),
    )


def number_texts() -> st.SearchStrategy[str]:
    """Numbers as text, and text that only looks like a number."""
    return st.one_of(numbers().map(str), st.sampled_from(NUMBER_GARBAGE))


def arguments() -> st.SearchStrategy[str]:
    """What a shell can pass as an option's value: `parameter_values()` without NUL."""
    return parameter_values().map(lambda value: value.replace("\x00", ""))


def parameter_values() -> st.SearchStrategy[str]:
    """What a query or path parameter (or a command-line option) may be sent."""
    return st.one_of(texts(), times(), number_texts())


def json_numbers() -> st.SearchStrategy[int | float]:
    """`numbers()` that JSON can carry (no NaN, no infinities)."""
    return numbers().filter(math.isfinite)


def json_values() -> st.SearchStrategy[Any]:
    """What a JSON body field may be sent: any of the above, and other JSON shapes."""
    scalars = st.one_of(texts(), times(), json_numbers(), st.booleans(), st.none())
    return st.one_of(
        scalars,
        st.lists(scalars, max_size=3),
        st.dictionaries(texts(), scalars, max_size=2),
    )
