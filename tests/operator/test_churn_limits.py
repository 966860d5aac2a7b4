"""The operator's cycle honours the churn limits of `spec.behavior.scaleDown`, across
restarts, and the spec parser names a bad value's field."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from controller.operator.cycle_steps import PoolRuntime
from controller.operator.spec import InvalidSpec, parse_spec
from controller.state import migrate
from controller.state.db import create_engine_for
from tests.operator.helpers import PERIOD, SeasonalNaive, pool_spec_document
from tests.operator.test_cycle import Harness


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'state.db'}")
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def resizes(harness: Harness, cycles: int) -> list[tuple[dt.datetime, int, int]]:
    """(when, before, after) of every resize the cycles made."""
    made = []
    for _ in range(cycles):
        at = harness.clock.now()
        outcome = harness.step()
        if outcome.action is not None and outcome.action.applied:
            made.append((at, outcome.action.from_replicas, outcome.action.to_replicas))
    return made


def down_delays(made: list[tuple[dt.datetime, int, int]]) -> list[dt.timedelta]:
    """For each scale-down, the time since the scale-up before it."""
    delays, last_up = [], None
    for at, before, after in made:
        if after > before:
            last_up = at
        elif last_up is not None:
            delays.append(at - last_up)
    return delays


def scale_down(**limits: object) -> dict[str, object]:
    return {"scaleDown": {"stabilizationWindow": "1m", **limits}}


def test_min_node_lifetime_keeps_nodes_the_decision_would_release_early(engine: Engine) -> None:
    free = Harness(engine, model=SeasonalNaive(horizon=4), behavior=scale_down())
    free_made = resizes(free, PERIOD * 3)
    early = down_delays(free_made)
    # Without the limit the pool sheds its peak nodes a few minutes after adding them.
    assert early and min(early) < dt.timedelta(minutes=15)
    kept = Harness(
        engine, model=SeasonalNaive(horizon=4), behavior=scale_down(minNodeLifetime="15m")
    )
    made = resizes(kept, PERIOD * 3)
    assert down_delays(made) and min(down_delays(made)) >= dt.timedelta(minutes=15)
    assert len(made) < len(free_made)
    # An operator restarted just after a scale-up remembers it: the lifetime still holds.
    while not made or made[-1][2] <= made[-1][1]:
        made += resizes(kept, 1)
    kept.runtime = PoolRuntime.create(kept.config, kept.document)
    made += resizes(kept, PERIOD * 2)
    assert min(down_delays(made)) >= dt.timedelta(minutes=15)


def test_max_actions_per_hour_limits_the_hours_scale_downs(engine: Engine) -> None:
    harness = Harness(
        engine, model=SeasonalNaive(horizon=4), behavior=scale_down(maxActionsPerHour=2)
    )
    made = resizes(harness, 60 * 3)
    downs = [at for at, before, after in made if after < before]
    assert downs
    for at in downs:
        assert sum(at - dt.timedelta(hours=1) < other <= at for other in downs) <= 2


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"minNodeLifetime": "an hour"}, "spec.behavior.scaleDown.minNodeLifetime"),
        ({"maxActionsPerHour": 0}, "spec.behavior.scaleDown.maxActionsPerHour"),
    ],
)
def test_a_bad_churn_limit_names_its_field(limits: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidSpec) as raised:
        parse_spec("fleet", "pool", pool_spec_document(behavior=scale_down(**limits)), None)
    assert raised.value.field == field
