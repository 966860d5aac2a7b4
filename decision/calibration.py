"""Adaptive calibration: how often the plans the engine would make are actually exceeded.

For every planning level a_j on a fixed grid the posterior holds a Beta distribution over
p_j, the realised rate at which demand exceeds the capacity the engine would plan at level
a_j (the fewest replicas whose shortfall bound is <= a_j). The prior says the forecaster is
calibrated: Beta(a_j * n0, (1 - a_j) * n0), n0 = `prior_strength`. Each step adds one
Bernoulli outcome per level (conjugate update); the forgetting factor lambda discounts what
is known by lambda per step, so the posterior follows drift with a memory of about
1 / (1 - lambda) steps, and a small steady share of the prior (strength n1 =
`steady_prior_strength`) keeps it proper when an outcome has not been seen for long:

    alpha_j <- lambda * alpha_j + (1 - lambda) * a_j * n1 + exceeded_j
    beta_j  <- lambda * beta_j  + (1 - lambda) * (1 - a_j) * n1 + (1 - exceeded_j)

(n1 is small so the prior does not pull the steady estimate towards "calibrated".) The
engine then plans at the level a* whose rate is at most the SLA ε with posterior
probability `rate_credibility` (log-log interpolation over the grid, rates made monotone
in a by isotonic regression): an overconfident forecaster (exceeded too often) gets
a* < ε, an underconfident one a* > ε. The outcomes do not depend on the decisions taken,
so this converges without feedback oscillation. Grid levels are absolute, so one
posterior serves any ε inside the grid.

The memory is sized to ε (`forgetting_for`): about ten expected exceedances. Why a
credible rate and that memory: docs/decisions/0001; why the grid reaches 1e-8:
docs/decisions/0002.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import special

from decision.errors import InvalidDecisionInput

# Down to 1e-8 (docs/decisions/0002).
DEFAULT_LEVELS: tuple[float, ...] = tuple(
    float(f"{level:.6g}") for level in np.geomspace(1e-8, 0.5, 74)
)
DEFAULT_PRIOR_STRENGTH = 20.0
DEFAULT_FORGETTING = 0.99
DEFAULT_STEADY_PRIOR_STRENGTH = 2.0
DEFAULT_RATE_CREDIBILITY = 0.75
EXCEEDANCES_REMEMBERED = 10.0


def forgetting_for(sla_epsilon: float) -> float:
    """The forgetting factor whose memory, 1 / (1 - lambda) steps, holds about
    `EXCEEDANCES_REMEMBERED` exceedances at ε (within 100 .. 10,000 steps)."""
    memory = min(max(EXCEEDANCES_REMEMBERED / sla_epsilon, 100.0), 10_000.0)
    return 1.0 - 1.0 / memory


def isotonic_increasing(
    values: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    block_means: list[float] = []
    block_weights: list[float] = []
    block_sizes: list[int] = []
    for value, weight in zip(values.tolist(), weights.tolist(), strict=True):
        block_means.append(value)
        block_weights.append(weight)
        block_sizes.append(1)
        while len(block_means) > 1 and block_means[-2] > block_means[-1]:
            merged_weight = block_weights[-2] + block_weights[-1]
            merged = (
                block_means[-2] * block_weights[-2] + block_means[-1] * block_weights[-1]
            ) / merged_weight
            size = block_sizes[-2] + block_sizes[-1]
            del block_means[-1], block_weights[-1], block_sizes[-1]
            block_means[-1], block_weights[-1], block_sizes[-1] = merged, merged_weight, size
    return np.repeat(np.asarray(block_means), block_sizes)


@dataclass
class CalibrationPosterior:
    """Beta posteriors over the realised exceedance rate of each planning level (see module).

    Small and JSON-serialisable (`to_dict()`/`from_dict()`); the controller persists it.
    """

    levels: tuple[float, ...] = DEFAULT_LEVELS
    prior_strength: float = DEFAULT_PRIOR_STRENGTH
    forgetting: float = DEFAULT_FORGETTING
    steady_prior_strength: float = DEFAULT_STEADY_PRIOR_STRENGTH
    rate_credibility: float = DEFAULT_RATE_CREDIBILITY
    alpha: list[float] = field(default_factory=list)
    beta: list[float] = field(default_factory=list)
    updates: int = 0
    # planning_rates() between updates (betaincinv is most of a decision's calibration time).
    _planning_rates: npt.NDArray[np.float64] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        levels = np.asarray(self.levels, dtype=np.float64)
        if (
            levels.ndim != 1
            or levels.size < 2
            or not np.all((levels > 0) & (levels < 1))
            or not np.all(np.diff(levels) > 0)
        ):
            raise InvalidDecisionInput(
                "CalibrationPosterior.levels must be at least two increasing values in (0, 1)"
            )
        if not (self.prior_strength > 0 and math.isfinite(self.prior_strength)):
            raise InvalidDecisionInput(
                f"CalibrationPosterior.prior_strength must be > 0, got {self.prior_strength!r}"
            )
        if not (self.steady_prior_strength > 0 and math.isfinite(self.steady_prior_strength)):
            raise InvalidDecisionInput(
                "CalibrationPosterior.steady_prior_strength must be > 0, "
                f"got {self.steady_prior_strength!r}"
            )
        if not (0.5 <= self.rate_credibility < 1):
            raise InvalidDecisionInput(
                "CalibrationPosterior.rate_credibility must be in [0.5, 1), "
                f"got {self.rate_credibility!r}"
            )
        if not (0 < self.forgetting <= 1):
            raise InvalidDecisionInput(
                f"CalibrationPosterior.forgetting must be in (0, 1], got {self.forgetting!r}"
            )
        self.levels = tuple(float(level) for level in levels)
        if not self.alpha and not self.beta:
            self.alpha = self.prior_alpha.tolist()
            self.beta = self.prior_beta.tolist()
        if len(self.alpha) != levels.size or len(self.beta) != levels.size:
            raise InvalidDecisionInput(
                f"CalibrationPosterior: alpha and beta need {levels.size} values (one per level)"
            )
        if not all(a > 0 for a in self.alpha) or not all(b > 0 for b in self.beta):
            raise InvalidDecisionInput("CalibrationPosterior: alpha and beta must be > 0")

    @property
    def level_array(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.levels, dtype=np.float64)

    @property
    def prior_alpha(self) -> npt.NDArray[np.float64]:
        return self.level_array * self.prior_strength

    @property
    def prior_beta(self) -> npt.NDArray[np.float64]:
        return (1.0 - self.level_array) * self.prior_strength

    def update(self, exceeded: Sequence[bool] | npt.NDArray[np.bool_]) -> None:
        """Add one step's outcome: `exceeded[j]` is True when realised demand went above
        the capacity the engine would have planned at level j for that step."""
        outcome = np.asarray(exceeded, dtype=np.float64)
        if outcome.shape != (len(self.levels),):
            raise InvalidDecisionInput(
                f"calibration update needs {len(self.levels)} outcomes, got {outcome.shape}"
            )
        keep = self.forgetting
        steady = (1 - keep) * self.steady_prior_strength
        levels = self.level_array
        alpha = keep * np.asarray(self.alpha) + steady * levels + outcome
        beta = keep * np.asarray(self.beta) + steady * (1 - levels) + (1 - outcome)
        self.alpha = alpha.tolist()
        self.beta = beta.tolist()
        self.updates += 1
        self._planning_rates = None

    def exceedance_rates(self) -> npt.NDArray[np.float64]:
        """Posterior mean realised exceedance rate per level, made non-decreasing in level
        by isotonic regression (a running maximum would bias the rates up with noise)."""
        alpha = np.asarray(self.alpha)
        weights = alpha + np.asarray(self.beta)
        return isotonic_increasing(alpha / weights, weights)

    def planning_rates(self) -> npt.NDArray[np.float64]:
        """Per level, the rate that the realised exceedance rate stays below with posterior
        probability `rate_credibility`, at least the posterior mean, made non-decreasing in
        level (isotonic)."""
        if self._planning_rates is not None:
            return self._planning_rates
        alpha = np.asarray(self.alpha)
        beta = np.asarray(self.beta)
        bound = special.betaincinv(alpha, beta, self.rate_credibility)
        # With alpha < 1 (few exceedances seen at a small level) the Beta piles up at zero
        # and its quantiles fall below its mean: never plan below the mean.
        rates: npt.NDArray[np.float64] = np.maximum(
            np.asarray(bound, dtype=np.float64), alpha / (alpha + beta)
        )
        if np.any(np.diff(rates) < 0):
            rates = isotonic_increasing(rates, alpha + beta)
        self._planning_rates = rates
        return rates

    def effective_epsilon(self, sla_epsilon: float) -> float:
        """The planning level whose credible exceedance rate equals `sla_epsilon`, clipped
        to the grid."""
        rates = self.planning_rates()
        if sla_epsilon <= rates[0]:
            return self.levels[0]
        if sla_epsilon >= rates[-1]:
            return self.levels[-1]
        # np.interp needs strictly increasing x: ties (flat stretches) get a negligible tilt.
        tilted = np.log(rates) + np.arange(rates.size) * 1e-12
        log_level = np.interp(math.log(sla_epsilon), tilted, np.log(self.level_array))
        return float(math.exp(log_level))

    def at_limit(self, sla_epsilon: float) -> bool:
        """True when the correction wanted a level outside the grid (and was clipped)."""
        rates = self.planning_rates()
        return bool(sla_epsilon < rates[0] or sla_epsilon > rates[-1])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "beta-exceedance-grid/v1",
            "levels": list(self.levels),
            "prior_strength": self.prior_strength,
            "forgetting": self.forgetting,
            "steady_prior_strength": self.steady_prior_strength,
            "rate_credibility": self.rate_credibility,
            "alpha": list(self.alpha),
            "beta": list(self.beta),
            "updates": self.updates,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CalibrationPosterior:
        if data.get("kind") != "beta-exceedance-grid/v1":
            raise InvalidDecisionInput(
                f"calibration posterior: unknown kind {data.get('kind')!r}; expected "
                "'beta-exceedance-grid/v1' (drop the stored posterior to start afresh)"
            )
        try:
            return cls(
                levels=tuple(float(v) for v in data["levels"]),
                prior_strength=float(data["prior_strength"]),
                forgetting=float(data["forgetting"]),
                steady_prior_strength=float(data["steady_prior_strength"]),
                # Posteriors saved before it existed planned at the mean's rate (0.5 is
                # close); they take the current default.
                rate_credibility=float(data.get("rate_credibility", DEFAULT_RATE_CREDIBILITY)),
                alpha=[float(v) for v in data["alpha"]],
                beta=[float(v) for v in data["beta"]],
                updates=int(data["updates"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, InvalidDecisionInput):
                raise
            raise InvalidDecisionInput(
                f"calibration posterior: field missing or malformed ({error}); "
                "drop the stored posterior to start afresh"
            ) from error
