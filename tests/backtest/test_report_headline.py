"""The report's opening sentences, for each way a backtest can come out."""

from __future__ import annotations

from typing import Any

import pytest

from controller.backtest.report.headline import (
    deployed_sentence,
    duration,
    hindsight_sentence,
    percent,
)


def _policy(hours: float, *, met: bool = True, frontier: float | None = None) -> dict[str, Any]:
    return {
        "met_on_test": met,
        "test": {"replica_hours": hours, "shortfall_rate": 0.004, "actions_per_day": 12.0},
        "frontier": {"met": frontier is not None} if frontier is not None else None,
        "frontier_replica_hours": frontier,
    }


def _case(**overrides: Any) -> dict[str, Any]:
    case: dict[str, Any] = {
        "sla": 0.01,
        "best_baseline": "static",
        "frontier_best_baseline": "static",
        "gap_capture": 0.5,
        "policies": {
            "harmony": _policy(2772.4, frontier=2500.0),
            "static": _policy(4698.0, frontier=4000.0),
            "oracle": _policy(923.0),
        },
    }
    case.update(overrides)
    return case


def test_the_deployed_result_in_one_sentence() -> None:
    assert deployed_sentence(_case(), 5.84) == (
        "At a 1% SLA, Harmony would have used 2,772 replica-hours over the 5.8-day test "
        "period and held the SLA (0.4% of steps short); the cheapest baseline that held it "
        "used 4,698 (static); perfect foresight needs 923."
    )


def test_when_no_baseline_held_the_sla_and_harmony_missed_it() -> None:
    case = _case(best_baseline=None)
    case["policies"]["harmony"]["met_on_test"] = False
    sentence = deployed_sentence(case, 1.0)
    assert "and missed the SLA (0.4% of steps short); no baseline held the SLA;" in sentence


def test_without_harmony_the_sentence_says_so() -> None:
    case = _case()
    del case["policies"]["harmony"]
    assert deployed_sentence(case, 1.0).startswith(
        "At a 1% SLA over the 1.0-day test period (Harmony was not run); the cheapest"
    )


def test_the_hindsight_result_reads_the_gap_closed() -> None:
    assert hindsight_sentence(_case()) == (
        "With hindsight (each knob set on the test period itself), Harmony needs 2,500 "
        "replica-hours and the best baseline (static) 4,000: Harmony closes 50% of that "
        "baseline's gap to perfect foresight."
    )
    assert "is no cheaper, so it closes none" in str(hindsight_sentence(_case(gap_capture=-0.01)))


def test_no_hindsight_sentence_without_sweep() -> None:
    case = _case()
    for item in case["policies"].values():
        item["frontier"] = None
    assert hindsight_sentence(case) is None


@pytest.mark.parametrize(
    ("value", "text"), [(0.01, "1%"), (0.0125, "1.25%"), (0.00333, "0.33%"), (0.0, "0%")]
)
def test_percentages_keep_only_the_digits_they_need(value: float, text: str) -> None:
    assert percent(value) == text


@pytest.mark.parametrize(("seconds", "text"), [(45, "45 s"), (300, "5 min"), (5400, "1.5 h")])
def test_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text
