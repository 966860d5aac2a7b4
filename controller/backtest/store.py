"""Recording backtest runs and their per-(policy, knob) results in the state store."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from controller.backtest.protocol import CaseOutcome
from controller.clock import Clock
from controller.state import BacktestResult, BacktestRun, RunStatus


class RunRecorder:
    """Writes one `BacktestRun` row as the run progresses, and its results at the end."""

    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    def start(self, trace: str, parameters: dict[str, Any]) -> int:
        with self._sessions.begin() as session:
            run = BacktestRun(
                created_at=self._clock.now(),
                trace=trace,
                status=RunStatus.running,
                parameters=parameters,
            )
            session.add(run)
            session.flush()
            return int(run.id)

    def finish(self, run_id: int, case: CaseOutcome, report_path: str) -> None:
        with self._sessions.begin() as session:
            run = session.get_one(BacktestRun, run_id)
            run.status = RunStatus.succeeded
            run.finished_at = self._clock.now()
            run.report_path = report_path
            run.summary = case_summary(case)
            for row in result_rows(case):
                row.run_id = run_id
                session.add(row)

    def fail(self, run_id: int, error: str) -> None:
        with self._sessions.begin() as session:
            run = session.get_one(BacktestRun, run_id)
            run.status = RunStatus.failed
            run.finished_at = self._clock.now()
            run.error = error[:2000]


def case_summary(case: CaseOutcome) -> dict[str, Any]:
    """The run's summary document: the case's figures without its per-policy details."""
    document = case.to_dict()
    document.pop("policies")
    return document


def result_rows(case: CaseOutcome) -> list[BacktestResult]:
    """One row per run made: its test-period metrics, its tune-period metrics in details,
    and whether it is the policy's deployed or frontier knob."""
    rows = []
    for item in case.policies.values():
        frontier = item.frontier.knob if item.frontier and item.frontier.met else None
        for run in item.runs:
            metrics = run.metrics
            rows.append(
                BacktestResult(
                    policy=run.policy,
                    knob_name=run.knob_name,
                    knob_value=run.knob_value,
                    replica_hours=metrics.replica_hours,
                    cost=metrics.cost,
                    shortfall_rate=metrics.shortfall_rate,
                    shortfall_unit_hours=metrics.shortfall_unit_hours,
                    actions_per_day=metrics.actions_per_day,
                    mean_utilization=metrics.mean_utilization,
                    details={
                        "period": "test",
                        "steps": metrics.steps,
                        "shortfall_steps": metrics.shortfall_steps,
                        "role": item.role,
                        "deployed": run.knob_value == item.deployed.knob_value,
                        "frontier": frontier is not None and run.knob_value == frontier,
                        "tune": run.tune_metrics.to_dict() if run.tune_metrics else None,
                    },
                )
            )
    return rows
