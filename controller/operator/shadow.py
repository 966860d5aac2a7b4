"""In `Recommend` mode, the pool as it would be had every recommendation been enforced.

A recommendation only means something against the pool it would act on: measured
against the real target, which Harmony does not move in `Recommend` mode, the engine
would release a peak's replicas early (those still needed before new ones could be
ready are missing anyway) and the recorded recommendations could never be judged. So in
`Recommend` mode the policies observe this shadow: a `SimulatedPool` with the pool's
provisioning delay, started from the target's state, that takes each recommendation.
The pinned replicas and the metrics stay the real ones. Its state is saved with the
policies' (key `SHADOW_STATE`), so a restart or a takeover continues it; `Enforce` drops it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from controller.actuators.base import InFlight, ReplicaState
from controller.actuators.simulated import SimulatedPool
from controller.clock import ManualClock
from controller.operator.spec import PoolConfig

SHADOW_STATE = "shadow"
_NAME = "shadow"


class ShadowPool:
    """The recommended pool of one `Recommend`-mode target."""

    def __init__(self, config: PoolConfig, start: ReplicaState) -> None:
        self._clock = ManualClock(start.observed_at)
        self._pool = SimulatedPool.from_state(
            _NAME,
            self._clock,
            config.provisioning_delay,
            start,
            capacity_per_replica=config.capacity_per_replica,
        )

    def view(self, actual: ReplicaState, at: dt.datetime) -> ReplicaState:
        """The shadow's replicas at `at`, with the target's pinned replicas."""
        if at > self._clock.now():
            self._clock.set(at)
        state = self._pool.current(_NAME)
        return ReplicaState(
            usable=state.usable,
            in_flight=state.in_flight,
            observed_at=at,
            pinned=min(actual.pinned, state.usable),
        )

    def take(self, at: dt.datetime, replicas: int) -> None:
        if at > self._clock.now():
            self._clock.set(at)
        self._pool.scale(_NAME, replicas, at.isoformat())
        self._pool.forget_keys()

    def to_dict(self) -> dict[str, Any]:
        state = self._pool.current(_NAME)
        return {
            "at": self._clock.now().isoformat(),
            "usable": state.usable,
            "in_flight": [[entry.count, entry.ready_at.isoformat()] for entry in state.in_flight],
        }

    @classmethod
    def from_dict(cls, config: PoolConfig, data: Any) -> ShadowPool | None:
        """The shadow `to_dict` saved; None when absent or malformed."""
        if not isinstance(data, dict):
            return None
        try:
            start = ReplicaState(
                usable=int(data["usable"]),
                in_flight=tuple(
                    InFlight(int(count), dt.datetime.fromisoformat(ready))
                    for count, ready in data.get("in_flight", [])
                ),
                observed_at=dt.datetime.fromisoformat(data["at"]),
            )
        except (KeyError, TypeError, ValueError):
            return None
        return cls(config, start)


def policy_view(
    shadow: ShadowPool | None, config: PoolConfig, actual: ReplicaState, at: dt.datetime
) -> tuple[ShadowPool | None, ReplicaState]:
    """(the shadow to keep, the replicas the policies observe): the target itself in
    `Enforce` mode, the shadow (made from the target when missing) in `Recommend` mode."""
    if config.enforce:
        return None, actual
    if shadow is None:
        shadow = ShadowPool(config, actual)
    return shadow, shadow.view(actual, at)
