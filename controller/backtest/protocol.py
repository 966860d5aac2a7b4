"""The deployable protocol: every knob fit on the past, scored on the future.

A trace is split chronologically: train (first 50%), tune (next 25%), test (last 25%).
- The pool is sized from the train part only: the demand is multiplied so that the train
  part's 99.9th percentile needs `peak_replicas` replicas.
- Each policy runs once per knob value over tune + test, its state carried across.
- Deployable figure: a baseline's knob is the cheapest that met the SLA on tune
  (`search.search_knob`); Harmony runs at ε = SLA with no tuning, its calibration
  learning online from the start of tune. Each is then judged on test: it met the SLA
  when its test shortfall rate (under the queue SLA: its late share of work) is at most
  `MET_FACTOR` × SLA (binomial noise).
- Frontier figure (hindsight, an efficiency curve): every policy's cheapest knob meeting
  the SLA on test itself; gap capture = (best baseline − Harmony) / (best baseline − oracle).
Baselines are the systems users run (decision.policies.BASELINE_NAMES); Harmony's
ablations (ABLATION_NAMES) are reported apart and never count as the best baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from controller.backtest.replay import CaseResult, run_case
from controller.backtest.scenario import Scenario
from controller.backtest.search import Score, SearchOutcome, search_knob
from decision.policies import ABLATION_NAMES, BASELINE_NAMES, knob_info

MET_FACTOR = 1.25
TRAIN_SHARE = 0.5
TUNE_SHARE = 0.25
POOL_QUANTILE = 99.9
UNTUNED = ("harmony", "harmony-gaussian", "harmony-fallback")
ORACLE = "oracle"


@dataclass(frozen=True)
class Split:
    """Row borders of a trace: train [0, train_end), tune [train_end, tune_end), test after."""

    rows: int
    train_end: int
    tune_end: int

    @classmethod
    def of(cls, rows: int, train: float = TRAIN_SHARE, tune: float = TUNE_SHARE) -> Split:
        train_end = int(rows * train)
        tune_end = int(rows * (train + tune))
        if not 0 < train_end < tune_end < rows:
            raise ValueError(f"{rows} rows are too few to split into train, tune and test")
        return cls(rows, train_end, tune_end)

    def describe(self, step_hours: float) -> str:
        def days(count: int) -> str:
            return f"{count * step_hours / 24:.1f} d"

        return (
            f"train rows 0..{self.train_end - 1} ({days(self.train_end)}), tune "
            f"{self.train_end}..{self.tune_end - 1} ({days(self.tune_end - self.train_end)}), "
            f"test {self.tune_end}..{self.rows - 1} ({days(self.rows - self.tune_end)})"
        )


def role_of(policy: str) -> str:
    if policy == "harmony":
        return "harmony"
    if policy == ORACLE:
        return "oracle"
    return "ablation" if policy in ABLATION_NAMES else "baseline"


@dataclass
class PolicyOutcome:
    """One policy on one case: its deployed run, its frontier run and every run made."""

    policy: str
    role: str
    knob_name: str
    deployed: CaseResult
    #: The search on tune that fixed the deployed knob (None: ε = SLA or the oracle).
    tuned: SearchOutcome | None = None
    #: The search on test (hindsight); None when the frontier was not asked for.
    frontier: SearchOutcome | None = None
    runs: list[CaseResult] = field(default_factory=list)

    def met_on_test(self, sla: float) -> bool:
        return self.deployed.metrics.sla_violation <= MET_FACTOR * sla

    def frontier_hours(self) -> float | None:
        if self.frontier is None or not self.frontier.met:
            return None
        return self.frontier.score.replica_hours

    def to_transport(self) -> dict[str, Any]:
        """Everything, JSON-ready (what a Celery worker sends back); `from_transport`
        restores it."""
        return {
            "policy": self.policy,
            "role": self.role,
            "knob_name": self.knob_name,
            "deployed": self.runs.index(self.deployed),
            "tuned": self.tuned.to_dict() if self.tuned else None,
            "frontier": self.frontier.to_dict() if self.frontier else None,
            "runs": [run.to_dict() for run in self.runs],
        }

    @classmethod
    def from_transport(cls, data: dict[str, Any]) -> PolicyOutcome:
        runs = [CaseResult.from_dict(run) for run in data["runs"]]
        tuned, frontier = data.get("tuned"), data.get("frontier")
        return cls(
            policy=data["policy"],
            role=data["role"],
            knob_name=data["knob_name"],
            deployed=runs[data["deployed"]],
            tuned=SearchOutcome.from_dict(tuned) if tuned else None,
            frontier=SearchOutcome.from_dict(frontier) if frontier else None,
            runs=runs,
        )

    def to_dict(self, sla: float) -> dict[str, Any]:
        def search(outcome: SearchOutcome | None) -> dict[str, Any] | None:
            if outcome is None:
                return None
            return {
                "knob": outcome.knob,
                "met": outcome.met,
                "at_limit": outcome.at_limit,
                "evaluations": len(outcome.evaluations),
            }

        return {
            "policy": self.policy,
            "role": self.role,
            "knob_name": self.knob_name,
            "deployed_knob": self.deployed.knob_value,
            "met_on_test": self.met_on_test(sla),
            "test": self.deployed.metrics.to_dict(),
            "tune": self.deployed.tune_metrics.to_dict() if self.deployed.tune_metrics else None,
            "tuned": search(self.tuned),
            "frontier": search(self.frontier),
            "frontier_replica_hours": self.frontier_hours(),
        }


@dataclass
class CaseOutcome:
    """Every policy on one (trace, pool size) case, and the figures that compare them."""

    name: str
    peak_replicas: int
    sla: float
    policies: dict[str, PolicyOutcome]

    def _baselines(self) -> list[PolicyOutcome]:
        return [item for item in self.policies.values() if item.role == "baseline"]

    @property
    def harmony(self) -> PolicyOutcome | None:
        return self.policies.get("harmony")

    def best_baseline(self) -> PolicyOutcome | None:
        """The cheapest baseline (test replica-hours) that met the SLA on test."""
        met = [item for item in self._baselines() if item.met_on_test(self.sla)]
        return min(met, key=lambda item: item.deployed.metrics.replica_hours, default=None)

    def deployable_vs_best(self) -> float:
        best, harmony = self.best_baseline(), self.harmony
        if best is None or harmony is None:
            return math.nan
        return harmony.deployed.metrics.replica_hours / best.deployed.metrics.replica_hours

    def frontier_best(self) -> PolicyOutcome | None:
        met = [item for item in self._baselines() if item.frontier_hours() is not None]
        return min(met, key=lambda item: item.frontier_hours() or 0.0, default=None)

    def frontier_vs_best(self) -> float:
        best, harmony = self.frontier_best(), self.harmony
        hours = harmony.frontier_hours() if harmony else None
        if best is None or hours is None:
            return math.nan
        return hours / (best.frontier_hours() or math.nan)

    def gap_capture(self) -> float:
        best, harmony, oracle = self.frontier_best(), self.harmony, self.policies.get(ORACLE)
        hours = harmony.frontier_hours() if harmony else None
        if best is None or hours is None or oracle is None:
            return math.nan
        best_hours = best.frontier_hours() or math.nan
        gap = best_hours - oracle.deployed.metrics.replica_hours
        return (best_hours - hours) / gap if gap > 0 else math.nan

    def line(self) -> str:
        """`deployable sla=… harmony_met=yes|no harmony_rh=N best_baseline=NAME best_rh=N
        deployable_vs_best=0.xx frontier_vs_best=0.xx gap_capture=0.xx`."""
        harmony, best = self.harmony, self.best_baseline()
        met = "yes" if harmony and harmony.met_on_test(self.sla) else "no"
        harmony_rh = f"{harmony.deployed.metrics.replica_hours:.0f}" if harmony else "nan"
        best_rh = f"{best.deployed.metrics.replica_hours:.0f}" if best else "nan"
        return (
            f"deployable sla={self.sla:g} harmony_met={met} harmony_rh={harmony_rh} "
            f"best_baseline={best.policy if best else 'none'} best_rh={best_rh} "
            f"deployable_vs_best={format_ratio(self.deployable_vs_best())} "
            f"frontier_vs_best={format_ratio(self.frontier_vs_best())} "
            f"gap_capture={format_ratio(self.gap_capture())}"
        )

    def to_dict(self) -> dict[str, Any]:
        best, frontier_best = self.best_baseline(), self.frontier_best()
        return {
            "name": self.name,
            "peak_replicas": self.peak_replicas,
            "sla": self.sla,
            "met_factor": MET_FACTOR,
            "best_baseline": best.policy if best else None,
            "frontier_best_baseline": frontier_best.policy if frontier_best else None,
            "deployable_vs_best": _json(self.deployable_vs_best()),
            "frontier_vs_best": _json(self.frontier_vs_best()),
            "gap_capture": _json(self.gap_capture()),
            "line": self.line(),
            "policies": {name: item.to_dict(self.sla) for name, item in self.policies.items()},
        }


def format_ratio(value: float) -> str:
    """A ratio in the machine-readable lines: two decimals, or nan."""
    return "nan" if not math.isfinite(value) else f"{value:.2f}"


def _json(value: float) -> float | None:
    return value if math.isfinite(value) else None


def hours_tolerance(scenario: Scenario, period: str) -> float:
    """One replica-hour per day of the period searched."""
    span = scenario.periods()[period]
    days = (span.stop - span.start) * scenario.step.total_seconds() / 86_400.0
    return max(days, 1e-3)


def evaluate_policy(
    scenario: Scenario,
    policy: str,
    sla: float,
    *,
    frontier: bool,
) -> PolicyOutcome:
    """Deploy `policy` as a user would (knob fit on tune, or ε = SLA for Harmony), judge
    it on test, and with `frontier` also find its cheapest knob on test in hindsight."""
    if scenario.test_from is None:
        raise ValueError(f"scenario {scenario.name!r} has no test period")
    info = knob_info(policy)
    runs: dict[float | None, CaseResult] = {}

    def run(knob: float | None) -> CaseResult:
        if knob not in runs:
            runs[knob] = run_case(scenario, policy, knob)
        return runs[knob]

    def on_tune(knob: float) -> Score:
        metrics = run(knob).tune_metrics
        assert metrics is not None
        return Score(metrics.sla_violation, metrics.replica_hours)

    def on_test(knob: float) -> Score:
        metrics = run(knob).metrics
        return Score(metrics.sla_violation, metrics.replica_hours)

    role = role_of(policy)
    tuned: SearchOutcome | None = None
    if policy == ORACLE:
        deployed = run(None)
    elif policy in UNTUNED:
        deployed = run(sla)
    else:
        tuned = search_knob(info, on_tune, sla, hours_tolerance=hours_tolerance(scenario, "tune"))
        deployed = run(tuned.knob)
    searched: SearchOutcome | None = None
    if frontier and policy != ORACLE:
        searched = search_knob(
            info,
            on_test,
            sla,
            start=deployed.knob_value,
            hours_tolerance=hours_tolerance(scenario, "test"),
        )
    ordered = sorted(runs.values(), key=lambda case: case.knob_value or 0.0)
    return PolicyOutcome(
        policy=policy,
        role=role,
        knob_name=info.name,
        deployed=deployed,
        tuned=tuned,
        frontier=searched,
        runs=ordered,
    )


def ordered_policies(names: Sequence[str]) -> list[str]:
    """Harmony first, then the baselines in registry order, the ablations, the oracle."""
    rank = {"harmony": 0, "baseline": 1, "ablation": 2, "oracle": 3}
    order = {name: index for index, name in enumerate((*BASELINE_NAMES, *ABLATION_NAMES))}
    return sorted(names, key=lambda name: (rank[role_of(name)], order.get(name, 0)))
