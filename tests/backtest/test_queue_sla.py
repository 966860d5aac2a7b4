"""The queue SLA in the backtest: the replay's backlog and the metrics' waits on a
hand-made burst, the KEDA-style scaler, and `harmony backtest --sla-kind queue`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from controller.backtest.replay import period_metrics, replay
from controller.backtest.scenario import Scenario
from controller.cli.main import main
from decision.keda import KedaQueuePolicy
from decision.types import PoolObservation, PoolSpec
from tests.backtest.helpers import STEP, T0, ScriptedPolicy
from tests.backtest.test_cli_backtest import state_store, tiny_model  # noqa: F401

STEP_SECONDS = STEP.total_seconds()


def queue_spec(max_delay_steps: int) -> PoolSpec:
    return PoolSpec(
        capacity_per_replica=4.0,
        max_replicas=20,
        step_seconds=STEP_SECONDS,
        sla_kind="queue",
        max_delay_seconds=max_delay_steps * STEP_SECONDS,
    )


def test_the_replay_queues_a_burst_and_the_metrics_count_its_waits_exactly() -> None:
    # One replica of capacity 4 throughout; a burst of three steps at twice that.
    demand = [4.0, 4.0, 8.0, 8.0, 8.0, 0.0, 0.0, 0.0, 0.0]
    scenario = Scenario("burst", np.asarray(demand), T0, STEP, 2, queue_spec(1))
    policy = ScriptedPolicy(scenario.spec, [1] * 7)
    trace = replay(scenario, policy)
    assert trace.backlog.tolist() == [4.0, 8.0, 12.0, 8.0, 4.0, 0.0, 0.0]
    # Each decision saw the backlog left by the step before it.
    assert [seen.backlog for seen in policy.seen] == [0.0, 4.0, 8.0, 12.0, 8.0, 4.0, 0.0]
    metrics = period_metrics(scenario, trace, slice(0, 7))
    assert metrics.sla_kind == "queue"
    # Waits: 4 units 0 steps, 8 one step, 8 two steps, 4 three steps; late beyond 1 step.
    assert metrics.late_work_share == pytest.approx(12 / 24)
    assert metrics.sla_violation == metrics.late_work_share
    assert metrics.wait_p50_seconds == STEP_SECONDS
    assert metrics.wait_p99_seconds == 3 * STEP_SECONDS
    assert metrics.max_backlog == 12.0
    assert metrics.shortfall_rate == pytest.approx(3 / 7)


def test_the_shortfall_sla_keeps_no_backlog_and_judges_by_shortfall() -> None:
    spec = PoolSpec(capacity_per_replica=4.0, max_replicas=20, step_seconds=STEP_SECONDS)
    scenario = Scenario("burst", np.asarray([4.0, 4.0, 8.0, 0.0]), T0, STEP, 2, spec)
    trace = replay(scenario, ScriptedPolicy(spec, [1, 1]))
    metrics = period_metrics(scenario, trace, slice(0, 2))
    assert trace.backlog.tolist() == [0.0, 0.0]
    assert metrics.late_work_share is None
    assert metrics.sla_violation == metrics.shortfall_rate == 0.5


def test_keda_queue_scaler_asks_for_the_pending_work_over_its_target() -> None:
    spec = queue_spec(2)
    policy = KedaQueuePolicy(spec, knob=0.5)
    # 6 units queued plus 10 arrived in the last step: 16 / (0.5 * 4) = 8 replicas.
    observation = PoolObservation(
        replicas_usable=2, recent_demand=np.array([3.0, 10.0]), backlog=6.0
    )
    decision = policy.decide(observation, None)
    assert decision.replicas == 8
    assert decision.policy == "keda-queue"
    restored = KedaQueuePolicy(spec, knob=0.5)
    restored.load_state(policy.state())
    assert restored.state() == policy.state()


def test_backtest_under_the_queue_sla_reports_waits(
    tiny_model: Path,  # noqa: F811
    state_store: str,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = tmp_path / "report"
    code = main(
        [
            "backtest",
            "fisher:container1",
            "--model",
            str(tiny_model),
            "--policy",
            "harmony,keda-queue,oracle",
            "--samples",
            "40",
            "--peak-replicas",
            "20",
            "--sla-kind",
            "queue",
            "--max-delay",
            "20m",
            "--report",
            str(report),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "late work <= 1.25% of the work" in captured.out
    document = json.loads((report / "report.json").read_text())
    assert document["parameters"]["sla_kind"] == "queue"
    assert document["parameters"]["max_delay"] == 1200.0
    for item in document["case"]["policies"].values():
        test = item["test"]
        assert test["sla_kind"] == "queue"
        assert test["late_work_share"] is not None and test["wait_p99_seconds"] is not None
        assert item["met_on_test"] == (test["late_work_share"] <= 1.25 * 0.01)
    keda = document["case"]["policies"]["keda-queue"]
    assert keda["tuned"]["evaluations"] >= 2
    page = (report / "report.html").read_text()
    assert "of work waited over 20 min" in page and "p99 wait" in page


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sla-kind", "queue"], "--sla-kind queue needs --max-delay"),
        (["--max-delay", "10m"], "--max-delay applies to --sla-kind queue only"),
        (["--sla-kind", "latency"], "--sla-kind 'latency': choose one of shortfall, queue"),
        (["--sla-kind", "queue", "--max-delay", "0"], "--max-delay '0' is out of range"),
        (["--sla-kind", "queue", "--max-delay", "-5m"], "--max-delay '-5m'"),
    ],
)
def test_bad_queue_options_are_one_line_naming_them(
    options: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["backtest", "fisher:container1", *options])
    error = capsys.readouterr().err.strip()
    assert code == 2, error
    assert error.startswith(f"error: {message}")
    assert len(error.splitlines()) == 1
