"""The cycle's readiness phase: refresh the `EnforceReady` condition of the pools due.

The evidence (controller.readiness) replays up to twice `spec.readiness.minDays` of
recorded cycles, so it is refreshed now and then rather than every cycle: when the last
assessment is older than a 24th of `minDays` (at most an hour, at least one interval),
for at most `PER_CYCLE` pools per cycle and no more once `BUDGET_SECONDS` are spent
(a week of one-minute cycles takes about 0.3 s to load and replay), the longest-waiting
first, so that a fleet's cycle time stays flat. Between refreshes the condition stays as
last written.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from controller.errors import HarmonyError
from controller.operator.cycle_steps import Observed, PoolRuntime, condition
from controller.readiness import assess, load_cycles

log = logging.getLogger(__name__)
PER_CYCLE = 8
BUDGET_SECONDS = 0.5
CONDITION = "EnforceReady"
_DAY = dt.timedelta(days=1)
_LONGEST_REFRESH = dt.timedelta(hours=1)


def refresh_every(runtime: PoolRuntime) -> dt.timedelta:
    config = runtime.config
    return max(config.interval, min(_LONGEST_REFRESH, config.readiness_min_days * _DAY / 24))


def window(runtime: PoolRuntime) -> dt.timedelta:
    """How far back the evidence reaches: twice minDays, so gaps in the records can be
    made up and a missed SLA stays in view for as long again."""
    return 2 * runtime.config.readiness_min_days * _DAY


def due(observed: Sequence[Observed], now: dt.datetime) -> list[Observed]:
    waiting = [
        item
        for item in observed
        if item.pool_id is not None
        and (
            item.runtime.readiness_at is None
            or now - item.runtime.readiness_at >= refresh_every(item.runtime)
        )
    ]
    oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
    waiting.sort(key=lambda item: item.runtime.readiness_at or oldest)
    return waiting[:PER_CYCLE]


def refresh_readiness(
    observed: Sequence[Observed],
    conditions: Sequence[dict[str, tuple[str, str, str]]],
    sessions: sessionmaker[Session],
    now: dt.datetime,
) -> None:
    """Assess the pools due and put `EnforceReady` into their outcome's conditions."""
    by_item = {id(item): found for item, found in zip(observed, conditions, strict=True)}
    chosen = due(observed, now)
    if not chosen:
        return
    began = time.perf_counter()
    try:
        with sessions() as session:
            for item in chosen:
                if time.perf_counter() - began > BUDGET_SECONDS:
                    break
                assert item.pool_id is not None
                since = now - window(item.runtime)
                item.runtime.readiness_at = now
                try:
                    cycles = load_cycles(session, item.pool_id, since, now)
                    evidence = assess(cycles, item.runtime.config, since, now)
                except (ValueError, ArithmeticError, HarmonyError) as error:
                    # The evidence is a report: its failure must not stop the pool's scaling.
                    log.warning("%s: readiness not assessed: %s", item.runtime.config.key, error)
                    continue
                by_item[id(item)][CONDITION] = condition(
                    evidence.ready, evidence.reason, evidence.message()
                )
    except SQLAlchemyError as error:
        log.warning("readiness not assessed, trying at the next cycle: %s", error)
