"""What the report's figures mean: the metric columns of the deployable table (report.html
and the CLI's table) with their units, and the other terms the report uses."""

from __future__ import annotations

from dataclasses import dataclass

from controller.backtest.protocol import MET_FACTOR


@dataclass(frozen=True)
class Column:
    """One `CaseMetrics` field as the table shows it."""

    key: str
    label: str
    unit: str
    fmt: str
    definition: str

    def format(self, value: float | None) -> str:
        return "–" if value is None else self.fmt.format(value)


# Actions per day sits beside cost: a cheap policy that resizes the pool all day long
# is not cheap to run.
COLUMNS = (
    Column(
        "replica_hours",
        "replica-hours",
        "replica-h",
        "{:,.1f}",
        "replicas billed in each step (usable plus still provisioning: a cloud bills a node "
        "from launch) times the step length, summed over the test period",
    ),
    Column(
        "cost",
        "cost",
        "replica-h × price",
        "{:,.1f}",
        "replica-hours times the price per replica-hour (--price)",
    ),
    Column(
        "actions_per_day",
        "scaling actions",
        "per day",
        "{:.1f}",
        "steps of the replay in which the pool's desired replica count changed, per day",
    ),
    Column(
        "shortfall_rate",
        "shortfall",
        "% of steps",
        "{:.2%}",
        "share of the steps with observed demand whose demand exceeded the usable capacity "
        "(usable replicas × capacity per replica), for any demand indicator",
    ),
    Column(
        "shortfall_unit_hours",
        "unmet demand",
        "demand unit-h",
        "{:,.2f}",
        "demand above usable capacity, summed over steps and indicators, times the step "
        "length in hours",
    ),
    Column(
        "mean_utilization",
        "utilisation",
        "% of usable capacity",
        "{:.1%}",
        "demand served (at most the usable capacity) over the usable capacity, summed over "
        "the observed steps",
    ),
)

TERMS = {
    "replica": "one unit of the pool (here a GPU node); once usable it serves the pool's "
    "capacity per replica, in demand units",
    "train, tune and test periods": "the trace in time order: the forecaster learns on "
    "train; each baseline's knob is set on tune (the cheapest value that held the SLA "
    "there); every figure of the table is measured on test, which no choice saw",
    "held the SLA": f"test shortfall at most {MET_FACTOR:g} × the SLA (the margin allows "
    "for chance on a finite test period)",
    "baseline": "a policy people run today; the cheapest baseline that held the SLA is "
    "what Harmony is compared with",
    "ablation": "Harmony with a part changed; never counted as a baseline",
    "perfect foresight (oracle)": "a policy that knows the true future demand, under the "
    "same provisioning delay: the least any policy could use",
    "hindsight (--sweep)": "each policy at its cheapest knob that held the SLA on the test "
    "period itself; gap closed = (best baseline − Harmony) / (best baseline − oracle)",
}
