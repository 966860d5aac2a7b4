"""The figure at the SLA (best feasible knob) and the knobs worth trying near it."""

from __future__ import annotations

from controller.backtest.metrics import CaseMetrics
from controller.backtest.replay import CaseResult
from controller.backtest.summary import knobs_near_the_sla, summarise

SLA = 0.01


def case(
    policy: str, knob: float | None, replica_hours: float, shortfall_rate: float
) -> CaseResult:
    metrics = CaseMetrics(
        replica_hours=replica_hours,
        cost=replica_hours,
        shortfall_rate=shortfall_rate,
        shortfall_unit_hours=0.0,
        actions_per_day=0.0,
        mean_utilization=0.5,
        steps=1000,
        shortfall_steps=round(shortfall_rate * 1000),
    )
    return CaseResult(policy, "knob", knob, metrics, usable=[], requested=[])


CURVES = [
    # Harmony: cheaper with a larger ε; 0.01 is the best within the SLA, 0.015 misses it.
    case("harmony", 0.005, 3000, 0.004),
    case("harmony", 0.01, 2900, 0.007),
    case("harmony", 0.015, 2800, 0.012),
    # Headroom: cheaper with less headroom; 0.4 is the best within the SLA.
    case("headroom", 0.5, 3200, 0.002),
    case("headroom", 0.3, 2800, 0.011),
    case("headroom", 0.4, 3000, 0.006),
    # Static: nothing meets the SLA.
    case("static", 0.6, 2000, 0.05),
    case("static", 0.7, 2500, 0.02),
    # HPA: its cheapest run already meets the SLA, so nothing cheaper is left to find.
    case("hpa", 0.9, 2600, 0.009),
    case("hpa", 0.8, 2700, 0.004),
    case("oracle", 1.0, 1500, 0.0),
]


def test_each_policys_figure_is_its_cheapest_run_within_the_sla() -> None:
    summary = summarise(CURVES, SLA)
    assert summary.policies["harmony"].at_sla is CURVES[1]
    assert summary.policies["headroom"].at_sla is CURVES[5]
    assert summary.policies["static"].at_sla is None
    assert summary.best_baseline == "hpa"
    assert summary.harmony_vs_best_baseline == 2900 / 2600
    assert summary.harmony_vs_oracle == 2900 / 1500


def test_the_knobs_near_the_sla_lie_between_the_best_run_and_its_cheaper_neighbours() -> None:
    assert knobs_near_the_sla(CURVES, SLA) == {"harmony": [0.0125], "headroom": [0.35]}


def test_a_refined_run_that_meets_the_sla_moves_the_next_round_on() -> None:
    refined = [*CURVES, case("harmony", 0.0125, 2850, 0.009)]
    assert knobs_near_the_sla(refined, SLA)["harmony"] == [0.01375]
    assert summarise(refined, SLA).policies["harmony"].at_sla is refined[-1]
