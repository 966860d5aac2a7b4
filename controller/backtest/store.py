"""Recording backtest runs and their per-(policy, knob) results in the state store."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from controller.backtest.replay import CaseResult
from controller.backtest.summary import Summary
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

    def finish(
        self, run_id: int, results: list[CaseResult], summary: Summary, report_path: str
    ) -> None:
        with self._sessions.begin() as session:
            run = session.get_one(BacktestRun, run_id)
            run.status = RunStatus.succeeded
            run.finished_at = self._clock.now()
            run.report_path = report_path
            document = summary.to_dict()
            document.pop("policies")
            run.summary = document
            at_sla = {
                name: item.at_sla.knob_value if item.at_sla else None
                for name, item in summary.policies.items()
            }
            for case in results:
                metrics = case.metrics
                session.add(
                    BacktestResult(
                        run_id=run_id,
                        policy=case.policy,
                        knob_name=case.knob_name,
                        knob_value=case.knob_value,
                        replica_hours=metrics.replica_hours,
                        cost=metrics.cost,
                        shortfall_rate=metrics.shortfall_rate,
                        shortfall_unit_hours=metrics.shortfall_unit_hours,
                        actions_per_day=metrics.actions_per_day,
                        mean_utilization=metrics.mean_utilization,
                        details={
                            "steps": metrics.steps,
                            "shortfall_steps": metrics.shortfall_steps,
                            "chosen_at_sla": at_sla.get(case.policy) is not None
                            and at_sla[case.policy] == case.knob_value,
                        },
                    )
                )

    def fail(self, run_id: int, error: str) -> None:
        with self._sessions.begin() as session:
            run = session.get_one(BacktestRun, run_id)
            run.status = RunStatus.failed
            run.finished_at = self._clock.now()
            run.error = error[:2000]
