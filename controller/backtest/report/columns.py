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

# Under the queue SLA (decision.queue) the waits stand beside the shortfall: a queue
# absorbs short bursts, so steps short of capacity are no violation by themselves.
QUEUE_COLUMNS = (
    Column(
        "late_work_share",
        "late work",
        "% of work",
        "{:.2%}",
        "share of the work (by amount) that waited longer than the max delay in the pool's "
        "FIFO queue: what the queue SLA bounds",
    ),
    Column(
        "wait_p50_seconds",
        "median wait",
        "s",
        "{:,.0f}",
        "work-weighted median time work waited in the queue before service, on the step grid",
    ),
    Column(
        "wait_p99_seconds",
        "p99 wait",
        "s",
        "{:,.0f}",
        "work-weighted 99th percentile of the wait, on the step grid",
    ),
    Column(
        "max_backlog",
        "largest backlog",
        "demand units",
        "{:,.1f}",
        "the most work queued after any step of the test period",
    ),
)


def columns_for(sla_kind: str) -> tuple[Column, ...]:
    """The table's metric columns for a pool with this SLA kind."""
    return COLUMNS + QUEUE_COLUMNS if sla_kind == "queue" else COLUMNS


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
