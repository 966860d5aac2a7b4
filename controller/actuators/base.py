"""The actuator interface: how the control loop reads and changes a pool's replicas.

Modelled on how Karpenter and the Kubernetes `/scale` subresource behave: a pool has a
desired replica count; replicas asked for are *in flight* until they are usable (for a
GPU node: it advertises its GPUs), and only usable replicas count as capacity. The
operator's Kubernetes actuator and the backtest's `SimulatedPool` implement the same
protocol, so the control loop runs the very same code against either.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Protocol

from controller.errors import HarmonyError


@dataclass(frozen=True)
class InFlight:
    """Replicas asked for but not usable yet, and when they are expected to become usable."""

    count: int
    ready_at: dt.datetime


@dataclass(frozen=True)
class ReplicaState:
    """What a pool looks like at `observed_at`.

    usable: replicas that count as capacity now.
    in_flight: replicas requested and still provisioning, soonest ready first.
    pinned: usable replicas that must not be removed (pods marked do-not-disrupt).
    """

    usable: int
    in_flight: tuple[InFlight, ...]
    observed_at: dt.datetime
    pinned: int = 0

    @property
    def in_flight_count(self) -> int:
        return sum(entry.count for entry in self.in_flight)

    @property
    def desired(self) -> int:
        """The count the pool is heading for (usable plus in flight): what `/scale` reports."""
        return self.usable + self.in_flight_count


@dataclass(frozen=True)
class ScaleResult:
    """The outcome of one `Actuator.scale` call.

    applied: the pool's desired count was changed by this call.
    duplicate: the idempotency key had been seen before; nothing was done again and
        `from_replicas`/`to_replicas` repeat the first call's.
    message: one sentence for people (Events, logs, the action table).
    """

    pool: str
    idempotency_key: str
    from_replicas: int
    to_replicas: int
    applied: bool
    duplicate: bool = False
    message: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class TargetNotScalable(HarmonyError):
    """The target exists but can never be driven as it is (e.g. a dynamic Karpenter NodePool,
    which has no replica count): the spec must change; the message names the alternative."""


class Actuator(Protocol):
    """Reads and sets the replica count of named pools.

    Contract for every implementation:
    - `current(pool)` never changes anything; it reports usable replicas, those still in
      flight with the time each is expected to be usable, and pinned replicas.
    - `scale(pool, replicas, idempotency_key)` sets the desired count to `replicas`
      (>= 0). Scale-up starts provisioning `replicas - desired` new replicas, usable
      after the pool's provisioning delay. Scale-down first cancels replicas still in
      flight (the latest to be ready first), then removes usable ones at once, never
      below the pinned count (the result says when it could not go lower).
      Calling again with a key already used returns the first call's result, marked
      `duplicate`, without acting again: one action per pool per cycle, however often a
      cycle is retried.
    - Unknown pools, negative counts and failures of the backend raise `HarmonyError`;
      a target that cannot be driven at all raises `TargetNotScalable`.
    """

    def current(self, pool: str) -> ReplicaState: ...

    def scale(self, pool: str, replicas: int, idempotency_key: str) -> ScaleResult: ...
