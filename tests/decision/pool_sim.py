"""A minimal simulated pool for closed-loop tests: delay, in-flight batches, removal at once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from decision import InFlight, Policy, PoolObservation

SampleSource = Callable[[int, np.random.Generator], np.ndarray]


def run_closed_loop(
    policy: Policy,
    demand: np.ndarray,
    samples_for: SampleSource | None,
    steps: int,
    seed: int = 0,
    start_replicas: int = 0,
    history: int = 12,
) -> tuple[np.ndarray, np.ndarray]:
    """Drive `policy` over `demand[:steps]`; returns (shortfall per step, replicas usable).

    `samples_for(t, rng)` gives the samples for the decision at step t (None: no samples).
    Shortfall at t: demand[t] > usable replicas at t times capacity per replica.
    """
    rng = np.random.default_rng(seed)
    capacity = policy.spec.capacities[0]
    delay = policy.spec.provisioning_delay_steps
    usable = start_replicas
    pending: list[tuple[int, int]] = []  # (step usable from, replicas)
    shortfall = np.zeros(steps, dtype=bool)
    usable_by_step = np.zeros(steps, dtype=np.int64)
    for t in range(steps):
        usable += sum(n for at, n in pending if at <= t)
        pending = [(at, n) for at, n in pending if at > t]
        observation = PoolObservation(
            replicas_usable=usable,
            recent_demand=demand[max(0, t - history) : t],
            in_flight=tuple(InFlight(n, at - t) for at, n in pending),
        )
        samples = None if samples_for is None else samples_for(t, rng)
        decision = policy.decide(observation, samples)
        total = observation.replicas_total
        if decision.replicas > total:
            pending.append((t + delay, decision.replicas - total))
            if delay == 0:
                usable += decision.replicas - total
                pending.pop()
        cut = max(total - decision.replicas, 0)
        pending.sort()
        while cut and pending:  # cancel what is still provisioning first, latest first
            at, n = pending.pop()
            taken = min(n, cut)
            cut -= taken
            if n > taken:
                pending.append((at, n - taken))
        usable -= cut
        shortfall[t] = demand[t] > usable * capacity * (1 + 1e-12)
        usable_by_step[t] = usable
        policy.observe(demand[t])
    return shortfall, usable_by_step
