from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from controller.errors import HarmonyError
from controller.series import Indicator
from controller.sources import (
    IndicatorQuery,
    IssueKind,
    PrometheusConfig,
    PrometheusSource,
    SourceUnavailable,
)
from tests.prometheus import free_port
from tests.sources.conftest import (
    HOLE,
    NAN_ROWS,
    PASSWORD,
    USER,
    PrometheusServer,
    ProxyControl,
)

pytestmark = pytest.mark.prometheus
STEP = dt.timedelta(minutes=10)


def source(
    url: str, *promql: str, sleeps: list[float] | None = None, **config: object
) -> PrometheusSource:
    config.setdefault("basic_auth", (USER, PASSWORD))
    queries = [
        IndicatorQuery(Indicator(f"q{i}", level=1 if i == 0 else 2, demand=i == 0), expression)
        for i, expression in enumerate(promql)
    ]
    recorded = sleeps if sleeps is not None else []
    return PrometheusSource(
        PrometheusConfig(url=url, **config),  # type: ignore[arg-type]
        queries,
        sleep=recorded.append,
    )


def test_values_read_back_equal_the_trace_on_its_grid(prometheus_server: PrometheusServer) -> None:
    trace = prometheus_server.trace
    with source(
        prometheus_server.url,
        'harmony_test_load{container="1"}',
        'harmony_test_cpu_busy{container="1"}',
    ) as prometheus:
        result = prometheus.fetch(trace.start, trace.end, STEP)
    assert result.complete, result.issues
    assert result.series.start == trace.start
    assert len(result.series) == len(trace)
    np.testing.assert_array_equal(result.series.values[:, 0], trace.column("load"))
    np.testing.assert_array_equal(result.series.values[:, 1], trace.column("cpu.busy"))
    assert result.series.names == ["q0", "q1"]


def test_backfill_in_chunks_gives_the_same_values(prometheus_server: PrometheusServer) -> None:
    trace = prometheus_server.trace
    progress: list[tuple[int, int]] = []
    with source(
        prometheus_server.url, 'harmony_test_load{container="1"}', max_points_per_query=50
    ) as prometheus:
        result = prometheus.backfill(
            trace.start,
            trace.end,
            STEP,
            progress=lambda done, total: progress.append((done, total)),
        )
    assert result.complete
    np.testing.assert_array_equal(result.series.values[:, 0], trace.column("load"))
    assert progress == [(n, 6) for n in range(1, 7)]  # 288 points in chunks of 50


def test_partial_data_is_reported_never_zero(prometheus_server: PrometheusServer) -> None:
    trace = prometheus_server.trace
    with source(
        prometheus_server.url,
        'harmony_test_load_gappy{container="1"}',
        'harmony_test_load_nan{container="1"}',
        "harmony_test_load",  # two containers: ambiguous
        'harmony_test_no_such_metric{container="1"}',
    ) as prometheus:
        result = prometheus.fetch(trace.start, trace.end, STEP)
    values = result.series.values
    kinds = {(issue.indicator, issue.kind) for issue in result.issues}
    assert not result.complete
    assert ("q0", IssueKind.short) in kinds
    assert np.isnan(values[HOLE, 0]).all()
    expected = trace.column("load").copy()
    expected[HOLE] = np.nan
    np.testing.assert_array_equal(values[:, 0], expected)
    assert ("q1", IssueKind.nan) in kinds and ("q1", IssueKind.short) not in kinds
    assert np.isnan(values[list(NAN_ROWS), 1]).all()
    assert ("q2", IssueKind.ambiguous) in kinds and np.isnan(values[:, 2]).all()
    assert ("q3", IssueKind.missing) in kinds and np.isnan(values[:, 3]).all()
    assert not (values[np.isnan(expected), 0] == 0).any()


def test_a_range_past_the_newest_data_is_stale_and_short(
    prometheus_server: PrometheusServer,
) -> None:
    trace = prometheus_server.trace
    with source(prometheus_server.url, 'harmony_test_load{container="1"}') as prometheus:
        result = prometheus.fetch(trace.end - STEP * 5, trace.end + dt.timedelta(hours=1), STEP)
    kinds = {issue.kind for issue in result.issues}
    assert kinds == {IssueKind.short, IssueKind.stale}
    np.testing.assert_array_equal(result.series.values[:6, 0], trace.column("load")[-6:])
    assert np.isnan(result.series.values[6:, 0]).all()


def test_a_rejected_query_fails_at_once_with_prometheus_message(
    prometheus_server: PrometheusServer,
) -> None:
    sleeps: list[float] = []
    trace = prometheus_server.trace
    with (
        source(prometheus_server.url, "sum(harmony_test_load", sleeps=sleeps) as prometheus,
        pytest.raises(HarmonyError, match=r"rejected .* HTTP 400: .*fix the PromQL"),
    ):
        prometheus.fetch(trace.start, trace.end, STEP)
    assert sleeps == []


def test_wrong_credentials_name_the_fix(prometheus_server: PrometheusServer) -> None:
    trace = prometheus_server.trace
    with (
        source(prometheus_server.url, "up", basic_auth=(USER, "wrong")) as prometheus,
        pytest.raises(HarmonyError, match=r"HTTP 401.*basic-auth credentials"),
    ):
        prometheus.fetch(trace.start, trace.end, STEP)


def test_prometheus_down_is_unavailable_after_backoff() -> None:
    sleeps: list[float] = []
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    with (
        source(f"http://127.0.0.1:{free_port()}", "up", sleeps=sleeps, retries=3) as prometheus,
        pytest.raises(SourceUnavailable, match=r"no answer after 4 attempt.*cannot connect"),
    ):
        prometheus.fetch(now - dt.timedelta(hours=1), now, STEP)
    assert sleeps == [0.5, 1.0, 2.0]


def test_server_errors_are_retried_then_succeed(
    prometheus_server: PrometheusServer, proxy: ProxyControl
) -> None:
    proxy.handler.failures = 2
    sleeps: list[float] = []
    trace = prometheus_server.trace
    with source(
        proxy.url, 'harmony_test_load{container="1"}', sleeps=sleeps, basic_auth=None
    ) as prometheus:
        result = prometheus.fetch(trace.start, trace.end, STEP)
    assert sleeps == [0.5, 1.0]
    np.testing.assert_array_equal(result.series.values[:, 0], trace.column("load"))


def test_persistent_server_errors_end_unavailable(
    prometheus_server: PrometheusServer, proxy: ProxyControl
) -> None:
    proxy.handler.failures = 10
    trace = prometheus_server.trace
    with (
        source(proxy.url, "up", retries=1, basic_auth=None) as prometheus,
        pytest.raises(SourceUnavailable, match="HTTP 503: overloaded"),
    ):
        prometheus.fetch(trace.start, trace.end, STEP)


def test_bearer_token_is_sent(prometheus_server: PrometheusServer, proxy: ProxyControl) -> None:
    proxy.handler.token = "t0ken"
    trace = prometheus_server.trace
    query = 'harmony_test_load{container="1"}'
    with source(proxy.url, query, bearer_token="t0ken", basic_auth=None) as prometheus:
        assert prometheus.fetch(trace.start, trace.end, STEP).complete
    assert proxy.handler.seen == ["Bearer t0ken"]
    with (
        source(proxy.url, query, bearer_token="other", basic_auth=None) as prometheus,
        pytest.raises(HarmonyError, match="HTTP 401"),
    ):
        prometheus.fetch(trace.start, trace.end, STEP)


def test_configuration_is_checked() -> None:
    assert PrometheusConfig(url="https://prometheus:9090").verify_tls is True
    with pytest.raises(HarmonyError, match="not both"):
        PrometheusConfig(url="http://p:9090", bearer_token="t", basic_auth=("u", "p"))
    with pytest.raises(HarmonyError, match="http:// or https://"):
        PrometheusConfig(url="prometheus:9090")
    with pytest.raises(HarmonyError, match="CA bundle"):
        PrometheusSource(
            PrometheusConfig(url="https://p:9090", verify_tls="/no/such/ca.pem"),
            [IndicatorQuery(Indicator("load", demand=True), "up")],
        )
