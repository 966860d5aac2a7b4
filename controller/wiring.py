"""The composition root: settings, clock, state, sources, actuators, models and policies are
wired together here and nowhere else (like Karpenter's controllers.go).

Everything below takes its dependencies explicitly; only this module decides which
concrete ones a process runs with.
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from sqlalchemy.orm import Session, sessionmaker

from controller.actuators.capacity_buffer import CapacityBufferActuator
from controller.actuators.kubernetes import KubernetesScaleActuator
from controller.actuators.targets import TargetActuator
from controller.clock import Clock, SystemClock
from controller.cycle import CycleDeps
from controller.errors import HarmonyError
from controller.operator.cycle_steps import PoolRuntime
from controller.operator.leader import LeaseElector
from controller.operator.metrics import OperatorMetrics
from controller.operator.models import (
    BackgroundTrainer,
    StoreForecasterProvider,
    prometheus_source,
    record_pool,
    train_pool_model,
)
from controller.operator.runtime import OperatorRuntime
from controller.operator.status import StatusWriter
from controller.settings import Settings
from controller.sources.base import Source
from controller.state.db import create_engine_for, make_session_factory, require_current_schema

log = logging.getLogger(__name__)


def kubernetes_api_client(kubeconfig: str | None = None) -> k8s.ApiClient:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG)."""
    try:
        if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            k8s_config.load_incluster_config()
        else:
            k8s_config.load_kube_config(config_file=kubeconfig)
    except (k8s_config.ConfigException, FileNotFoundError, OSError) as error:
        raise HarmonyError(
            f"no Kubernetes credentials: {error}; run in a pod with a ServiceAccount or set "
            "KUBECONFIG"
        ) from None
    configuration = k8s.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = 32
    return k8s.ApiClient(configuration)


class SourceCache:
    """One Prometheus source per pool, rebuilt when the pool's spec changes."""

    def __init__(self) -> None:
        self._sources: dict[str, tuple[Any, Source]] = {}
        self._lock = threading.Lock()

    def source_for(self, pool: PoolRuntime) -> Source:
        config = pool.config
        fingerprint = (config.prometheus_url, config.prometheus_timeout, config.observed_indicators)
        with self._lock:
            found = self._sources.get(config.key)
            if found is not None and found[0] == fingerprint:
                return found[1]
            if found is not None:
                found[1].close()
            source = prometheus_source(config, observed=True)
            self._sources[config.key] = (fingerprint, source)
            return source

    def close(self) -> None:
        with self._lock:
            for _, source in self._sources.values():
                source.close()
            self._sources.clear()


@dataclass(frozen=True)
class OperatorOptions:
    """What `harmony operator` is told on its command line."""

    namespace: str = "default"  # where the Lease lives (the operator's own namespace)
    lease_name: str = "harmony-operator"
    identity: str | None = None
    leader_election: bool = True
    lease_seconds: float = 15.0
    renew_seconds: float = 5.0
    health_port: int | None = 8080
    gather_seconds: float = 0.3
    num_samples: int = 200
    train_models: bool = True
    kubeconfig: str | None = None


def default_identity() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def build_sessions(settings: Settings) -> sessionmaker[Session]:
    engine = create_engine_for(settings.database_url)
    require_current_schema(engine)
    return make_session_factory(engine)


def pool_trainer(
    settings: Settings, sessions: sessionmaker[Session], clock: Clock
) -> Callable[[PoolRuntime], int]:
    """How the operator trains a pool's model: on a Celery worker when a broker is
    configured (the pool's spec recorded first, for the worker to read), else in-process."""
    redis_url = settings.redis_url
    if not redis_url:
        return lambda pool: train_pool_model(pool.config, sessions, clock)

    def on_worker(pool: PoolRuntime) -> int:
        from controller.tasks import train_on_worker

        record_pool(pool, sessions, clock)
        return train_on_worker(pool.config.namespace, pool.config.name, redis_url)

    return on_worker


def build_operator_runtime(
    settings: Settings, options: OperatorOptions, clock: Clock | None = None
) -> OperatorRuntime:
    """Everything `harmony operator` runs with."""
    clock = clock or SystemClock()
    sessions = build_sessions(settings)
    api_client = kubernetes_api_client(options.kubeconfig)
    actuator = TargetActuator(
        KubernetesScaleActuator(api_client, clock), CapacityBufferActuator(api_client, clock)
    )
    trainer = None
    if options.train_models:
        # An operator that trains needs torch for its first pool: import it now, at startup
        # as before, not inside a cycle. One that does not train starts without it.
        importlib.import_module("forecaster.training")
        trainer = BackgroundTrainer(pool_trainer(settings, sessions, clock))
    forecasters = StoreForecasterProvider(
        sessions, clock, submit_training=None if trainer is None else trainer.submit
    )
    elector = (
        LeaseElector(
            api_client,
            options.namespace,
            options.lease_name,
            options.identity or default_identity(),
            lease_seconds=options.lease_seconds,
            renew_seconds=options.renew_seconds,
        )
        if options.leader_election
        else None
    )
    sources = SourceCache()
    deps = CycleDeps(
        source_for=sources.source_for,
        forecasters=forecasters,
        actuator=actuator,
        sessions=sessions,
        clock=clock,
        may_act=(lambda: True) if elector is None else elector.is_leader,
        num_samples=options.num_samples,
    )
    runtime = OperatorRuntime(
        deps=deps,
        actuator=actuator,
        elector=elector,
        metrics=OperatorMetrics(),
        default_prometheus_url=settings.prometheus_url,
        writer=StatusWriter(api_client, options.identity or "harmony-operator"),
        gather_seconds=options.gather_seconds,
        health_port=options.health_port,
    )
    return runtime
