"""The fluid FIFO queue of a pool whose work can wait, exact on the step grid.

Demand is work arriving per step; the pool serves up to its capacity (usable replicas
times capacity per replica) per step; work not served waits in a FIFO queue and is
served first in later steps. With arrivals A[s], capacity C[s] and backlog Q[-1]:

    Q[s] = max(0, Q[s-1] + A[s] - C[s])          (the backlog after step s)

Work arriving in step s and served in step s' waited s' - s steps. FIFO means the work
behind step s's arrivals never delays them, so what of step s waits longer than k steps is
what of it is still queued after the capacity of steps s+1..s+k has drained the queue:

    late_k[s] = min(A[s], max(0, Q[s] - (C[s+1] + ... + C[s+k])))

which needs the arrivals only up to s. The queue SLA holds when the work-weighted share
waiting longer than `maxDelay` (k = floor(maxDelay / step) steps) is at most ε.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from decision.errors import InvalidDecisionInput
from decision.types import FloatArray, IntArray

# Work that equals capacity up to float error is served.
_RELATIVE_SLACK = 1e-9
WAIT_QUANTILES = (0.5, 0.95, 0.99)


def fluid_backlog(arrivals: FloatArray, capacity: FloatArray, initial: float = 0.0) -> FloatArray:
    """`[n]` backlog after each step (arrivals and capacity `[n]`, same units)."""
    backlog = np.empty(len(arrivals), dtype=np.float64)
    queued = float(initial)
    pairs = zip(arrivals.tolist(), capacity.tolist(), strict=True)
    for step, (arrived, served) in enumerate(pairs):
        queued = max(0.0, queued + arrived - served)
        backlog[step] = queued
    return backlog


def late_work(
    arrivals: FloatArray, backlog: FloatArray, capacity: FloatArray, wait_steps: int
) -> FloatArray:
    """`[n]` work of each step that waits longer than `wait_steps` (module formula).

    `capacity` may run longer than the arrivals (the steps after them); arrival steps
    whose wait reaches past its end count the capacity it has."""
    cumulative = np.concatenate([[0.0], np.cumsum(capacity)])
    steps = np.arange(len(arrivals))
    ends = np.minimum(steps + wait_steps, len(capacity) - 1)
    drained = cumulative[ends + 1] - cumulative[steps + 1]
    remaining = backlog - drained
    late: FloatArray = np.minimum(arrivals, np.maximum(remaining, 0.0))
    late[remaining <= _RELATIVE_SLACK * np.maximum(backlog, 1.0)] = 0.0
    return late


@dataclass(frozen=True)
class QueueAccount:
    """Waits of one replay under FIFO: the late share and the work-weighted wait quantiles."""

    late_work_share: float
    wait_p50_seconds: float
    wait_p95_seconds: float
    wait_p99_seconds: float
    max_backlog: float


def account_queue(
    arrivals: FloatArray,
    capacity: FloatArray,
    *,
    max_delay_steps: int,
    step_seconds: float,
    initial_backlog: float = 0.0,
) -> QueueAccount:
    """Exact waits of `arrivals` `[n]` served at `capacity` `[n]` (gaps, NaN, bring no work).

    Arrival steps too close to the end to tell whether they waited longer than the
    delay count neither way; the wait quantiles assume the last capacity goes on."""
    work = np.nan_to_num(np.asarray(arrivals, dtype=np.float64), nan=0.0)
    capacity = np.asarray(capacity, dtype=np.float64)
    backlog = fluid_backlog(work, capacity, initial_backlog)
    known = len(work) - max_delay_steps
    late = late_work(work, backlog, capacity, max_delay_steps)
    offered = work[:known].sum() if known > 0 else 0.0
    share = float(late[:known].sum() / offered) if offered > 0 else 0.0
    # Capacity after the end: the last step's, long enough for the largest wait.
    longest = int(np.ceil(backlog.max() / max(capacity[-1], 1e-12))) + 1 if len(work) else 1
    extended = np.concatenate([capacity, np.full(min(longest, 10 * len(work) + 1), capacity[-1])])
    total = work.sum()
    quantiles = [
        _wait_quantile(work, backlog, extended, total, level) * step_seconds
        for level in WAIT_QUANTILES
    ]
    return QueueAccount(
        late_work_share=share,
        wait_p50_seconds=quantiles[0],
        wait_p95_seconds=quantiles[1],
        wait_p99_seconds=quantiles[2],
        max_backlog=float(backlog.max()) if len(backlog) else 0.0,
    )


def _wait_quantile(
    work: FloatArray, backlog: FloatArray, capacity: FloatArray, total: float, level: float
) -> float:
    """Smallest k (steps) such that at most 1 - level of the work waits longer than k."""
    if total <= 0:
        return 0.0
    allowed = (1.0 - level) * total
    low, high = 0, len(capacity)
    if late_work(work, backlog, capacity, high).sum() > allowed:
        return math.inf
    while low < high:
        middle = (low + high) // 2
        if late_work(work, backlog, capacity, middle).sum() <= allowed:
            high = middle
        else:
            low = middle + 1
    return float(low)


def queue_requirements(
    arrivals: FloatArray,
    backlog: float,
    ready: IntArray,
    total: int,
    delay: int,
    wait_steps: int,
    largest: int,
    first: int = 0,
    recent: FloatArray | None = None,
) -> IntArray:
    """`[S]` fewest replicas per sample path such that no work arriving in horizon steps
    first..n-1 waits longer than `wait_steps`, beyond what no count could prevent (the
    work of steps 0..first-1 only queues ahead of it); with `recent` `[k]`, the work that
    arrived in the k steps before now (oldest first), also none of the backlog's work
    (FIFO: its newest part is the latest arrivals) may wait past its deadline, so that a
    scale-down never strands work already queued.

    `arrivals` `[S, n]` are in replica-steps (work / capacity per replica); `backlog` the
    work queued now, in the same units; `ready` `[n + wait_steps]` the replicas usable at
    each step without a new request, `total` those requested so far; a candidate r is
    usable as decision.shortfall.usable_replicas says (added replicas from step `delay`).
    Work that would wait too long even with unbounded capacity from step `delay` on (its
    deadline comes before new replicas can) does not count against any r. A path late at
    `largest` replicas needs `largest + 1`.
    """
    samples, steps = arrivals.shape
    span = steps + wait_steps
    if ready.shape != (span,):
        raise InvalidDecisionInput(f"queue_requirements: ready needs {span} steps")
    after_delay = np.arange(span) >= delay
    unbounded = np.where(after_delay, np.inf, ready.astype(np.float64))
    unbounded_paths = np.broadcast_to(unbounded, (samples, span))
    past = np.zeros(0) if recent is None else np.nan_to_num(np.asarray(recent, dtype=np.float64))
    past = past[-wait_steps:] if wait_steps else past[:0]

    def late_at(capacity: FloatArray) -> np.ndarray:
        ahead = _late_paths(arrivals, backlog, capacity)[:, first:]
        return np.concatenate([ahead, _late_backlog(backlog, past, capacity, delay)], axis=1)

    unavoidable = late_at(unbounded_paths)

    def avoidable_late(candidates: IntArray) -> np.ndarray:
        usable = (
            np.minimum(candidates[:, None], ready[None, :])
            + np.maximum(candidates - total, 0)[:, None] * after_delay[None, :]
        )
        late = late_at(usable.astype(np.float64))
        return np.asarray((late & ~unavoidable).any(axis=1))

    top = max(largest, total)
    requirement = np.full(samples, top + 1, dtype=np.int64)
    fits = ~avoidable_late(np.full(samples, top, dtype=np.int64))
    low = np.zeros(samples, dtype=np.int64)
    high = np.full(samples, top, dtype=np.int64)
    while np.any(fits & (low < high)):
        middle = (low + high) // 2
        late = avoidable_late(middle)
        high = np.where(fits & ~late, middle, high)
        low = np.where(fits & late, middle + 1, low)
    requirement[fits] = high[fits]
    return requirement


def _late_backlog(
    backlog: float, recent: FloatArray, capacity: FloatArray, delay: int
) -> np.ndarray:
    """`[S, k + 1]` whether the queued work of each of the last k steps (`recent`, oldest
    first) is still queued after its deadline, horizon step k - j for the step j back; the
    last column is the work queued longer than that (already late), which must at least
    be served within max(k, 1) steps rather than stranded. Each part is checked again at
    the first step new replicas can serve (`delay`): a deadline no count can meet any more
    still leaves its work to be served then, never stranded (columns k + 1 ..)."""
    count = recent.size
    late = np.zeros((capacity.shape[0], 2 * (count + 1)), dtype=bool)
    if backlog <= 0:
        return late
    newest_first = np.concatenate([recent[::-1], [np.inf]])
    arrived_since = np.concatenate([[0.0], np.cumsum(recent[::-1])])
    # The backlog's work that arrived j steps back or earlier: the newer part is its tail.
    queued = np.maximum(backlog - arrived_since, 0.0)
    finite = np.where(np.isinf(capacity), 0.0, capacity)
    cumulative = np.concatenate([np.zeros((capacity.shape[0], 1)), np.cumsum(finite, axis=1)], 1)
    unbounded = np.concatenate(
        [np.zeros((capacity.shape[0], 1)), np.cumsum(np.isinf(capacity), axis=1)], 1
    )
    # Step j back (j = 1..k) is served by horizon steps < k - j + 1.
    deadlines = np.append(np.arange(count, 0, -1), max(count, 1))
    ends = np.concatenate([deadlines, np.maximum(deadlines, delay + 1)])
    ends = np.minimum(ends, capacity.shape[1])
    remaining = np.tile(queued, 2)[None, :] - cumulative[:, ends]
    late[:] = (
        (unbounded[:, ends] == 0)
        & (np.tile(newest_first, 2)[None, :] > 0)
        & (remaining > _RELATIVE_SLACK * np.maximum(np.tile(queued, 2)[None, :], 1.0))
    )
    return late


def _late_paths(arrivals: FloatArray, backlog: float, capacity: FloatArray) -> np.ndarray:
    """`[S, n]` whether some work of each arrival step waits longer than the capacity
    `[S, n + k]` drains in the k steps after it (k = capacity's extra steps)."""
    steps = arrivals.shape[1]
    wait_steps = capacity.shape[1] - steps
    queued = np.full(arrivals.shape[0], float(backlog))
    finite = np.where(np.isinf(capacity), 0.0, capacity)
    cumulative = np.concatenate(
        [np.zeros((capacity.shape[0], 1)), np.cumsum(finite, axis=1)], axis=1
    )
    infinite_after = np.cumsum(np.isinf(capacity), axis=1)
    late = np.zeros(arrivals.shape, dtype=bool)
    for step in range(steps):
        served = capacity[:, step]
        queued = np.maximum(queued + arrivals[:, step] - served, 0.0)
        queued = np.where(np.isinf(served), 0.0, queued)
        end = step + wait_steps
        drained = cumulative[:, end + 1] - cumulative[:, step + 1]
        unbounded = infinite_after[:, end] > infinite_after[:, step]
        remaining = queued - drained
        late[:, step] = (
            ~unbounded
            & (arrivals[:, step] > 0)
            & (remaining > _RELATIVE_SLACK * np.maximum(queued, 1.0))
        )
    return late


@dataclass
class LateTracker:
    """Fluid queues of several lanes (e.g. one per calibration level) run on the same
    arrivals, each at its own capacity; an arrival step's late work is known once the
    `wait_steps` steps after it have been served. JSON-ready (`to_dict`/`from_dict`)."""

    wait_steps: int
    lanes: int
    backlog: list[float] = field(default_factory=list)
    # Unresolved arrival steps, oldest first: [arrived, backlog per lane, drained per lane,
    # steps since].
    pending: list[list[Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.backlog:
            self.backlog = [0.0] * self.lanes

    def step(self, arrived: float, capacity: FloatArray) -> list[tuple[float, FloatArray]]:
        """Serve one step of `arrived` work at `capacity` `[lanes]`; returns, for each
        arrival step resolved by it (oldest first), its work and its late work `[lanes]`."""
        capacity = np.asarray(capacity, dtype=np.float64)
        for entry in self.pending:
            entry[2] = (np.asarray(entry[2]) + capacity).tolist()
            entry[3] += 1
        queued = np.maximum(np.asarray(self.backlog) + arrived - capacity, 0.0)
        self.backlog = queued.tolist()
        self.pending.append([float(arrived), queued.tolist(), [0.0] * self.lanes, 0])
        resolved: list[tuple[float, FloatArray]] = []
        while self.pending and self.pending[0][3] >= self.wait_steps:
            work, queued_then, drained, _ = self.pending.pop(0)
            remaining = np.asarray(queued_then) - np.asarray(drained)
            late = np.minimum(work, np.maximum(remaining, 0.0))
            late[remaining <= _RELATIVE_SLACK * np.maximum(np.asarray(queued_then), 1.0)] = 0.0
            resolved.append((work, late))
        return resolved

    def to_dict(self) -> dict[str, Any]:
        return {
            "wait_steps": self.wait_steps,
            "lanes": self.lanes,
            "backlog": list(self.backlog),
            "pending": [list(entry) for entry in self.pending],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LateTracker:
        return cls(
            wait_steps=int(data["wait_steps"]),
            lanes=int(data["lanes"]),
            backlog=[float(v) for v in data["backlog"]],
            pending=[
                [float(a), [float(v) for v in q], [float(v) for v in d], int(n)]
                for a, q, d, n in data["pending"]
            ],
        )
