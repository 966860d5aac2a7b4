"""Beyond the samples: the upper tail of demand, extrapolated where S is too small.

With S samples and credibility c, the Beta bound cannot show a shortfall probability below
b0 = its bound with no sample short (about 0.0067 for S = 200, c = 0.9). An ε (or a
calibrated level) below b0 used to mean "cover every sample", whatever the level, so the
calibration could not correct a forecaster whose tails are too thin. Instead, the top
m = max(5, 5% of S) samples are taken as peaks over the threshold u (the next sample down)
and their excesses as exponential with scale σ: with the Jeffreys prior p(1/σ) ∝ σ, the
posterior of the rate 1/σ given m excesses summing to E is Gamma(m, E), and the decision
uses σ's upper credible bound σ_c = E / Gamma(m, 1)^-1(1 - c). The level-a quantile is

    q(a) = u + σ_c · ln((m / S) / a)

(the peaks-over-threshold quantile), never below the largest sample, so it grows as a
falls and as the samples widen, and equals the largest sample when they agree exactly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import special

from decision.types import FloatArray

TAIL_SHARE = 0.05
MIN_TAIL_SAMPLES = 5


def tail_sample_count(sample_count: int) -> int:
    """m: how many of the largest samples the exponential tail is fitted to."""
    return min(max(MIN_TAIL_SAMPLES, round(TAIL_SHARE * sample_count)), sample_count - 1)


@dataclass(frozen=True)
class TailFit:
    """The exponential tail fitted to samples sorted along axis 0 (module docstring); one
    per column for `[S, W]` samples. A decision asks it for several sets of levels, so it
    is fitted once and evaluated as often as needed."""

    threshold: FloatArray
    scale: FloatArray | None  # None: too few samples for a tail; quantiles are the largest
    largest: FloatArray
    tail_share: float  # m / S

    def quantile(self, levels: FloatArray) -> FloatArray:
        """Upper-tail quantiles at exceedance probabilities `levels` (module docstring),
        each >= the largest sample: `[L]` for `[S]` samples, `[L, W]` for `[S, W]` (one
        tail per column)."""
        levels = np.asarray(levels, dtype=np.float64)
        if self.scale is None:
            return np.broadcast_to(self.largest, (levels.size, *self.largest.shape)).copy()
        log_ratio = np.log(self.tail_share / levels).reshape(-1, *([1] * self.largest.ndim))
        result: FloatArray = np.maximum(self.threshold + self.scale * log_ratio, self.largest)
        return result


def fit_tail(sorted_values: FloatArray, credible_level: float) -> TailFit:
    """Fit the tail of samples sorted ascending along axis 0 (`[S]` or `[S, W]`)."""
    values = np.asarray(sorted_values, dtype=np.float64)
    count = values.shape[0]
    largest = values[-1]
    tail = tail_sample_count(count)
    if tail < 1:
        return TailFit(threshold=largest, scale=None, largest=largest, tail_share=0.0)
    threshold = values[count - tail - 1]
    excess = np.sum(values[count - tail :] - threshold, axis=0)
    scale = excess / _rate_quantile(tail, credible_level)
    return TailFit(threshold=threshold, scale=scale, largest=largest, tail_share=tail / count)


@functools.lru_cache(maxsize=64)
def _rate_quantile(tail: int, credible_level: float) -> float:
    """Gamma(tail, 1)^-1(1 - c): the same few values at every decision, and the costliest
    part of the fit (a replayed month calls it hundreds of thousands of times)."""
    return float(special.gammaincinv(tail, 1.0 - credible_level))
