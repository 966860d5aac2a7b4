"""A simulated node pool: the actuator behind backtests and `harmony demo`.

Replicas asked for become usable after the provisioning delay; replicas removed go at
once. Every replica, usable or still provisioning, is billed from the moment it is asked
for until it is removed (clouds bill an instance from launch, not from readiness).
Accounting is exact in continuous time: the pool integrates billed and usable replicas
between the moments they change, whatever the calling cadence.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from controller.actuators.base import InFlight, ReplicaState, ScaleResult
from controller.clock import Clock
from controller.errors import HarmonyError

_HOUR = 3600.0


@dataclass
class PoolAccount:
    """What a simulated pool has cost so far."""

    billed_replica_seconds: float = 0.0
    usable_replica_seconds: float = 0.0
    actions: int = 0

    @property
    def billed_replica_hours(self) -> float:
        return self.billed_replica_seconds / _HOUR

    @property
    def usable_replica_hours(self) -> float:
        return self.usable_replica_seconds / _HOUR


class SimulatedPool:
    """One pool of identical replicas (e.g. 8-GPU nodes), implementing `Actuator`.

    name: the pool name `current`/`scale` answer to.
    provisioning_delay: time from request to usable.
    price_per_replica_hour: what one replica costs per hour while it exists.
    capacity_per_replica: demand units one usable replica serves.
    initial_replicas: usable at `clock.now()` when the pool is made.
    pinned: replicas that scale-down never removes (do-not-disrupt pods).
    """

    def __init__(
        self,
        name: str,
        clock: Clock,
        provisioning_delay: dt.timedelta,
        *,
        price_per_replica_hour: float = 1.0,
        capacity_per_replica: float = 1.0,
        initial_replicas: int = 0,
        pinned: int = 0,
    ) -> None:
        if provisioning_delay < dt.timedelta(0):
            raise HarmonyError(f"pool {name!r}: provisioning delay must be >= 0")
        if initial_replicas < 0 or pinned < 0:
            raise HarmonyError(f"pool {name!r}: replica counts must be >= 0")
        if not capacity_per_replica > 0:
            raise HarmonyError(f"pool {name!r}: capacity per replica must be positive")
        self.name = name
        self.provisioning_delay = provisioning_delay
        self.price_per_replica_hour = price_per_replica_hour
        self.capacity_per_replica = capacity_per_replica
        self.pinned = pinned
        self.account = PoolAccount()
        self._clock = clock
        self._usable = initial_replicas
        self._in_flight: list[InFlight] = []  # sorted by ready_at, soonest first
        self._accounted_until = clock.now()
        self._results: dict[str, ScaleResult] = {}

    @classmethod
    def from_state(
        cls,
        name: str,
        clock: Clock,
        provisioning_delay: dt.timedelta,
        state: ReplicaState,
        *,
        capacity_per_replica: float = 1.0,
    ) -> SimulatedPool:
        """A pool that continues from `state` (usable now, batches still provisioning)."""
        pool = cls(
            name,
            clock,
            provisioning_delay,
            capacity_per_replica=capacity_per_replica,
            initial_replicas=state.usable,
        )
        pool._in_flight = sorted(
            (entry for entry in state.in_flight if entry.count > 0), key=lambda e: e.ready_at
        )
        return pool

    # --- Actuator protocol -------------------------------------------------------------

    def current(self, pool: str) -> ReplicaState:
        self._check_name(pool)
        now = self._advance()
        return ReplicaState(
            usable=self._usable,
            in_flight=tuple(self._in_flight),
            observed_at=now,
            pinned=min(self.pinned, self._usable),
        )

    def scale(self, pool: str, replicas: int, idempotency_key: str) -> ScaleResult:
        self._check_name(pool)
        if replicas < 0:
            raise HarmonyError(f"pool {pool!r}: cannot scale to {replicas} replicas")
        seen = self._results.get(idempotency_key)
        if seen is not None:
            return ScaleResult(
                pool=seen.pool,
                idempotency_key=seen.idempotency_key,
                from_replicas=seen.from_replicas,
                to_replicas=seen.to_replicas,
                applied=False,
                duplicate=True,
                message=f"action {idempotency_key!r} was already taken; nothing done",
            )
        now = self._advance()
        before = self._desired()
        if replicas > before:
            self._in_flight.append(InFlight(replicas - before, now + self.provisioning_delay))
            self._in_flight.sort(key=lambda entry: entry.ready_at)
            if self.provisioning_delay == dt.timedelta(0):
                self._advance()
        elif replicas < before:
            self._remove(before - replicas)
        after = self._desired()
        if after != before:
            self.account.actions += 1
        if after == replicas:
            message = f"scaled {before} → {after}" if after != before else f"kept {before}"
        else:
            message = (
                f"asked for {replicas}, kept {after}: {self.pinned} replicas are pinned "
                "by do-not-disrupt pods"
            )
        result = ScaleResult(
            pool=pool,
            idempotency_key=idempotency_key,
            from_replicas=before,
            to_replicas=after,
            applied=after != before,
            message=message,
        )
        self._results[idempotency_key] = result
        return result

    # --- helpers for simulations ---------------------------------------------------------

    def usable_capacity(self) -> float:
        """Demand units the pool serves right now."""
        self._advance()
        return self._usable * self.capacity_per_replica

    @property
    def cost(self) -> float:
        """Money spent so far (billed replica-hours × price)."""
        self._advance()
        return self.account.billed_replica_hours * self.price_per_replica_hour

    def forget_keys(self) -> None:
        """Drop remembered idempotency keys (long simulations keep memory flat)."""
        self._results.clear()

    # --- internals -----------------------------------------------------------------------

    def _check_name(self, pool: str) -> None:
        if pool != self.name:
            raise HarmonyError(f"simulated pool {self.name!r} was asked about pool {pool!r}")

    def _desired(self) -> int:
        return self._usable + sum(entry.count for entry in self._in_flight)

    def _advance(self) -> dt.datetime:
        """Bring accounting up to now, promoting replicas that became usable on the way."""
        now = self._clock.now()
        if now < self._accounted_until:
            raise HarmonyError("the simulated pool's clock went backwards")
        while self._in_flight and self._in_flight[0].ready_at <= now:
            self._accrue(self._in_flight[0].ready_at)
            self._usable += self._in_flight.pop(0).count
        self._accrue(now)
        return now

    def _accrue(self, until: dt.datetime) -> None:
        seconds = (until - self._accounted_until).total_seconds()
        if seconds <= 0:
            return
        self.account.billed_replica_seconds += self._desired() * seconds
        self.account.usable_replica_seconds += self._usable * seconds
        self._accounted_until = until

    def _remove(self, count: int) -> None:
        # Cancel what is still provisioning first (latest ready first), then usable replicas.
        while count > 0 and self._in_flight:
            latest = self._in_flight[-1]
            taken = min(count, latest.count)
            count -= taken
            if taken == latest.count:
                self._in_flight.pop()
            else:
                self._in_flight[-1] = InFlight(latest.count - taken, latest.ready_at)
        removable = max(self._usable - self.pinned, 0)
        self._usable -= min(count, removable)


class SimulatedActuator:
    """Several simulated pools behind one `Actuator`, looked up by name."""

    def __init__(self, pools: list[SimulatedPool]) -> None:
        self.pools = {pool.name: pool for pool in pools}

    def _pool(self, pool: str) -> SimulatedPool:
        try:
            return self.pools[pool]
        except KeyError:
            raise HarmonyError(
                f"no simulated pool named {pool!r}; known: {sorted(self.pools)}"
            ) from None

    def current(self, pool: str) -> ReplicaState:
        return self._pool(pool).current(pool)

    def scale(self, pool: str, replicas: int, idempotency_key: str) -> ScaleResult:
        return self._pool(pool).scale(pool, replicas, idempotency_key)
