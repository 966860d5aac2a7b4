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

import numpy as np
from scipy import special

from decision.types import FloatArray

TAIL_SHARE = 0.05
MIN_TAIL_SAMPLES = 5


def tail_sample_count(sample_count: int) -> int:
    """m: how many of the largest samples the exponential tail is fitted to."""
    return min(max(MIN_TAIL_SAMPLES, round(TAIL_SHARE * sample_count)), sample_count - 1)


def extrapolated_quantile(
    sorted_values: FloatArray, levels: FloatArray, credible_level: float
) -> FloatArray:
    """Upper-tail quantiles at exceedance probabilities `levels` of samples sorted
    ascending along axis 0 (module docstring), each >= the largest sample: `[L]` for
    `[S]` samples, `[L, W]` for `[S, W]` (one tail per column)."""
    levels = np.asarray(levels, dtype=np.float64)
    values = np.asarray(sorted_values, dtype=np.float64)
    count = values.shape[0]
    largest = values[-1]
    tail = tail_sample_count(count)
    if tail < 1:
        return np.broadcast_to(largest, (levels.size, *largest.shape)).copy()
    threshold = values[count - tail - 1]
    excess = np.sum(values[count - tail :] - threshold, axis=0)
    scale = excess / float(special.gammaincinv(tail, 1.0 - credible_level))
    log_ratio = np.log((tail / count) / levels).reshape(-1, *([1] * largest.ndim))
    result: FloatArray = np.maximum(threshold + scale * log_ratio, largest)
    return result
