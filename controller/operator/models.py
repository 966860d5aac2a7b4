"""Each pool's forecaster: trained from a Prometheus backfill on first sight and on a
schedule, stored in the state store (artifact bytes in `ModelVersion`), loaded for cycles.

Training runs in a background thread of the operator, or as the Celery task
`harmony.operator.train_pool_model` when `HARMONY_REDIS_URL` is set (the worker
Deployment then does the work, reading the pool's spec from the state store); either way
the result lands in the state store, and the operator picks it up at its next refresh.
Until a model exists the cycle uses the SLA-aware fallback and says so (`ModelReady=False`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from controller.clock import Clock
from controller.errors import HarmonyError
from controller.operator import records
from controller.operator.cycle_steps import PoolRuntime
from controller.operator.spec import InvalidSpec, PoolConfig, parse_spec
from controller.sources.prometheus import IndicatorQuery, PrometheusConfig, PrometheusSource
from controller.state.models import ModelVersion, Pool

log = logging.getLogger(__name__)


def prometheus_source(config: PoolConfig, *, observed: bool = False) -> PrometheusSource:
    """The pool's indicators as one source: those the model reads (training), or with
    `observed` those a cycle reads (the backlog indicator last, if any)."""
    indicators = config.observed_indicators if observed else config.indicators
    queries = [IndicatorQuery(indicator=spec.indicator, promql=spec.query) for spec in indicators]
    assert config.prometheus_url is not None
    settings = PrometheusConfig(
        url=config.prometheus_url,
        timeout_seconds=config.prometheus_timeout.total_seconds(),
        retries=1,
    )
    return PrometheusSource(settings, queries)


def train_pool_model(
    config: PoolConfig,
    sessions: sessionmaker[Session],
    clock: Clock,
) -> int:
    """Backfill `spec.model.history` from Prometheus, train, store; the new version's id."""
    from forecaster import ForecasterConfig, train_forecaster

    end = clock.now()
    start = end - config.model_history
    with prometheus_source(config) as source:
        result = source.backfill(start, end, config.interval)
    series = result.series
    timestamps = np.asarray(series.timestamps(), dtype=np.float64)
    forecaster_config = ForecasterConfig(
        context_length=config.context_steps,
        horizon=config.horizon_steps,
        num_threads=1,
        max_train_seconds=config.max_train_seconds,
        accelerator="cpu",
    )
    model = train_forecaster(
        series.values,
        timestamps,
        [spec.indicator.level for spec in config.indicators],
        forecaster_config,
        names=[spec.indicator.name for spec in config.indicators],
    )
    artifact = model.to_bytes()
    with sessions.begin() as session:
        pool = session.scalar(
            select(Pool).where(Pool.namespace == config.namespace, Pool.name == config.name)
        )
        if pool is None:
            raise LookupError(f"pool {config.key} is not in the state store")
        version = ModelVersion(
            pool_id=pool.id,
            name=f"{config.key}-{end:%Y%m%dT%H%M%S}",
            kind=model.name,
            created_at=clock.now(),
            indicators={
                "names": [s.indicator.name for s in config.indicators],
                "levels": [s.indicator.level for s in config.indicators],
            },
            config=forecaster_config.to_dict(),
            metrics={"rows": len(series), "issues": [str(i) for i in result.issues][:20]},
            data_start=series.start,
            data_end=end,
            artifact=artifact,
            artifact_sha256=hashlib.sha256(artifact).hexdigest(),
        )
        session.add(version)
        session.flush()
        return int(version.id)


def train_stored_pool(
    namespace: str,
    name: str,
    sessions: sessionmaker[Session],
    clock: Clock,
    default_prometheus_url: str | None,
) -> int:
    """`train_pool_model` for a pool known by name only (a worker, the API): its spec is the
    one the operator last recorded in the state store."""
    with sessions() as session:
        pool = session.scalar(select(Pool).where(Pool.namespace == namespace, Pool.name == name))
        if pool is None or pool.deleted_at is not None:
            raise HarmonyError(
                f"pool {namespace}/{name} is not in the state store: the operator records a "
                "PoolAutoscaler at its first cycle; create it, or check the namespace and name"
            )
        spec = dict(pool.spec or {})
    config = trainable_config(namespace, name, spec, default_prometheus_url)
    return train_pool_model(config, sessions, clock)


def trainable_config(
    namespace: str, name: str, spec: dict[str, Any], default_prometheus_url: str | None
) -> PoolConfig:
    """The pool's settings if its recorded spec can be trained from, else a `HarmonyError`
    naming the field (checked before work is queued, so a retrain never fails unseen)."""
    try:
        return parse_spec(namespace, name, spec, default_prometheus_url)
    except InvalidSpec as error:
        raise HarmonyError(f"pool {namespace}/{name} cannot be trained: {error}") from None


def record_pool(pool: PoolRuntime, sessions: sessionmaker[Session], clock: Clock) -> None:
    """Put the pool's current spec in the state store, where a worker reads it."""
    with sessions.begin() as session:
        config = pool.config
        records.upsert_pool(
            session, config, config.namespace, config.name, pool.raw_spec, clock.now()
        )


class StoreForecasterProvider:
    """Latest `ModelVersion` of each pool, loaded once per version and refreshed every
    `refresh_seconds`; asks `submit_training` for a model when there is none or it is old."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        *,
        submit_training: Callable[[PoolRuntime], None] | None = None,
        refresh_seconds: float = 60.0,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._submit = submit_training
        self._refresh = refresh_seconds
        self._loaded: dict[str, tuple[Any, int, dt.datetime]] = {}  # key → (model, id, created)
        self._checked: dict[str, float] = {}
        self._by_artifact: dict[str, tuple[Any, int]] = {}
        self._lock = threading.Lock()

    def forecaster_for(self, pool: PoolRuntime) -> tuple[Any, int | None] | None:
        key = pool.config.key
        with self._lock:
            due = time.monotonic() - self._checked.get(key, -1e18) >= self._refresh
            if due:
                self._checked[key] = time.monotonic()
        if due:
            try:
                self._load_latest(pool.config)
            except SQLAlchemyError as error:
                # The cycle goes on with the model it has (or the SLA-aware fallback); the
                # store's outage is the record step's to report, not a reason to fail here.
                log.warning("%s: latest model not looked up, retrying next cycle: %s", key, error)
                with self._lock:
                    self._checked.pop(key, None)
        found = self._loaded.get(key)
        if self._submit is not None and (
            found is None or self._clock.now() - found[2] >= pool.config.retrain_every
        ):
            self._submit(pool)
            if found is None:
                pool.model_note = "no trained model yet: training one from Prometheus history"
        return None if found is None else (found[0], found[1])

    def _load_latest(self, config: PoolConfig) -> None:
        from forecaster import Forecaster

        with self._sessions() as session:
            row = session.execute(
                select(ModelVersion.id, ModelVersion.artifact_sha256, ModelVersion.created_at)
                .join(Pool, Pool.id == ModelVersion.pool_id)
                .where(Pool.namespace == config.namespace, Pool.name == config.name)
                .order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
                .limit(1)
            ).first()
            if row is None:
                return
            version_id, sha, created = int(row[0]), str(row[1]), row[2]
            current = self._loaded.get(config.key)
            if current is not None and current[1] == version_id:
                return
            shared = self._by_artifact.get(sha) if sha else None
            if shared is None:
                artifact = session.scalar(
                    select(ModelVersion.artifact).where(ModelVersion.id == version_id)
                )
                if artifact is None:
                    return
                # Pools trained on the same artifact share one object: one forward pass.
                shared = (Forecaster.from_bytes(artifact), version_id)
                if sha:
                    self._by_artifact[sha] = shared
        self._loaded[config.key] = (shared[0], version_id, created)


class BackgroundTrainer:
    """Trains at most one model per pool at a time, off the cycle's path: `train` runs in
    this process's thread, or hands the work to a Celery worker and waits for it there."""

    def __init__(self, train: Callable[[PoolRuntime], int], workers: int = 1) -> None:
        self._train = train
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="train")
        self._running: dict[str, Future[int]] = {}
        self._failed_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def submit(self, pool: PoolRuntime) -> None:
        config = pool.config
        with self._lock:
            running = self._running.get(config.key)
            if running is not None and not running.done():
                return
            if time.monotonic() - self._failed_at.get(config.key, -1e18) < 600:
                return  # do not hammer Prometheus after a failure: retry in 10 minutes
            future = self._executor.submit(self._train, pool)
            future.add_done_callback(lambda done, key=config.key: self._finished(key, done))
            self._running[config.key] = future

    def _finished(self, key: str, done: Future[int]) -> None:
        error = done.exception()
        if error is not None:
            log.warning("training a model for %s failed: %s", key, error)
            with self._lock:
                self._failed_at[key] = time.monotonic()
        else:
            log.info("trained model version %s for %s", done.result(), key)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
