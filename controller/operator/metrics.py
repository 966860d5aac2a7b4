"""The operator's own Prometheus metrics and its `/metrics`, `/healthz`, `/readyz` server."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from controller.cycle import PoolOutcome

POOL = ("namespace", "pool")


class OperatorMetrics:
    """Per-pool cycle, decision, action and error counters and the latest figures."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.cycles = Counter("harmony_cycles", "Control cycles run.", POOL, registry=r)
        self.cycle_seconds = Histogram(
            "harmony_cycle_duration_seconds",
            "Duration of the cycle batch a pool ran in.",
            POOL,
            registry=r,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.decisions = Counter(
            "harmony_decisions", "Decisions made, by policy.", (*POOL, "policy"), registry=r
        )
        self.actions = Counter(
            "harmony_actions", "Scale actions attempted, by result.", (*POOL, "result"), registry=r
        )
        self.errors = Counter(
            "harmony_errors",
            "Cycles that hit a problem, by reason.",
            (*POOL, "reason"),
            registry=r,
        )
        self.replicas = Gauge("harmony_replicas", "Replicas the target has.", POOL, registry=r)
        self.recommended = Gauge(
            "harmony_recommended_replicas",
            "Replicas the last cycle decided on.",
            POOL,
            registry=r,
        )
        self.shortfall = Gauge(
            "harmony_shortfall_probability",
            "Posterior probability of shortfall at the recommendation.",
            POOL,
            registry=r,
        )
        self.backlog = Gauge(
            "harmony_backlog",
            "Queue SLA: work queued after the last step, in the demand's units.",
            POOL,
            registry=r,
        )
        self.estimated_wait = Gauge(
            "harmony_estimated_wait_seconds",
            "Queue SLA: backlog / (usable replicas x capacity per replica) x interval; "
            "+Inf while work is queued and no replica is usable.",
            POOL,
            registry=r,
        )
        self.leader = Gauge("harmony_leader", "1 while this operator holds the lease.", registry=r)

    def observe(self, namespace: str, pool: str, outcome: PoolOutcome, seconds: float) -> None:
        labels = (namespace, pool)
        self.cycles.labels(*labels).inc()
        self.cycle_seconds.labels(*labels).observe(seconds)
        if outcome.policy:
            self.decisions.labels(*labels, outcome.policy).inc()
        if outcome.action is not None:
            self.actions.labels(*labels, "applied" if outcome.action.applied else "kept").inc()
        for kind, (status, reason, _) in outcome.conditions.items():
            # A pool not yet ready for Enforce is no error of the operator.
            if status == "False" and kind != "EnforceReady":
                self.errors.labels(*labels, reason).inc()
        if outcome.replicas is not None:
            self.replicas.labels(*labels).set(outcome.replicas)
        if outcome.recommended is not None:
            self.recommended.labels(*labels).set(outcome.recommended)
        if outcome.shortfall_probability is not None:
            self.shortfall.labels(*labels).set(outcome.shortfall_probability)
        if outcome.backlog is not None:
            self.backlog.labels(*labels).set(outcome.backlog)
        if outcome.estimated_wait_seconds is not None:
            self.estimated_wait.labels(*labels).set(outcome.estimated_wait_seconds)

    def forget(self, namespace: str, pool: str) -> None:
        for gauge in (
            self.replicas,
            self.recommended,
            self.shortfall,
            self.backlog,
            self.estimated_wait,
        ):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, pool)


def health_app(
    metrics: OperatorMetrics, healthy: Callable[[], bool], ready: Callable[[], bool]
) -> web.Application:
    async def serve_metrics(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def serve_health(_: web.Request) -> web.Response:
        ok = healthy()
        return web.Response(status=200 if ok else 503, text="ok\n" if ok else "unhealthy\n")

    async def serve_ready(_: web.Request) -> web.Response:
        ok = ready()
        return web.Response(status=200 if ok else 503, text="ready\n" if ok else "not ready\n")

    app = web.Application()
    app.router.add_get("/metrics", serve_metrics)
    app.router.add_get("/healthz", serve_health)
    app.router.add_get("/readyz", serve_ready)
    return app
