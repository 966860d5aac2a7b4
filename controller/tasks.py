"""The Celery app: work that outgrows one process (training, backtest sweeps) on Redis.

The broker and the result backend are `Settings.redis_url` (`HARMONY_REDIS_URL`); start
workers with `celery -A controller.tasks worker`. With no Redis URL nothing is sent
anywhere: callers run the very same task bodies in-process, so the embedded default needs
nothing running and the results are the same either way.

A backtest sweep is one task per (trace, policy, knob). The scenario (demand, pool spec and
the forecast samples of every decision origin) is computed once by the caller and put in
Redis under its content hash; each task names that key, so the samples are neither
recomputed nor sent once per task.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery

from controller.backtest.replay import CaseResult, run_case
from controller.backtest.scenario import Scenario
from controller.errors import HarmonyError
from controller.settings import get_settings

RUN_CASE = "harmony.backtest.run_case"
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


@app.task(name=RUN_CASE)  # type: ignore[untyped-decorator]
def run_backtest_case(scenario_key: str, policy: str, knob: float | None) -> dict[str, Any]:
    """Replay one (policy, knob) case of the stored scenario; the result as a JSON document."""
    scenario = _stored_scenario(scenario_key, app.conf.broker_url)
    return run_case(scenario, policy, knob).to_dict()


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


@dataclass(frozen=True)
class Case:
    """One task of a sweep: a scenario, a policy and its knob (None: the default)."""

    scenario: Scenario
    policy: str
    knob: float | None


CaseDone = Callable[[Case, CaseResult], None]


def run_cases(
    cases: Sequence[Case],
    *,
    redis_url: str | None = None,
    on_done: CaseDone | None = None,
    timeout_seconds: float = 3600.0,
    queue: str | None = None,
) -> list[CaseResult]:
    """Results of `cases` in their order: as Celery tasks when a Redis URL is configured
    (`redis_url`, else `Settings.redis_url`; "" forces in-process), in this process
    otherwise. `queue` routes the tasks to workers started with `-Q queue`."""
    url = redis_url if redis_url is not None else get_settings().redis_url
    if not url:
        results = []
        for case in cases:
            result = run_case(case.scenario, case.policy, case.knob)
            if on_done is not None:
                on_done(case, result)
            results.append(result)
        return results
    return _run_on_workers(cases, url, on_done, timeout_seconds, queue)


def _run_on_workers(
    cases: Sequence[Case],
    url: str,
    on_done: CaseDone | None,
    timeout_seconds: float,
    queue: str | None,
) -> list[CaseResult]:
    client = redis.Redis.from_url(url, socket_connect_timeout=5)
    keys: dict[int, str] = {}
    try:
        for case in cases:
            if id(case.scenario) not in keys:
                key = case.scenario.digest()
                client.set(SCENARIO_PREFIX + key, case.scenario.to_bytes(), ex=SCENARIO_TTL_SECONDS)
                keys[id(case.scenario)] = key
    except redis.RedisError as error:
        raise HarmonyError(
            f"cannot reach Redis at HARMONY_REDIS_URL ({error}); start Redis or unset "
            "HARMONY_REDIS_URL to run the backtest in-process"
        ) from None
    finally:
        client.close()
    sender = make_celery(url)
    pending = {
        index: sender.send_task(
            RUN_CASE, args=(keys[id(case.scenario)], case.policy, case.knob), queue=queue
        )
        for index, case in enumerate(cases)
    }
    results: dict[int, CaseResult] = {}
    deadline = time.monotonic() + timeout_seconds
    while pending:
        for index, async_result in list(pending.items()):
            if not async_result.ready():
                continue
            document = async_result.get(propagate=False)
            if async_result.failed():
                raise HarmonyError(
                    f"backtest task {cases[index].policy} (knob {cases[index].knob}) "
                    f"failed on a worker: {document}"
                )
            results[index] = CaseResult.from_dict(document)
            del pending[index]
            if on_done is not None:
                on_done(cases[index], results[index])
        if time.monotonic() > deadline:
            raise HarmonyError(
                f"{len(pending)} backtest tasks unfinished after {timeout_seconds:.0f} s: "
                "are Celery workers running (`celery -A controller.tasks worker`)?"
            )
        if pending:
            time.sleep(_POLL_SECONDS)
    return [results[index] for index in range(len(cases))]
