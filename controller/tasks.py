"""The Celery app: work that outgrows one process (training, backtest sweeps) on Redis.

The broker and the result backend are `Settings.redis_url` (`HARMONY_REDIS_URL`); start
workers with `celery -A controller.tasks worker`. With no Redis URL nothing is sent
anywhere: callers run the very same task bodies in-process, so the embedded default needs
nothing running and the results are the same either way.

A backtest is one task per (scenario, policy): the policy's knob search on tune, its run on
test and, when asked, its search on test (controller.backtest.protocol.evaluate_policy).
The scenario (demand, pool spec and the forecasts of every decision origin) is computed
once by the caller and put in Redis under its content hash; each task names that key, so
the forecasts are neither recomputed nor sent once per task.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
from celery import Celery

from controller.backtest.protocol import PolicyOutcome, evaluate_policy
from controller.backtest.scenario import Scenario
from controller.errors import HarmonyError
from controller.settings import get_settings

EVALUATE_POLICY = "harmony.backtest.evaluate_policy"
TRAIN_POOL_MODEL = "harmony.operator.train_pool_model"
SCENARIO_PREFIX = "harmony:backtest:scenario:"
SCENARIO_TTL_SECONDS = 24 * 3600
_POLL_SECONDS = 0.05


def make_celery(redis_url: str | None) -> Celery:
    """A Celery app on `redis_url`, or one that runs every task eagerly in-process."""
    app = Celery("harmony")
    common: dict[str, Any] = {
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "worker_prefetch_multiplier": 1,
        "task_acks_late": True,
        "result_expires": SCENARIO_TTL_SECONDS,
        "broker_connection_retry_on_startup": True,
    }
    if redis_url:
        app.conf.update(broker_url=redis_url, result_backend=redis_url, **common)
    else:
        app.conf.update(
            broker_url="memory://",
            result_backend="cache+memory://",
            task_always_eager=True,
            task_eager_propagates=True,
            **common,
        )
    return app


app = make_celery(get_settings().redis_url)


@app.task(name=EVALUATE_POLICY)  # type: ignore[untyped-decorator]
def evaluate_backtest_policy(
    scenario_key: str, policy: str, sla: float, frontier: bool
) -> dict[str, Any]:
    """Deploy and judge one policy on the stored scenario; its outcome as a JSON document."""
    scenario = _stored_scenario(scenario_key, app.conf.broker_url)
    return evaluate_policy(scenario, policy, sla, frontier=frontier).to_transport()


@app.task(name=TRAIN_POOL_MODEL)  # type: ignore[untyped-decorator]
def train_pool_model(namespace: str, name: str) -> int:
    """Train the pool's forecaster from its Prometheus history, with the spec the state store
    holds, and store it; the new model version's id. The operator and the API's retrain
    endpoint send this to a worker when a broker is configured, and call it otherwise."""
    from controller.clock import SystemClock
    from controller.operator.models import train_stored_pool

    settings = get_settings()
    return train_stored_pool(
        namespace, name, _worker_sessions(), SystemClock(), settings.prometheus_url
    )


@functools.lru_cache(maxsize=1)
def _worker_sessions() -> Any:
    from controller.wiring import build_sessions

    return build_sessions(get_settings())


def train_on_worker(
    namespace: str,
    name: str,
    redis_url: str,
    *,
    timeout_seconds: float = 3600.0,
    queue: str | None = None,
) -> int:
    """Send `train_pool_model` to a worker (of `queue`, if given) and wait for the model
    version it stored; a failure on the worker is raised here as a `HarmonyError`."""
    sender = make_celery(redis_url)
    try:
        result = sender.send_task(
            TRAIN_POOL_MODEL, kwargs={"namespace": namespace, "name": name}, queue=queue
        )
        return int(result.get(timeout=timeout_seconds))
    except Exception as error:  # Redis unreachable, or the worker's exception re-raised
        raise HarmonyError(f"training {namespace}/{name} failed on a worker: {error}") from None


@functools.lru_cache(maxsize=4)
def _stored_scenario(scenario_key: str, redis_url: str) -> Scenario:
    client = redis.Redis.from_url(redis_url)
    try:
        payload = client.get(SCENARIO_PREFIX + scenario_key)
    finally:
        client.close()
    if payload is None:
        raise HarmonyError(
            f"backtest scenario {scenario_key[:12]} is not in Redis (expired after "
            f"{SCENARIO_TTL_SECONDS // 3600} h?); run the backtest again"
        )
    return Scenario.from_bytes(bytes(payload))  # type: ignore[arg-type]


PolicyDone = Callable[[PolicyOutcome], None]


def evaluate_policies(
    scenario: Scenario,
    policies: Sequence[str],
    sla: float,
    *,
    frontier: bool,
    redis_url: str | None = None,
    on_done: PolicyDone | None = None,
    timeout_seconds: float = 3600.0,
    queue: str | None = None,
) -> list[PolicyOutcome]:
    """Each policy deployed and judged on `scenario`, in the order given: as Celery tasks
    when a Redis URL is configured (`redis_url`, else `Settings.redis_url`; "" forces
    in-process), in this process otherwise. `queue` routes the tasks to workers started
    with `-Q queue`."""
    url = redis_url if redis_url is not None else get_settings().redis_url
    if not url:
        outcomes = []
        for policy in policies:
            outcome = evaluate_policy(scenario, policy, sla, frontier=frontier)
            if on_done is not None:
                on_done(outcome)
            outcomes.append(outcome)
        return outcomes
    return _run_on_workers(scenario, policies, sla, frontier, url, on_done, timeout_seconds, queue)


def _run_on_workers(
    scenario: Scenario,
    policies: Sequence[str],
    sla: float,
    frontier: bool,
    url: str,
    on_done: PolicyDone | None,
    timeout_seconds: float,
    queue: str | None,
) -> list[PolicyOutcome]:
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    key = scenario.digest()
    try:
        client.set(SCENARIO_PREFIX + key, scenario.to_bytes(), ex=SCENARIO_TTL_SECONDS)
    except redis.RedisError as error:
        raise HarmonyError(
            f"cannot reach Redis at HARMONY_REDIS_URL ({error}); start Redis or unset "
            "HARMONY_REDIS_URL to run the backtest in-process"
        ) from None
    finally:
        client.close()
    sender = make_celery(url)
    pending = {
        index: sender.send_task(EVALUATE_POLICY, args=(key, policy, sla, frontier), queue=queue)
        for index, policy in enumerate(policies)
    }
    outcomes: dict[int, PolicyOutcome] = {}
    deadline = time.monotonic() + timeout_seconds
    while pending:
        for index, async_result in list(pending.items()):
            if not async_result.ready():
                continue
            document = async_result.get(propagate=False)
            if async_result.failed():
                raise HarmonyError(
                    f"backtest task for policy {policies[index]} failed on a worker: {document}"
                )
            outcomes[index] = PolicyOutcome.from_transport(document)
            del pending[index]
            if on_done is not None:
                on_done(outcomes[index])
        if time.monotonic() > deadline:
            raise HarmonyError(
                f"{len(pending)} backtest tasks unfinished after {timeout_seconds:.0f} s: "
                "are Celery workers running (`celery -A controller.tasks worker`)?"
            )
        if pending:
            time.sleep(_POLL_SECONDS)
    return [outcomes[index] for index in range(len(policies))]
