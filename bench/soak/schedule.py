"""A seeded fault schedule: which fault runs from which cycle to which, one at a time.

Cycles are the slots of the accelerated clock counted from the run's start. Every fault
is followed by a quiet gap, so that each one's visibility and clearing can be judged on
its own; a quiet warm-up comes first and a quiet tail last.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass


class FaultKind(enum.StrEnum):
    prometheus_stopped = "prometheus-stopped"  # the process stopped, restarted at the end
    prometheus_5xx = "prometheus-5xx"  # the proxy answers 503
    prometheus_slow = "prometheus-slow"  # the proxy answers after the pools' query timeout
    prometheus_stale = "prometheus-stale"  # the newest points are cut off
    prometheus_partial = "prometheus-partial"  # points inside the window are dropped
    api_conflict = "api-409"  # PATCHes of /scale answered 409
    api_throttled = "api-429"  # /scale answered 429
    api_error = "api-500"  # /scale answered 500
    api_timeout = "api-timeout"  # PATCHes of /scale hang past the client's timeout, then apply
    api_forbidden = "api-403"  # one target's /scale answered 403
    postgres_restarted = "postgres-restarted"  # pg_ctl restart (fast) at the start
    postgres_refusing = "postgres-refusing"  # stopped for the whole window
    leader_killed = "leader-killed"  # SIGKILL of the lease holder; restarted as a standby
    spec_invalid = "spec-invalid"  # one pool's spec edited to invalid, reverted at the end


# How long each kind lasts, in cycles.
DURATION = {
    FaultKind.prometheus_stopped: 2,
    FaultKind.prometheus_5xx: 2,
    FaultKind.prometheus_slow: 2,
    FaultKind.prometheus_stale: 2,
    FaultKind.prometheus_partial: 2,
    FaultKind.api_conflict: 2,
    FaultKind.api_throttled: 2,
    FaultKind.api_error: 2,
    FaultKind.api_timeout: 1,
    FaultKind.api_forbidden: 2,
    FaultKind.postgres_restarted: 1,
    FaultKind.postgres_refusing: 2,
    FaultKind.leader_killed: 1,
    FaultKind.spec_invalid: 2,
}
# The short form (`tests/soak`): each kind once, held a single cycle.
SHORT_DURATION = dict.fromkeys(FaultKind, 1)
WARM_UP = 6
GAP = 2
TAIL = 3


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    start: int  # first cycle
    end: int  # first cycle after it
    pool: int | None = None  # the one pool a targeted fault hits

    def describe(self) -> str:
        where = "" if self.pool is None else f" on pool-{self.pool:02d}"
        return f"cycles {self.start:>4}-{self.end - 1:<4} {self.kind.value}{where}"


@dataclass(frozen=True)
class Schedule:
    seed: int
    cycles: int
    pools: int
    faults: tuple[Fault, ...]

    def describe(self) -> str:
        lines = [f"fault schedule (seed {self.seed}, {self.cycles} cycles, {self.pools} pools):"]
        lines += [f"  {fault.describe()}" for fault in self.faults]
        return "\n".join(lines)


def make_schedule(
    seed: int, cycles: int, pools: int, durations: dict[FaultKind, int] | None = None
) -> Schedule:
    """Every kind once in a seeded order, then more seeded draws while the cycles last."""
    durations = DURATION if durations is None else durations
    rng = random.Random(seed)
    kinds = list(FaultKind)
    rng.shuffle(kinds)
    faults: list[Fault] = []
    at = WARM_UP
    while True:
        kind = kinds.pop(0) if kinds else rng.choice(list(FaultKind))
        end = at + durations[kind]
        if end + TAIL > cycles:
            break
        targeted = kind in (FaultKind.api_forbidden, FaultKind.spec_invalid)
        faults.append(Fault(kind, at, end, rng.randrange(pools) if targeted else None))
        at = end + GAP
    return Schedule(seed=seed, cycles=cycles, pools=pools, faults=tuple(faults))


def cycles_for_every_kind(durations: dict[FaultKind, int] | None = None) -> int:
    """The fewest cycles whose schedule holds each kind once."""
    durations = DURATION if durations is None else durations
    return WARM_UP + sum(durations.values()) + GAP * (len(FaultKind) - 1) + TAIL
