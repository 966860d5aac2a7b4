"""Cost–SLA curves and the headline figure: replica-hours at shortfall rate <= the SLA.

Each policy's figure at the SLA is its *best feasible knob*: the fewest replica-hours
among the knob values it was run at whose realised shortfall rate is <= the SLA (no
interpolation between knob values, so every quoted figure is a run that happened). A
policy none of whose runs met the SLA has no figure. With a coarse sweep that figure
depends on where the points fall, so the backtest bisects every policy alike between its
best feasible knob and its cheaper neighbours (`knobs_near_the_sla`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.backtest.replay import CaseResult

BASELINES = ("static", "hpa", "reactive", "headroom")
HARMONY = "harmony"
ORACLE = "oracle"
SELECTION_RULE = "best feasible knob (fewest replica-hours among runs with shortfall rate <= SLA)"


@dataclass(frozen=True)
class PolicySummary:
    policy: str
    knob_name: str
    curve: list[CaseResult]  # by knob value
    at_sla: CaseResult | None  # None: no knob met the SLA
    shown: CaseResult  # what the report plots: at_sla, else the lowest shortfall rate

    def to_dict(self) -> dict[str, Any]:
        def point(case: CaseResult) -> dict[str, Any]:
            return {"knob_value": case.knob_value, **case.metrics.to_dict()}

        return {
            "policy": self.policy,
            "knob_name": self.knob_name,
            "curve": [point(case) for case in self.curve],
            "at_sla": point(self.at_sla) if self.at_sla else None,
            "shown_knob_value": self.shown.knob_value,
        }


@dataclass(frozen=True)
class Summary:
    sla: float
    policies: dict[str, PolicySummary]
    best_baseline: str | None
    harmony_vs_best_baseline: float | None
    harmony_vs_oracle: float | None
    harmony_shortfall: float | None
    rule: str = SELECTION_RULE
    notes: list[str] = field(default_factory=list)

    def headline(self) -> str:
        """`sla=0.01 harmony_vs_best_baseline=0.xx harmony_vs_oracle=1.xx`."""
        return (
            f"sla={self.sla:g} harmony_vs_best_baseline={_fmt(self.harmony_vs_best_baseline)} "
            f"harmony_vs_oracle={_fmt(self.harmony_vs_oracle)}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "sla": self.sla,
            "rule": self.rule,
            "best_baseline": self.best_baseline,
            "harmony_vs_best_baseline": self.harmony_vs_best_baseline,
            "harmony_vs_oracle": self.harmony_vs_oracle,
            "harmony_shortfall": self.harmony_shortfall,
            "headline": self.headline(),
            "notes": self.notes,
            "policies": {name: item.to_dict() for name, item in self.policies.items()},
        }


def _fmt(value: float | None) -> str:
    return "nan" if value is None else f"{value:.2f}"


def knobs_near_the_sla(results: Sequence[CaseResult], sla: float) -> dict[str, list[float]]:
    """Per policy, the knob values half-way between its best feasible knob and each
    neighbouring knob on its curve that was cheaper but missed the SLA: where a run may
    still meet the SLA for less. A policy with no feasible run, or whose neighbours are
    dearer, gets none. Refining every policy the same way keeps the comparison fair."""
    summary = summarise(results, sla)
    wanted: dict[str, list[float]] = {}
    for name, item in summary.policies.items():
        best = item.at_sla
        if best is None or best.knob_value is None:
            continue
        swept = [case for case in item.curve if case.knob_value is not None]
        position = next(index for index, case in enumerate(swept) if case is best)
        for other in swept[max(position - 1, 0) : position] + swept[position + 1 : position + 2]:
            if other.metrics.replica_hours < best.metrics.replica_hours:
                middle = round((best.knob_value + other.knob_value) / 2, 9)
                if middle not in (best.knob_value, other.knob_value):
                    wanted.setdefault(name, []).append(middle)
    return wanted


def summarise(results: Sequence[CaseResult], sla: float) -> Summary:
    """Group cases by policy, pick each one's figure at `sla`, compare Harmony with the rest."""
    by_policy: dict[str, list[CaseResult]] = {}
    for case in results:
        by_policy.setdefault(case.policy, []).append(case)
    policies: dict[str, PolicySummary] = {}
    for name, cases in by_policy.items():
        curve = sorted(cases, key=lambda case: (case.knob_value is None, case.knob_value or 0.0))
        feasible = [case for case in curve if case.metrics.shortfall_rate <= sla]
        at_sla = min(feasible, key=lambda case: case.metrics.replica_hours) if feasible else None
        shown = at_sla or min(
            curve, key=lambda case: (case.metrics.shortfall_rate, case.metrics.replica_hours)
        )
        policies[name] = PolicySummary(name, curve[0].knob_name, curve, at_sla, shown)
    notes: list[str] = []
    baseline_hours = {
        name: policies[name].at_sla.metrics.replica_hours  # type: ignore[union-attr]
        for name in BASELINES
        if name in policies and policies[name].at_sla is not None
    }
    for name in BASELINES:
        if name in policies and policies[name].at_sla is None:
            notes.append(f"{name}: no knob value met shortfall rate <= {sla:g}")
    best = min(baseline_hours, key=lambda name: baseline_hours[name]) if baseline_hours else None
    harmony = policies.get(HARMONY)
    harmony_case = harmony.at_sla if harmony else None
    if harmony is not None and harmony_case is None:
        notes.append(f"harmony: no knob value met shortfall rate <= {sla:g}")
    oracle = policies.get(ORACLE)
    oracle_case = oracle.at_sla if oracle else None
    vs_best = vs_oracle = None
    if harmony_case is not None and best is not None:
        vs_best = harmony_case.metrics.replica_hours / baseline_hours[best]
    if harmony_case is not None and oracle_case is not None:
        vs_oracle = harmony_case.metrics.replica_hours / oracle_case.metrics.replica_hours
    return Summary(
        sla=sla,
        policies=policies,
        best_baseline=best,
        harmony_vs_best_baseline=vs_best,
        harmony_vs_oracle=vs_oracle,
        harmony_shortfall=harmony_case.metrics.shortfall_rate if harmony_case else None,
        notes=notes,
    )
