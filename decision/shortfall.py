"""The arithmetic of shortfall, vectorised over samples and candidate replica counts.

Usable replicas at horizon index h for a candidate total r (see decision.types for the
time convention): with `ready[h]` = replicas usable now plus in-flight replicas usable by h,
and `total` = replicas requested so far,

    usable[r, h] = min(r, ready[h]) + max(r - total, 0) * [h >= d]

i.e. a scale-down cancels replicas still provisioning first (latest first), then removes
usable ones at once; a scale-up adds replicas usable from h = d on. usable is non-decreasing
in r, so each sample has one smallest r without shortfall at step h; over the decision
window (steps from d on) the sample's requirement is the largest of these. Steps before d
can only be hurt by removing replicas: what they need, capped at what is ready anyway, is
what a scale-down must keep (`kept_replicas`).
"""

from __future__ import annotations

import functools

import numpy as np
from scipy import special

from decision.types import FloatArray, InFlight, IntArray

# Demand that equals capacity up to float error is not a shortfall.
_RELATIVE_SLACK = 1e-9


def ready_replicas_by_step(
    replicas_usable: int, in_flight: tuple[InFlight, ...], steps: int
) -> IntArray:
    """`[steps]` replicas usable at each horizon index without any new request."""
    ready = np.full(steps, replicas_usable, dtype=np.int64)
    for batch in in_flight:
        ready[batch.usable_in_steps :] += batch.replicas
    return ready


def usable_replicas(
    candidates: IntArray, ready: IntArray, total: int, delay_steps: int
) -> IntArray:
    """`[R, steps]` usable replicas per candidate total and horizon index (module formula)."""
    candidates = np.asarray(candidates, dtype=np.int64)
    after_delay = np.arange(ready.size) >= delay_steps
    added = np.maximum(candidates - total, 0)[:, None] * after_delay[None, :]
    usable: IntArray = np.minimum(candidates[:, None], ready[None, :]) + added
    return usable


def ceil_replicas(demand_in_replicas: FloatArray) -> IntArray:
    """Smallest whole replica counts covering demand expressed in replicas (>= 0)."""
    slackened = demand_in_replicas * (1.0 - _RELATIVE_SLACK)
    ceiled: IntArray = np.ceil(np.maximum(slackened, 0.0)).astype(np.int64)
    return ceiled


def required_replicas(demand_in_replicas: FloatArray, ready: IntArray, total: int) -> IntArray:
    """`[S]` smallest candidate total per sample without shortfall at any window step.

    `demand_in_replicas` is `[S, steps]` over the window after the delay (demand divided by
    planning capacity per replica; for several indicators, the largest ratio), `ready` the
    `[steps]` replicas ready at those steps without a new request.
    """
    if np.all(ready == total):
        # Usual case: everything requested is usable by t + d, so usable = r in the window
        # and the requirement is the ceiling of the window maximum.
        return ceil_replicas(demand_in_replicas.max(axis=1))
    needed = ceil_replicas(demand_in_replicas)
    beyond_ready = total + needed - ready[None, :]
    requirement: IntArray = np.where(needed <= ready[None, :], needed, beyond_ready).max(axis=1)
    return requirement


def kept_replicas(demand_in_replicas: FloatArray, ready: IntArray) -> IntArray:
    """`[S, d]` replicas a scale-down must keep at each step before the delay: what the
    sample needs, capped at what is ready (more could not arrive in time anyway)."""
    kept: IntArray = np.minimum(ceil_replicas(demand_in_replicas), ready[None, :])
    return kept


def exceedance_counts(sorted_requirements: IntArray, candidates: IntArray) -> IntArray:
    """Number of samples whose requirement exceeds each candidate (shortfall count)."""
    covered = np.searchsorted(sorted_requirements, candidates, side="right")
    counts: IntArray = (sorted_requirements.size - covered).astype(np.int64)
    return counts


@functools.lru_cache(maxsize=32)
def _upper_bound_table(sample_count: int, credible_level: float) -> FloatArray:
    exceedances = np.arange(sample_count + 1, dtype=np.float64)
    # Jeffreys prior Beta(1/2, 1/2): posterior Beta(k + 1/2, S - k + 1/2).
    table: FloatArray = special.betaincinv(
        exceedances + 0.5, sample_count - exceedances + 0.5, credible_level
    )
    table.setflags(write=False)
    return table


def shortfall_upper_bound(
    exceedances: IntArray, sample_count: int, credible_level: float
) -> FloatArray:
    """Upper credible bound of the shortfall probability given k of S samples fell short."""
    bound: FloatArray = _upper_bound_table(sample_count, credible_level)[exceedances]
    return bound


def max_allowed_exceedances(sample_count: int, credible_level: float, epsilon: float) -> int:
    """Largest k whose upper bound is <= epsilon; -1 when even k = 0 is above it."""
    table = _upper_bound_table(sample_count, credible_level)
    return int(np.searchsorted(table, epsilon, side="right")) - 1


def max_allowed_exceedances_at(
    sample_count: int, credible_level: float, levels: FloatArray
) -> IntArray:
    """`max_allowed_exceedances` for many levels at once."""
    table = _upper_bound_table(sample_count, credible_level)
    allowed: IntArray = np.searchsorted(table, levels, side="right").astype(np.int64) - 1
    return allowed


def smallest_count_allowing(sorted_requirements: IntArray, allowed: int) -> int:
    """Smallest candidate with at most `allowed` samples above it (allowed >= 0)."""
    sample_count = sorted_requirements.size
    if allowed >= sample_count:
        return 0
    return int(sorted_requirements[sample_count - allowed - 1])


class StepShortfall:
    """Expected shortfall E[(D - u * capacity)+] per window step and indicator, for whole
    usable counts u.

    Demand in capacity units is binned per whole replica (bin b holds b <= D / capacity <
    b + 1); suffix counts and sums over the bins turn each expectation into two look-ups,
    linear in S, with no sorting. Samples exactly at a bin edge contribute zero either way.
    """

    def __init__(self, demand: FloatArray, capacities: FloatArray, largest_count: int) -> None:
        sample_count, steps, indicators = demand.shape
        self.sample_count = sample_count
        self.capacities = capacities
        bins = largest_count + 2
        rows = steps * indicators
        in_units = np.maximum(demand / capacities, 0.0).reshape(sample_count, rows)
        index = np.minimum(in_units.astype(np.int64), bins - 1) + np.arange(rows) * bins
        flat = index.ravel()
        counts = np.bincount(flat, minlength=rows * bins).reshape(rows, bins)
        sums = np.bincount(flat, weights=in_units.ravel(), minlength=rows * bins)
        sums = sums.reshape(rows, bins)
        self.suffix_counts = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1]
        self.suffix_sums = np.cumsum(sums[:, ::-1], axis=1)[:, ::-1]
        self.mean = (demand.mean(axis=0)).reshape(rows)
        self.indicators = indicators

    def expected_shortfall(self, usable: IntArray) -> FloatArray:
        """`usable` `[R, steps]` -> `[R, steps * K]` expected shortfall in demand units
        (rows step-major, as `mean`)."""
        repeated = np.repeat(usable, self.indicators, axis=1)
        rows = np.arange(repeated.shape[1])[None, :]
        above = self.suffix_counts[rows, repeated]
        excess_units = self.suffix_sums[rows, repeated] - repeated * above
        per_replica = np.tile(self.capacities, usable.shape[1])[None, :]
        result: FloatArray = excess_units * per_replica / self.sample_count
        return result
