"""Integral feedback on the pool's own realised shortfall: the SLA budget left unused is spent.

The calibration posterior (decision.calibration) learns how often the capacity planned at
each level is exceeded; the pool's realised shortfall can still sit well under ε, because
safety rules, whole replicas and the posterior's credible margin all add capacity. This
controller tracks the realised outcome itself, as adaptive conformal inference does (Gibbs
& Candès 2021) on a log scale, but one-sided: after each observed step

    log m <- clip(log m + rate * (ε - short), 0, log M)

and the engine plans for the target rate m * ε. With no shortfall for 1 / ε steps m grows
by e^rate, one shortfall shrinks it by e^(rate (1 - ε)), so while m > 1 the long-run
shortfall rate is driven to ε; m never goes below 1, because falling short too often is
the calibration's to correct (it sees every level's outcome, not one). `rate` =
ln 2 / `EXCEEDANCES_REMEMBERED`: over the calibration's memory (about ten expected
shortfalls) a pool that never falls short doubles its target, and ten shortfalls halve it.
The feedback reaches the pool only after the provisioning delay; that lag delays it and
does not bias it. Why this form: docs/decisions/0005.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from decision.calibration import EXCEEDANCES_REMEMBERED
from decision.errors import InvalidDecisionInput

DEFAULT_RATE = math.log(2.0) / EXCEEDANCES_REMEMBERED
DEFAULT_MAX_FACTOR = 4.0


@dataclass
class ShortfallBudget:
    """The factor m on ε from the pool's realised shortfall (see module); JSON-ready."""

    sla_epsilon: float
    rate: float = DEFAULT_RATE
    max_factor: float = DEFAULT_MAX_FACTOR
    log_factor: float = 0.0
    steps: int = 0
    shortfalls: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.sla_epsilon < 1.0:
            raise InvalidDecisionInput(
                f"ShortfallBudget.sla_epsilon must be in (0, 1), got {self.sla_epsilon!r}"
            )
        if not (self.rate >= 0.0 and math.isfinite(self.rate)):
            raise InvalidDecisionInput(f"ShortfallBudget.rate must be >= 0, got {self.rate!r}")
        if not (self.max_factor >= 1.0 and math.isfinite(self.max_factor)):
            raise InvalidDecisionInput(
                f"ShortfallBudget.max_factor must be >= 1, got {self.max_factor!r}"
            )

    def update(self, short: bool) -> None:
        """Add one observed step: `short` when demand exceeded the usable capacity."""
        self.update_share(float(short), 1.0)

    def update_share(self, missed: float, weight: float) -> None:
        """Add one outcome of a work-weighted SLA: `missed` of `weight` (both relative to
        the typical weight) was late; the long-run late share is then driven to ε."""
        bound = math.log(self.max_factor)
        moved = self.log_factor + self.rate * (self.sla_epsilon * weight - missed)
        self.log_factor = min(max(moved, 0.0), bound)
        self.steps += 1
        self.shortfalls += int(missed > 0)

    def target(self) -> float:
        """The shortfall rate to plan for: m * ε, below 0.5."""
        return min(self.sla_epsilon * math.exp(self.log_factor), 0.5)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "shortfall-budget/v1",
            "sla_epsilon": self.sla_epsilon,
            "rate": self.rate,
            "max_factor": self.max_factor,
            "log_factor": self.log_factor,
            "steps": self.steps,
            "shortfalls": self.shortfalls,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShortfallBudget:
        if data.get("kind") != "shortfall-budget/v1":
            raise InvalidDecisionInput(
                f"shortfall budget: unknown kind {data.get('kind')!r}; expected "
                "'shortfall-budget/v1' (drop the stored state to start afresh)"
            )
        try:
            return cls(
                sla_epsilon=float(data["sla_epsilon"]),
                rate=float(data["rate"]),
                max_factor=float(data["max_factor"]),
                log_factor=float(data["log_factor"]),
                steps=int(data["steps"]),
                shortfalls=int(data["shortfalls"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            if isinstance(error, InvalidDecisionInput):
                raise
            raise InvalidDecisionInput(
                f"shortfall budget: field missing or malformed ({error}); "
                "drop the stored state to start afresh"
            ) from error
