"""`harmony operator`: run the kopf operator that scales every PoolAutoscaler's target."""

from __future__ import annotations

import datetime as dt
import faulthandler
import hashlib
import logging
import os
import signal
from typing import Any

import typer
from rich.console import Console

from controller.clock import Clock, ScaledClock
from controller.settings import get_settings

console = Console(stderr=True, highlight=False, soft_wrap=True)
CRASH_EXIT_CODE = 75


def default_lease_name(namespaces: list[str]) -> str:
    """One Lease per set of watched namespaces: operators of disjoint sets must not stand
    by for each other, and replicas of one set must share theirs."""
    if not namespaces:
        return "harmony-operator"
    digest = hashlib.sha256(",".join(sorted(set(namespaces))).encode()).hexdigest()[:10]
    return f"harmony-operator-{digest}"


def accelerated_clock(speed: float, start: str, since: float) -> Clock | None:
    """The clock of an accelerated run (soak tests), or None for the wall clock."""
    if speed == 1.0 and not start:
        return None
    origin = dt.datetime.fromisoformat(start) if start else dt.datetime.now(dt.UTC)
    if origin.tzinfo is None:
        raise typer.BadParameter("--clock-start needs a time zone, e.g. 2026-01-01T00:00:00Z")
    return ScaledClock(origin, speed, since or None)


def operator(
    namespace: list[str] = typer.Option(
        [], "--namespace", "-n", help="Watch only this namespace (repeatable); default: all."
    ),
    lease_namespace: str = typer.Option(
        "default", help="Namespace of the leader-election Lease (the operator's own)."
    ),
    lease_name: str = typer.Option(
        "",
        help="Name of the Lease (default: harmony-operator, plus a digest of the watched "
        "namespaces when --namespace is given, so operators of other namespaces act too).",
    ),
    identity: str = typer.Option("", help="This replica's name in the Lease (default: host-pid)."),
    leader_election: bool = typer.Option(
        True, help="Act only while holding the Lease (keep on with more than one replica)."
    ),
    lease_seconds: float = typer.Option(15.0, min=2.0, help="Lease duration in seconds."),
    renew_seconds: float = typer.Option(5.0, min=0.5, help="Lease renewal period in seconds."),
    tick: float = typer.Option(
        5.0, min=0.2, help="How often each pool's timer checks whether its interval has come."
    ),
    health_port: int = typer.Option(
        8080, min=0, max=65535, help="Port of /metrics, /healthz and /readyz (0: off)."
    ),
    samples: int = typer.Option(200, min=10, help="Forecast sample paths per pool and cycle."),
    gather: float = typer.Option(
        0.3, min=0.0, help="Seconds to gather due pools into one batched cycle."
    ),
    train: bool = typer.Option(True, help="Train pool models from Prometheus history."),
    crash_before_act: bool = typer.Option(
        False, hidden=True, help="Failpoint for tests: exit right after recording an intent."
    ),
    clock_speed: float = typer.Option(
        1.0, min=0.001, hidden=True, help="For soak tests: run the control clock this much faster."
    ),
    clock_start: str = typer.Option(
        "", hidden=True, help="For soak tests: the ISO time the clock shows at --clock-since."
    ),
    clock_since: float = typer.Option(
        0.0, hidden=True, help="For soak tests: the Unix time at which the clock shows its start."
    ),
) -> None:
    """Run the operator: observe → forecast → decide → act → record for every PoolAutoscaler."""
    import kopf

    from controller.operator.handlers import register_handlers
    from controller.wiring import OperatorOptions, build_operator_runtime

    # `kill -USR1 <pid>` prints every thread's stack: how a stuck cycle is diagnosed.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    settings = get_settings()
    options = OperatorOptions(
        namespace=lease_namespace,
        lease_name=lease_name or default_lease_name(namespace),
        identity=identity or None,
        leader_election=leader_election,
        lease_seconds=lease_seconds,
        renew_seconds=renew_seconds,
        health_port=health_port or None,
        num_samples=samples,
        gather_seconds=gather,
        train_models=train,
    )
    runtime = build_operator_runtime(
        settings, options, accelerated_clock(clock_speed, clock_start, clock_since)
    )
    if crash_before_act:

        def crash(key: str) -> None:
            logging.getLogger(__name__).warning("failpoint: exiting before acting on %s", key)
            os._exit(CRASH_EXIT_CODE)

        runtime.deps.before_act = crash
    registry = kopf.OperatorRegistry()
    register_handlers(registry, tick)
    where = ", ".join(namespace) if namespace else "all namespaces"
    console.print(f"Harmony operator watching PoolAutoscalers in {where}")
    run_options: dict[str, Any] = {"clusterwide": not namespace, "namespaces": namespace}
    kopf.run(
        registry=registry,
        standalone=True,
        memo=kopf.Memo(runtime=runtime),
        **run_options,
    )
