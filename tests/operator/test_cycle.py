"""The control cycle against a simulated pool, a replayed trace and a real SQLite store."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from controller.actuators import SimulatedActuator, SimulatedPool
from controller.clock import ManualClock
from controller.cycle import CycleDeps, run_cycle
from controller.operator.cycle_steps import PoolRuntime
from controller.operator.records import PENDING_MESSAGE
from controller.operator.spec import parse_spec
from controller.sources.replay import TraceReplaySource
from controller.state import migrate
from controller.state.db import create_engine_for, make_session_factory
from controller.state.models import Action, ActionResult, DecisionRecord, ForecastRecord, Pool
from tests.operator.helpers import (
    HIGH,
    PEAK_STEPS,
    PERIOD,
    STEP,
    SeasonalNaive,
    is_peak,
    pool_spec_document,
    square_wave,
)

START = dt.datetime(2026, 1, 5, 0, 0, tzinfo=dt.UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'state.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


class Provider:
    def __init__(self, model: Any | None) -> None:
        self.model = model

    def forecaster_for(self, pool: PoolRuntime) -> tuple[Any, int | None] | None:
        return None if self.model is None else (self.model, None)


class Harness:
    """One pool, a clock, a simulated pool and a replayed square wave."""

    def __init__(self, engine: Engine, model: Any | None = None, **spec_changes: Any) -> None:
        self.clock = ManualClock(START + PERIOD * 3 * STEP)
        document = pool_spec_document(**spec_changes)
        self.document = document
        self.config = parse_spec("fleet", "pool", document, None)
        self.runtime = PoolRuntime.create(self.config, document)
        self.pool = SimulatedPool(
            self.config.key,
            self.clock,
            self.config.provisioning_delay,
            initial_replicas=1,
            capacity_per_replica=self.config.capacity_per_replica,
        )
        self.source = TraceReplaySource(square_wave(START, PERIOD * 40), self.clock)
        self.sessions: sessionmaker[Session] = make_session_factory(engine)
        self.leader = True
        self.deps = CycleDeps(
            source_for=lambda runtime: self.source,
            forecasters=Provider(model),
            actuator=SimulatedActuator([self.pool]),
            sessions=self.sessions,
            clock=self.clock,
            may_act=lambda: self.leader,
            num_samples=100,
        )

    def step(self) -> Any:
        (outcome,) = run_cycle([self.runtime], self.deps)
        self.clock.advance(STEP)
        return outcome

    def count(self, model: Any) -> int:
        with self.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_enforce_scales_up_before_the_peak_and_down_after(engine: Engine) -> None:
    harness = Harness(engine, model=SeasonalNaive(horizon=4))
    usable_at_peak: list[int] = []
    replicas_off_peak: list[int] = []
    for _ in range(PERIOD * 3):
        now = harness.clock.now()
        usable = harness.pool.current(harness.config.key).usable
        if is_peak(now):
            usable_at_peak.append(usable)
        elif not is_peak(now - 2 * STEP) and not is_peak(now + 3 * STEP):
            replicas_off_peak.append(harness.pool.current(harness.config.key).desired)
        outcome = harness.step()
        assert outcome.conditions["ModelReady"][0] == "True"
    needed = int(HIGH / harness.config.capacity_per_replica)
    # Nodes take 2 minutes: only a forecast gets them usable when the peak starts.
    assert len(usable_at_peak) == 3 * PEAK_STEPS and min(usable_at_peak) >= needed
    assert min(replicas_off_peak[2:]) < needed
    assert harness.count(ForecastRecord) == PERIOD * 3
    with harness.sessions() as session:
        actions = session.scalars(select(Action)).all()
    assert actions and all(action.result == ActionResult.succeeded for action in actions)
    assert len({action.idempotency_key for action in actions}) == len(actions)


def test_recommend_mode_never_scales(engine: Engine) -> None:
    harness = Harness(engine, model=SeasonalNaive(horizon=4), mode="Recommend")
    recommended = set()
    for _ in range(PERIOD * 2):
        recommended.add(harness.step().recommended)
    assert len(recommended) > 1  # it did want changes
    assert harness.pool.account.actions == 0
    assert harness.count(Action) == 0
    assert harness.count(DecisionRecord) == PERIOD * 2


def test_without_a_model_the_sla_aware_fallback_decides(engine: Engine) -> None:
    harness = Harness(engine, model=None)
    outcome = harness.step()
    assert outcome.policy == "harmony-fallback"
    status, reason, message = outcome.conditions["ModelReady"]
    assert (status, reason) == ("False", "NoModel")
    assert "SLA-aware fallback" in message


def test_the_fallback_learns_while_harmony_decides_and_takes_over_warm(engine: Engine) -> None:
    harness = Harness(engine, model=SeasonalNaive(horizon=4))
    for _ in range(PERIOD):
        assert harness.step().policy == "harmony"
    learned = harness.runtime.fallback.state()["calibration"]["updates"]
    # Every cycle once the demand before it spans the delay and the stabilisation window.
    assert learned >= PERIOD - 1 - harness.config.provisioning_delay_steps - (
        harness.config.stabilization_steps
    )
    harness.deps.forecasters = Provider(None)  # the model is gone
    outcome = harness.step()
    assert outcome.policy == "harmony-fallback"
    assert harness.runtime.fallback.state()["calibration"]["updates"] == learned + 1


def test_missing_metrics_hold_then_fall_back(engine: Engine) -> None:
    harness = Harness(
        engine, model=SeasonalNaive(horizon=4), fallbackReplicas=7, fallbackAfterFailedCycles=3
    )
    for _ in range(4):
        harness.step()
    desired = harness.pool.current(harness.config.key).desired
    harness.source = TraceReplaySource(square_wave(START, 1), harness.clock)  # nothing recent
    first = harness.step()
    assert first.conditions["MetricsAvailable"][0] == "False"
    assert first.policy == "hold" and first.recommended == desired
    assert harness.pool.current(harness.config.key).desired == desired
    harness.step()
    third = harness.step()
    assert third.policy == "fallback" and third.recommended == 7
    assert harness.pool.current(harness.config.key).desired == 7


def test_state_store_down_means_no_action(engine: Engine, tmp_path: Path) -> None:
    harness = Harness(engine, model=SeasonalNaive(horizon=4))
    broken = create_engine_for(f"sqlite:///{tmp_path / 'missing' / 'nothing.db'}")
    harness.deps.sessions = make_session_factory(broken)  # no tables: every write fails
    for _ in range(PERIOD):
        outcome = harness.step()
        assert outcome.conditions["Ready"][:2] == ("False", "StateStoreUnavailable")
    assert harness.pool.account.actions == 0


def test_only_the_leader_acts(engine: Engine) -> None:
    harness = Harness(engine, model=SeasonalNaive(horizon=4))
    harness.leader = False
    for _ in range(PERIOD):
        harness.step()
    assert harness.pool.account.actions == 0


class Crash(BaseException):
    """Stands for the process dying between recording the intent and patching."""


def test_a_crash_between_decide_and_act_applies_the_action_once(engine: Engine) -> None:
    harness = Harness(engine, model=SeasonalNaive(horizon=4))
    # Walk to the first cycle that wants a change.
    crashed_key: list[str] = []

    def crash(key: str) -> None:
        crashed_key.append(key)
        raise Crash(key)

    harness.deps.before_act = crash
    while not crashed_key:
        with contextlib.suppress(Crash):
            harness.step()
    assert harness.pool.account.actions == 0
    with harness.sessions() as session:
        (pending,) = session.scalars(select(Action)).all()
        assert pending.message == PENDING_MESSAGE
    # The restarted process (fresh runtime state) retries the same slot.
    harness.clock.set(harness.clock.now())  # still within the crashed cycle's slot
    harness.deps.before_act = None
    harness.runtime = PoolRuntime.create(harness.config, harness.runtime.raw_spec)
    (outcome,) = run_cycle([harness.runtime], harness.deps)
    (again,) = run_cycle([harness.runtime], harness.deps)
    assert harness.pool.account.actions == 1
    with harness.sessions() as session:
        (action,) = session.scalars(select(Action)).all()
    assert action.idempotency_key == crashed_key[0]
    assert action.result == ActionResult.succeeded
    assert outcome.action is not None and again.action is None


def run_to_the_end_of_a_peak(harness: Harness) -> None:
    for _ in range(PERIOD * 3):
        harness.step()
        now = harness.clock.now()
        if is_peak(now - STEP) and not is_peak(now):
            return
    raise AssertionError("no peak ended")


@pytest.mark.parametrize("saved", [True, False])
def test_a_restarted_operator_continues_the_policies_saved_state(
    engine: Engine, saved: bool
) -> None:
    """After a restart (or a takeover) the policies continue from the state the last cycle
    saved: the calibration posterior keeps what it learnt and the stabilisation window its
    history. Without that state (the control case) the posterior starts from its prior."""
    harness = Harness(
        engine,
        model=SeasonalNaive(horizon=4),
        behavior={"scaleDown": {"stabilizationWindow": "5m"}},
    )
    run_to_the_end_of_a_peak(harness)
    peak = harness.pool.current(harness.config.key).desired
    before = harness.runtime.harmony.state()
    assert before["calibration"]["updates"] > 0 and max(before["history"]) == peak
    if not saved:
        with harness.sessions.begin() as session:
            session.execute(update(Pool).values(policy_state={}))
    harness.runtime = PoolRuntime.create(harness.config, harness.document)  # a new process
    outcome = harness.step()
    after = harness.runtime.harmony.state()
    assert outcome.recommended == peak, outcome.reason  # the window holds either way
    if saved:
        assert after["calibration"]["updates"] > before["calibration"]["updates"]
        assert after["history"][:-1] == before["history"][1:]
    else:
        assert after["calibration"]["updates"] < before["calibration"]["updates"]


def test_a_store_outage_while_looking_up_the_model_fails_no_cycle(tmp_path: Path) -> None:
    from controller.operator.models import StoreForecasterProvider

    # A database file in a folder that does not exist: every connection fails.
    unreachable = create_engine_for(f"sqlite:///{tmp_path / 'gone' / 'state.db'}")
    provider = StoreForecasterProvider(make_session_factory(unreachable), ManualClock(START))
    document = pool_spec_document()
    runtime = PoolRuntime.create(parse_spec("fleet", "pool", document, None), document)
    assert provider.forecaster_for(runtime) is None
    assert provider.forecaster_for(runtime) is None  # looked up again, not cached as absent
    unreachable.dispose()
