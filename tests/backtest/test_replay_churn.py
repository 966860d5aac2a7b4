"""The backtest honours the churn limits: the replay reports the pool's recent actions to
every policy, so a minimum node lifetime or a scale-down rate cuts its actions per day."""

from __future__ import annotations

import dataclasses

import pytest

from controller.backtest.replay import replay, run_case
from controller.cli.main import main
from tests.backtest.helpers import ScriptedPolicy, synthetic_scenario


def test_the_replay_reports_the_newest_replicas_age_and_the_hours_scale_downs() -> None:
    scenario = synthetic_scenario(rows=320, decide_from=300)
    policy = ScriptedPolicy(
        scenario.spec, [20, 25, 25, 22, 21, 21, 21, 21, 21, 21, 21, 20] + [20] * 8
    )
    replay(scenario, policy)
    ages = [seen.seconds_since_scale_up for seen in policy.seen]
    downs = [seen.scale_downs_last_hour for seen in policy.seen]
    step = scenario.step.total_seconds()
    # Step 0 starts from the initial replicas; step 1 scaled up; the scripted pool never again.
    assert ages[2:5] == [step, 2 * step, 3 * step]
    assert downs[3:6] == [0, 1, 2]
    # Twelve 5-minute steps after it, each scale-down leaves the trailing hour.
    assert downs[11:17] == [2, 3, 3, 3, 2, 1]


def test_min_node_lifetime_cuts_the_backtests_actions_per_day() -> None:
    scenario = synthetic_scenario(rows=900, decide_from=300)
    free = run_case(scenario, "reactive", 0.7)
    limited_spec = dataclasses.replace(scenario.spec, min_node_lifetime_seconds=3 * 3600.0)
    limited = run_case(dataclasses.replace(scenario, spec=limited_spec), "reactive", 0.7)
    assert free.metrics.actions_per_day > 0
    assert limited.metrics.actions_per_day < free.metrics.actions_per_day
    assert limited.metrics.replica_hours >= free.metrics.replica_hours
    requested = limited.requested
    last_up = None
    for index in range(1, len(requested)):
        if requested[index] > requested[index - 1]:
            last_up = index
        if requested[index] < requested[index - 1] and last_up is not None:
            assert (index - last_up) * scenario.step.total_seconds() >= 3 * 3600.0


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--min-node-lifetime", "an hour", "--min-node-lifetime 'an hour' is not a duration"),
        ("--min-node-lifetime", "400d", "--min-node-lifetime"),
        ("--max-scale-downs-per-hour", "0", "--max-scale-downs-per-hour 0 is out of range"),
    ],
)
def test_a_bad_churn_option_is_one_line_naming_it(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["backtest", "fisher:container1", option, value])
    error = capsys.readouterr().err.strip()
    assert code == 2, error
    assert error.startswith(f"error: {message}")
    assert len(error.splitlines()) == 1 and "Traceback" not in error
