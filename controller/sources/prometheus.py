"""Indicator values from Prometheus' HTTP API (`/api/v1/query_range`), one PromQL per indicator.

Every query must return one series (aggregate with `sum(...)` or `avg(...)` in PromQL
otherwise). Transport failures, 429 and 5xx answers are retried with exponential backoff;
a rejected query (400/422) or bad credentials (401/403) fail at once with Prometheus' own
message. Points are asked on the epoch-aligned grid of the step and read back as they are:
an absent point is NaN on the result and reported as an issue, never turned into zero.
"""

from __future__ import annotations

import datetime as dt
import math
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from controller.errors import HarmonyError
from controller.series import Indicator, Series
from controller.sources.base import (
    SourceResult,
    SourceUnavailable,
    assess,
    grid_rows,
    grid_start,
)

# Prometheus refuses ranges of more than 11,000 points per series.
MAX_POINTS_PER_QUERY = 11_000
_RETRIED_STATUS = {429, 500, 502, 503, 504}

Progress = Callable[[int, int], None]  # (chunks done, chunks in all)


@dataclass(frozen=True)
class IndicatorQuery:
    """One indicator and the PromQL expression that yields it (a single series)."""

    indicator: Indicator
    promql: str


@dataclass(frozen=True)
class PrometheusConfig:
    """How to reach one Prometheus.

    url: base URL, e.g. `http://prometheus.monitoring:9090` (a path prefix is kept).
    timeout_seconds: per HTTP request, also sent to Prometheus as the query timeout.
    retries: extra attempts after a transport error, 429 or 5xx; backoff doubles from
        `backoff_seconds` up to `max_backoff_seconds` between attempts.
    bearer_token / basic_auth (user, password): at most one of the two.
    verify_tls: True (system CAs), False (do not verify; only for testing), or the path of a
        CA bundle. On by default.
    stale_after: an indicator whose newest value is older than this before the range's end
        is reported stale; None: two steps.
    max_points_per_query: longer ranges are read in chunks of at most this many points.
    """

    url: str
    timeout_seconds: float = 10.0
    retries: int = 3
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 8.0
    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    verify_tls: bool | str = True
    stale_after: dt.timedelta | None = None
    max_points_per_query: int = MAX_POINTS_PER_QUERY

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise HarmonyError(
                f"Prometheus URL {self.url!r} must start with http:// or https://; fix it"
            )
        if self.bearer_token and self.basic_auth:
            raise HarmonyError("give Prometheus a bearer token or basic auth, not both")
        if self.timeout_seconds <= 0 or self.retries < 0 or self.max_points_per_query < 2:
            raise HarmonyError(
                "Prometheus timeout must be > 0, retries >= 0, max points per query >= 2"
            )


class PrometheusSource:
    """A `Source` reading `query_range` from one Prometheus."""

    def __init__(
        self,
        config: PrometheusConfig,
        queries: Sequence[IndicatorQuery],
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not queries:
            raise HarmonyError("a Prometheus source needs at least one indicator query")
        self.config = config
        self.queries = tuple(queries)
        self._sleep = sleep
        self._client = httpx.Client(
            base_url=config.url.rstrip("/") + "/",
            timeout=config.timeout_seconds,
            verify=_tls(config.verify_tls),
            auth=httpx.BasicAuth(*config.basic_auth) if config.basic_auth else None,
            headers=(
                {"Authorization": f"Bearer {config.bearer_token}"} if config.bearer_token else {}
            ),
        )

    @property
    def name(self) -> str:
        return f"Prometheus at {self.config.url}"

    @property
    def indicators(self) -> tuple[Indicator, ...]:
        return tuple(query.indicator for query in self.queries)

    def fetch(self, start: dt.datetime, end: dt.datetime, step: dt.timedelta) -> SourceResult:
        return self.backfill(start, end, step)

    def backfill(
        self,
        start: dt.datetime,
        end: dt.datetime,
        step: dt.timedelta,
        progress: Progress | None = None,
    ) -> SourceResult:
        """`fetch` for long history: the range is read in chunks of at most
        `max_points_per_query` points per query, reporting `progress(done, total)`."""
        rows = grid_rows(start, end, step)
        first = grid_start(start, step)
        values = np.full((rows, len(self.queries)), np.nan)
        chunk = self.config.max_points_per_query
        chunks = max(math.ceil(rows / chunk), 1)
        absent: set[str] = set(q.indicator.name for q in self.queries)
        ambiguous: set[str] = set()
        nan_points: dict[str, int] = {}
        warnings: list[str] = []
        for number in range(chunks):
            begin = number * chunk
            stop = min(begin + chunk, rows)
            if stop <= begin:
                break
            for column, query in enumerate(self.queries):
                name = query.indicator.name
                data = self._query_range(
                    query, first + step * begin, first + step * (stop - 1), step
                )
                warnings.extend(f"{name}: {w}" for w in data.get("warnings", []))
                result = data["data"]["result"]
                if len(result) > 1:
                    ambiguous.add(name)
                if result:
                    absent.discard(name)
                if len(result) != 1:
                    continue
                for stamp, text in result[0]["values"]:
                    row = round((float(stamp) - first.timestamp()) / step.total_seconds())
                    number_value = float(text)
                    if begin <= row < stop:
                        if math.isfinite(number_value):
                            values[row, column] = number_value
                        else:
                            nan_points[name] = nan_points.get(name, 0) + 1
            if progress is not None:
                progress(number + 1, chunks)
        for name in ambiguous:
            values[:, self.names.index(name)] = np.nan
        series = Series(
            name=self.name,
            indicators=self.indicators,
            start=first,
            step=step,
            values=values,
            notes=[f"query_range from {self.config.url}, step {step.total_seconds():g} s"],
        )
        stale_after = self.config.stale_after or 2 * step
        issues = assess(
            series, stale_after, frozenset(absent), frozenset(ambiguous - absent), nan_points
        )
        return SourceResult(series=series, issues=issues, warnings=warnings)

    @property
    def names(self) -> list[str]:
        return [query.indicator.name for query in self.queries]

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> PrometheusSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _query_range(
        self, query: IndicatorQuery, start: dt.datetime, end: dt.datetime, step: dt.timedelta
    ) -> dict[str, Any]:
        form = {
            "query": query.promql,
            "start": f"{start.timestamp():.3f}",
            "end": f"{end.timestamp():.3f}",
            "step": f"{step.total_seconds():.3f}".rstrip("0").rstrip("."),
            "timeout": f"{self.config.timeout_seconds:g}s",
        }
        what = f"{self.name}, indicator {query.indicator.name!r}"
        delay = self.config.backoff_seconds
        failure = ""
        for attempt in range(self.config.retries + 1):
            if attempt:
                self._sleep(delay)
                delay = min(delay * 2, self.config.max_backoff_seconds)
            try:
                response = self._client.post("api/v1/query_range", data=form)
            except httpx.TransportError as error:
                failure = _transport_reason(error)
                continue
            if response.status_code in _RETRIED_STATUS:
                failure = f"HTTP {response.status_code}: {_error_text(response)}"
                continue
            if response.status_code in {401, 403}:
                raise HarmonyError(
                    f"{what}: HTTP {response.status_code} ({_error_text(response)}); "
                    f"check the bearer token or basic-auth credentials"
                )
            if response.status_code != 200:
                raise HarmonyError(
                    f"{what}: Prometheus rejected {query.promql!r} with HTTP "
                    f"{response.status_code}: {_error_text(response)}; fix the PromQL"
                )
            try:
                body: dict[str, Any] = response.json()
                _ = body["data"]["result"]
            except (ValueError, KeyError, TypeError):
                raise HarmonyError(
                    f"{what}: the answer is not a Prometheus API response; check that "
                    f"{self.config.url} is Prometheus' base URL"
                ) from None
            if body.get("status") != "success" or body["data"].get("resultType") != "matrix":
                raise HarmonyError(f"{what}: unexpected answer {body.get('error', body)!r}")
            return body
        raise SourceUnavailable(
            f"{what}: no answer after {self.config.retries + 1} attempt(s) ({failure}); "
            f"check that Prometheus runs and the URL is right"
        )


def _tls(verify: bool | str) -> bool | ssl.SSLContext:
    if isinstance(verify, str):
        try:
            return ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as error:
            raise HarmonyError(
                f"CA bundle {verify}: cannot be loaded ({error}); fix the path"
            ) from None
    return verify


def _transport_reason(error: httpx.TransportError) -> str:
    if isinstance(error, httpx.TimeoutException):
        return "timed out"
    if isinstance(error, httpx.ConnectError):
        return f"cannot connect: {error}"
    return f"{type(error).__name__}: {error}"


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
        return str(body.get("error") or body)
    except ValueError:
        return response.text.strip()[:200] or response.reason_phrase
