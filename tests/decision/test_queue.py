"""The fluid FIFO queue and the queue SLA's engine: exact waits on hand-made traces, the
engine against a brute-force queue oracle, and never more replicas than the shortfall SLA
when the queue starts empty."""

from __future__ import annotations

import numpy as np
import pytest

from decision.engine import DemandAnalysis, QueueAnalysis, plan_replicas
from decision.errors import InvalidDecisionInput
from decision.queue import LateTracker, account_queue, fluid_backlog, late_work
from decision.types import PoolObservation, PoolSpec

CAPACITY = 4.0
BURST = np.array([8.0, 8.0, 8.0, 0.0, 0.0, 0.0])  # three steps at twice one replica's capacity


def test_burst_backlog_and_late_work_are_exact() -> None:
    capacity = np.full(BURST.size, CAPACITY)
    backlog = fluid_backlog(BURST, capacity)
    assert backlog.tolist() == [4.0, 8.0, 12.0, 8.0, 4.0, 0.0]
    # Served in order: step 0's work in steps 0 and 1, step 1's in 2 and 3, step 2's in 4, 5.
    assert late_work(BURST, backlog, capacity, 0).tolist() == [4.0, 8.0, 8.0, 0, 0, 0]
    assert late_work(BURST, backlog, capacity, 1).tolist() == [0.0, 4.0, 8.0, 0, 0, 0]
    assert late_work(BURST, backlog, capacity, 2).tolist() == [0.0, 0.0, 4.0, 0, 0, 0]
    assert late_work(BURST, backlog, capacity, 3).tolist() == [0.0] * 6


def test_burst_account_gives_work_weighted_waits() -> None:
    # Waits: 4 units 0 steps, 8 units 1 step, 8 units 2 steps, 4 units 3 steps.
    account = account_queue(
        BURST, np.full(BURST.size, CAPACITY), max_delay_steps=1, step_seconds=60.0
    )
    assert account.late_work_share == pytest.approx(12 / 24)
    assert account.wait_p50_seconds == 60.0
    assert account.wait_p95_seconds == 180.0
    assert account.wait_p99_seconds == 180.0
    assert account.max_backlog == 12.0


def test_gap_steps_bring_no_work_and_capacity_drains_backlog() -> None:
    arrivals = np.array([10.0, np.nan, 0.0, 0.0])
    account = account_queue(
        arrivals, np.full(4, CAPACITY), max_delay_steps=2, step_seconds=300.0, initial_backlog=2
    )
    # 2 queued ahead + 10: served 4, 4, 4 -> step 0's last 2 units wait 2 steps (not late).
    assert account.late_work_share == 0.0
    assert account.wait_p99_seconds == 600.0
    assert account.max_backlog == 8.0


def test_late_tracker_resolves_each_step_after_the_delay() -> None:
    tracker = LateTracker(wait_steps=1, lanes=2)
    resolved = [tracker.step(work, np.array([4.0, 8.0])) for work in BURST]
    assert resolved[0] == []
    late = [entry[0][1].tolist() for entry in resolved[1:4]]
    assert late == [[0.0, 0.0], [4.0, 0.0], [8.0, 0.0]]
    restored = LateTracker.from_dict(tracker.to_dict())
    assert restored.to_dict() == tracker.to_dict()


def _queue_spec(delay: int, wait_seconds: float, window: int = 1) -> PoolSpec:
    return PoolSpec(
        capacity_per_replica=CAPACITY,
        provisioning_delay_steps=delay,
        step_seconds=60.0,
        max_replicas=64,
        sla_kind="queue",
        max_delay_seconds=wait_seconds,
        decision_window_steps=window,
    )


def _brute_force_oracle(path: np.ndarray, spec: PoolSpec, usable_now: int, backlog: float) -> int:
    """Fewest r with no work of steps 0..stop-1 late beyond what no count prevents, by
    replaying each r through the fluid queue;
    the backlog (of unknown age: late already) served within max(k, 1) steps when the
    capacity can reach it by then, and in any case by the first step new replicas serve."""
    delay, wait = spec.provisioning_delay_steps, spec.max_delay_steps
    stop = delay + (spec.decision_window_steps or 1)
    due = max(wait, 1)
    reachable = due > delay or usable_now * CAPACITY * due >= backlog * (1 + 1e-9)
    arrivals = np.concatenate([path[:stop], np.zeros(wait)])
    before = np.arange(stop + wait) < delay

    def late_steps(capacity: np.ndarray) -> np.ndarray:
        queued = fluid_backlog(arrivals, capacity, backlog)
        return late_work(arrivals, queued, capacity, wait)[:stop] > 1e-9

    # Late even with unbounded capacity once new replicas can serve: no count prevents it.
    unavoidable = late_steps(np.where(before, usable_now * CAPACITY, 1e12))
    for replicas in range(spec.max_replicas + 1):
        capacity = np.where(before, min(replicas, usable_now), replicas) * CAPACITY
        window_late = (late_steps(capacity) & ~unavoidable).any()
        backlog_late = reachable and capacity[:due].sum() < backlog * (1 - 1e-9)
        stranded = capacity[: max(due, delay + 1)].sum() < backlog * (1 - 1e-9)
        if not window_late and not backlog_late and not stranded:
            return replicas
    return spec.max_replicas + 1


@pytest.mark.parametrize("delay,wait_seconds,window", [(0, 60, 1), (2, 120, 1), (1, 30, 3)])
def test_with_known_demand_the_engine_equals_the_queue_oracle(
    delay: int, wait_seconds: float, window: int
) -> None:
    spec = _queue_spec(delay, wait_seconds, window)
    rng = np.random.default_rng(delay * 10 + window)
    for _ in range(40):
        path = rng.gamma(2.0, 10.0, size=delay + window)
        usable_now = int(rng.integers(0, 12))
        backlog = float(rng.choice([0.0, rng.uniform(0, 40)]))
        observation = PoolObservation(
            replicas_usable=usable_now, recent_demand=np.zeros(4), backlog=backlog
        )
        analysis = QueueAnalysis(path[None, :], observation, spec)
        assert analysis.covering_all() == _brute_force_oracle(path, spec, usable_now, backlog)


@pytest.mark.parametrize("delay", [0, 2])
def test_from_an_empty_queue_the_queue_sla_never_needs_more_than_the_shortfall_sla(
    delay: int,
) -> None:
    rng = np.random.default_rng(delay)
    for trial in range(30):
        samples = np.sort(rng.gamma(2.0, 8.0, size=(200, delay + 1)), axis=1)
        # The replicas now cover the steps before the delay: the queue starts empty there.
        usable_now = int(np.ceil(samples[:, :delay].max() / CAPACITY)) if delay else 3
        observation = PoolObservation(replicas_usable=usable_now, recent_demand=np.zeros(4))
        for wait_seconds in (30.0, 60.0, 300.0):
            spec = _queue_spec(delay, wait_seconds)
            shortfall_spec = PoolSpec(
                capacity_per_replica=CAPACITY,
                provisioning_delay_steps=delay,
                step_seconds=60.0,
                max_replicas=64,
            )
            queue = plan_replicas(QueueAnalysis(samples, observation, spec), 0.01)
            shortfall = plan_replicas(DemandAnalysis(samples, observation, shortfall_spec), 0.01)
            assert queue.replicas <= shortfall.replicas, (trial, wait_seconds)


def test_a_wait_shorter_than_a_step_makes_the_queue_sla_the_shortfall_sla() -> None:
    rng = np.random.default_rng(7)
    samples = rng.gamma(2.0, 8.0, size=(300, 1))
    observation = PoolObservation(replicas_usable=2, recent_demand=np.zeros(4))
    queue = QueueAnalysis(samples, observation, _queue_spec(0, 30.0))
    shortfall = DemandAnalysis(
        samples, observation, PoolSpec(capacity_per_replica=CAPACITY, max_replicas=64)
    )
    assert np.array_equal(queue.sorted_requirements, shortfall.sorted_requirements)


@pytest.mark.parametrize(
    "fields,field_name",
    [
        ({"sla_kind": "queue"}, "max_delay_seconds"),
        ({"sla_kind": "queue", "max_delay_seconds": 0.0}, "max_delay_seconds"),
        ({"sla_kind": "queue", "max_delay_seconds": -60.0}, "max_delay_seconds"),
        ({"max_delay_seconds": 600.0}, "max_delay_seconds"),
        ({"sla_kind": "latency"}, "sla_kind"),
        (
            {"sla_kind": "queue", "max_delay_seconds": 60.0, "capacity_per_replica": (1.0, 2.0)},
            "one demand indicator",
        ),
    ],
)
def test_bad_queue_settings_are_refused_with_the_field_named(fields: dict, field_name: str) -> None:
    settings = {"capacity_per_replica": 1.0, **fields}
    with pytest.raises(InvalidDecisionInput, match=field_name):
        PoolSpec(**settings)


def test_a_scale_down_never_strands_work_already_queued_past_its_deadline() -> None:
    # 6 units queued: 3 arrived two steps ago (due by step t), 3 one step ago (due by t+1).
    spec = _queue_spec(delay=2, wait_seconds=120.0)
    observation = PoolObservation(
        replicas_usable=4, recent_demand=np.array([0.0, 12.0, 12.0]), backlog=24.0
    )
    quiet = np.zeros((1, 3))
    assert QueueAnalysis(quiet, observation, spec).covering_all() == 3
    # Work older than the delay is late already; it is still served within the delay.
    old = PoolObservation(replicas_usable=4, recent_demand=np.zeros(3), backlog=24.0)
    assert QueueAnalysis(quiet, old, spec).covering_all() == 3


def test_min_replicas_above_the_plans_does_not_collapse_the_queue_calibration() -> None:
    # Work arrives at exactly one replica's capacity per step and the forecast knows it;
    # min_replicas holds three. One burst the forecast missed queues work once: the pool
    # drains it at once, and later steps' plans (one replica) are right again, so the
    # calibration must not keep counting that burst against them.
    from decision.harmony import HarmonyPolicy

    spec = PoolSpec(
        capacity_per_replica=CAPACITY,
        min_replicas=3,
        max_replicas=16,
        provisioning_delay_steps=1,
        step_seconds=60.0,
        sla_kind="queue",
        max_delay_seconds=120.0,
    )
    policy = HarmonyPolicy(spec, 0.05)
    backlog, usable, recent = 0.0, 3, [CAPACITY] * 8
    for step in range(200):
        observation = PoolObservation(
            replicas_usable=usable, recent_demand=np.asarray(recent), backlog=backlog
        )
        decision = policy.decide(observation, np.full((200, 2), CAPACITY))
        usable = decision.replicas
        work = 6 * CAPACITY if step == 10 else CAPACITY
        backlog = max(0.0, backlog + work - usable * CAPACITY)
        recent = [*recent[1:], work]
        policy.observe(work)
    assert decision.replicas == 3
    assert policy.calibration.effective_epsilon(0.05) > 0.005


def test_a_pool_at_zero_with_work_queued_and_none_arriving_is_scaled_up_to_serve_it() -> None:
    # Nothing usable now, nothing arriving: the queued work can no longer be on time, but
    # it must be served as soon as new replicas can, not stranded.
    spec = _queue_spec(delay=2, wait_seconds=60.0)
    observation = PoolObservation(
        replicas_usable=0, recent_demand=np.array([0.0, 0.0, 0.0]), backlog=20.0
    )
    assert QueueAnalysis(np.zeros((1, 3)), observation, spec).covering_all() == 5
