"""Work the API starts but does not wait for: backtest runs and retraining.

A backtest run is recorded as a `BacktestRun` (pending) and executed by one background
thread of the API process: it loads the trace and builds the scenario there, and its
policies (one task each: knob search on tune, run on test) go to the Celery workers
through `controller.tasks.evaluate_policies` when `HARMONY_REDIS_URL` is set (in this
thread otherwise). Progress is written to the run's
`summary["progress"]` as it goes, so any API replica can show it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api.errors import ApiError
from controller.clock import Clock
from controller.errors import HarmonyError
from controller.settings import Settings
from controller.state.models import BacktestResult, BacktestRun, RunStatus

log = logging.getLogger(__name__)
PROGRESS_EVERY_SECONDS = 0.5


class ProgressRecorder:
    """The backtest runner's `Reporter`: writes the stage and its count to the run's row."""

    def __init__(self, sessions: sessionmaker[Session], run_id: int) -> None:
        self._sessions = sessions
        self._run_id = run_id
        self._lock = threading.Lock()
        self._written_at = 0.0
        self.notes: list[str] = []

    def stage(self, description: str, total: int | None) -> Callable[[int], None]:
        done = 0
        self._write(description, done, total, force=True)

        def advance(count: int) -> None:
            nonlocal done
            done += count
            self._write(description, done, total, force=total is not None and done >= total)

        return advance

    def note(self, message: str) -> None:
        self.notes.append(message)

    def _write(self, stage: str, done: int, total: int | None, *, force: bool) -> None:
        with self._lock:
            if not force and time.monotonic() - self._written_at < PROGRESS_EVERY_SECONDS:
                return
            self._written_at = time.monotonic()
            with self._sessions.begin() as db:
                run = db.get(BacktestRun, self._run_id)
                if run is not None:
                    summary = dict(run.summary or {})
                    summary["progress"] = {"stage": stage, "done": done, "total": total}
                    run.summary = summary


class BacktestJobs:
    """Runs recorded backtests one at a time in a background thread of this process."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, clock: Clock) -> None:
        self._sessions = sessions
        self._settings = settings
        self._clock = clock
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="harmony-jobs")
        self._futures: list[Future[None]] = []

    def submit_backtest(self, run_id: int) -> None:
        self._futures.append(self._executor.submit(self.execute_backtest, run_id))

    def submit_call(self, function: Callable[..., Any], *args: Any) -> None:
        self._futures.append(self._executor.submit(_logged, function, *args))

    def wait(self, timeout: float | None = None) -> None:
        """Wait for everything submitted so far (tests and shutdown)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for future in list(self._futures):
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            with contextlib.suppress(CancelledError):  # shut down before it ran: nothing to wait
                future.exception(timeout=left)
        self._futures = [f for f in self._futures if not f.done()]

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def execute_backtest(self, run_id: int) -> None:
        recorder = ProgressRecorder(self._sessions, run_id)
        with self._sessions.begin() as db:
            run = db.get(BacktestRun, run_id)
            if run is None or run.status != RunStatus.pending:
                return
            run.status = RunStatus.running
            parameters = dict(run.parameters)
        try:
            results, summary = _run(parameters, self._settings, recorder)
        except (HarmonyError, ValueError) as error:
            self._finish_failed(run_id, str(error).strip().splitlines()[0] or type(error).__name__)
            return
        except Exception as error:
            log.exception("backtest run %s failed", run_id)
            self._finish_failed(run_id, f"internal error: {type(error).__name__}: {error}")
            return
        with self._sessions.begin() as db:
            run = db.get(BacktestRun, run_id)
            if run is None:
                return
            progress = (run.summary or {}).get("progress")
            run.summary = {**summary, "progress": progress}
            run.results = results
            run.status = RunStatus.succeeded
            run.finished_at = self._clock.now()

    def _finish_failed(self, run_id: int, message: str) -> None:
        with self._sessions.begin() as db:
            run = db.get(BacktestRun, run_id)
            if run is not None:
                run.status = RunStatus.failed
                run.error = message
                run.finished_at = self._clock.now()


def _logged(function: Callable[..., Any], *args: Any) -> None:
    try:
        function(*args)
    except Exception:
        log.exception("background job %s failed", getattr(function, "name", function))


def _run(
    parameters: dict[str, Any], settings: Settings, recorder: ProgressRecorder
) -> tuple[list[BacktestResult], dict[str, Any]]:
    # imported here: the runner pulls in torch, which the API needs only for backtests
    from controller.backtest.runner import BacktestConfig, run_backtest
    from controller.backtest.store import case_summary, result_rows
    from controller.traces import TraceOptions, load_trace
    from decision.types import SlaKind

    step = parameters.get("step_seconds")
    options = TraceOptions(
        step=dt.timedelta(seconds=step) if step else None,
        demand_column=parameters.get("demand_column"),
        scale=parameters.get("scale", 1.0),
    )
    recorder.stage(f"loading trace {parameters['trace']}", None)
    series = load_trace(parameters["trace"], options)
    config = BacktestConfig(
        policies=tuple(parameters["policies"]),
        capacity_per_replica=parameters["capacity_per_replica"],
        peak_replicas=parameters["peak_replicas"],
        provisioning_delay=dt.timedelta(seconds=parameters["provisioning_delay_seconds"]),
        sla=parameters["sla"],
        # Runs submitted before the queue SLA existed were shortfall runs.
        sla_kind=SlaKind(parameters.get("sla_kind", "shortfall")),
        max_delay=_seconds(parameters.get("max_delay_seconds")),
        train_fraction=parameters["train_fraction"],
        sweep=parameters["sweep"],
        num_samples=parameters["num_samples"],
        seed=parameters["seed"],
        price_per_replica_hour=parameters["price_per_replica_hour"],
        min_replicas=parameters["min_replicas"],
        max_replicas=parameters["max_replicas"],
        redis_url=settings.redis_url,
    )
    outcome = run_backtest(series, config, recorder)
    results = result_rows(outcome.case)
    summary = case_summary(outcome.case)
    summary["demand_scale"] = outcome.demand_scale
    summary["run_notes"] = outcome.notes
    return results, summary


def _seconds(value: float | None) -> dt.timedelta | None:
    return None if value is None else dt.timedelta(seconds=value)


def submit_retrain(ctx: Any, namespace: str, name: str, spec: dict[str, Any]) -> str:
    """Queue training of the pool's model: the Celery task `train_pool_model` on a worker
    when a broker is configured, else a background thread of this process; the task id.
    409 when the spec the operator recorded cannot be trained from (the field named)."""
    from controller.operator.models import train_stored_pool, trainable_config

    try:
        trainable_config(namespace, name, spec, ctx.settings.prometheus_url)
    except HarmonyError as error:
        raise ApiError(409, str(error)) from None
    if ctx.settings.redis_url:
        from controller.tasks import train_pool_model

        result = train_pool_model.apply_async(kwargs={"namespace": namespace, "name": name})
        return str(result.id)
    ctx.backtests.submit_call(
        train_stored_pool, namespace, name, ctx.sessions, ctx.clock, ctx.settings.prometheus_url
    )
    return f"local-{uuid.uuid4().hex}"
