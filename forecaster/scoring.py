"""Proper scoring rules for sample forecasts: CRPS, pinball loss, interval coverage, energy score.

Conventions: `samples` has the sample axis at `sample_axis` (default 1, as in `[B, S, H, N]`)
and `observations` has the same shape without it. Results are elementwise unless reduced.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

FloatArray = npt.NDArray[np.float64]


def _samples_last(
    samples: npt.ArrayLike, observations: npt.ArrayLike, sample_axis: int
) -> tuple[FloatArray, FloatArray]:
    values = np.moveaxis(np.asarray(samples, dtype=np.float64), sample_axis, -1)
    observed = np.asarray(observations, dtype=np.float64)
    if values.shape[:-1] != observed.shape:
        raise ValueError(
            f"samples {values.shape[:-1]} (sample axis removed) and observations "
            f"{observed.shape} differ in shape"
        )
    return values, observed


def crps(samples: npt.ArrayLike, observations: npt.ArrayLike, sample_axis: int = 1) -> FloatArray:
    """CRPS of the empirical distribution of the samples: E|X - y| - E|X - X'| / 2.

    Uses the sorted-sample identity E|X - X'| = 2 / S^2 * sum_i (2i - S - 1) x_(i), so
    it costs O(S log S) per point; equal to `properscoring.crps_ensemble`.
    """
    values, observed = _samples_last(samples, observations, sample_axis)
    count = values.shape[-1]
    absolute = np.abs(values - observed[..., None]).mean(axis=-1)
    ordered = np.sort(values, axis=-1)
    weights = 2.0 * np.arange(1, count + 1) - count - 1
    spread = (ordered * weights).sum(axis=-1) * 2.0 / count**2
    result: FloatArray = absolute - 0.5 * spread
    return result


def crps_torch(samples: Tensor, observations: Tensor) -> Tensor:
    """Torch CRPS with samples on axis 1 (used for validation while training)."""
    count = samples.shape[1]
    absolute = (samples - observations.unsqueeze(1)).abs().mean(dim=1)
    ordered = torch.sort(samples, dim=1).values
    shape = [1, count] + [1] * (samples.dim() - 2)
    weights = (2.0 * torch.arange(1, count + 1, device=samples.device) - count - 1).view(shape)
    spread = (ordered * weights).sum(dim=1) * 2.0 / count**2
    return absolute - 0.5 * spread


def gaussian_crps(
    mean: npt.ArrayLike, std: npt.ArrayLike, observations: npt.ArrayLike
) -> FloatArray:
    """Closed-form CRPS of a normal distribution (Gneiting et al. 2005)."""
    from scipy.stats import norm

    sigma = np.asarray(std, dtype=np.float64)
    standard = (np.asarray(observations, dtype=np.float64) - np.asarray(mean)) / sigma
    result: FloatArray = sigma * (
        standard * (2 * norm.cdf(standard) - 1) + 2 * norm.pdf(standard) - 1 / np.sqrt(np.pi)
    )
    return result


def pinball(
    samples: npt.ArrayLike,
    observations: npt.ArrayLike,
    levels: Sequence[float],
    sample_axis: int = 1,
) -> FloatArray:
    """Pinball (quantile) loss `[Q, ...]` of the sample quantiles at each level."""
    values, observed = _samples_last(samples, observations, sample_axis)
    quantile_levels = np.asarray(levels, dtype=np.float64)
    if np.any((quantile_levels <= 0) | (quantile_levels >= 1)):
        raise ValueError(f"quantile levels must lie in (0, 1), got {list(levels)}")
    predicted = np.quantile(values, quantile_levels, axis=-1)  # [Q, ...]
    shaped = quantile_levels.reshape((-1,) + (1,) * observed.ndim)
    return quantile_pinball(predicted, observed[None], shaped)


def quantile_pinball(
    predicted: npt.ArrayLike, observations: npt.ArrayLike, level: npt.ArrayLike
) -> FloatArray:
    """Pinball loss of predicted `level`-quantiles (broadcast against the observations)."""
    error = np.asarray(observations, dtype=np.float64) - np.asarray(predicted, dtype=np.float64)
    tau = np.asarray(level, dtype=np.float64)
    result: FloatArray = np.maximum(tau * error, (tau - 1.0) * error)
    return result


def coverage(
    samples: npt.ArrayLike, observations: npt.ArrayLike, level: float, sample_axis: int = 1
) -> float:
    """Share of observations inside the central `level` interval of the samples.

    The interval's ends are the samples' quantiles at Weibull plotting positions (the k-th
    smallest of S samples stands for level k / (S + 1)), which a calibrated forecast's
    samples meet on average: with numpy's default positions (k - 1) / (S - 1), 100
    calibrated samples cover 93% for a 95% interval. Unbiased once S >= 2 / (1 - level) - 1
    (39 samples for 95%); with fewer the ends are the extreme samples.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must lie in (0, 1), got {level}")
    values, observed = _samples_last(samples, observations, sample_axis)
    tail = (1.0 - level) / 2.0
    lower, upper = np.quantile(values, [tail, 1.0 - tail], axis=-1, method="weibull")
    inside = (observed >= lower) & (observed <= upper)
    return float(inside.mean())


def energy_score(
    samples: npt.ArrayLike, observations: npt.ArrayLike, sample_axis: int = 1
) -> FloatArray:
    """Energy score of joint samples: E||X - y|| - E||X - X'|| / 2 over the trailing dims.

    `samples` `[B, S, ...]`, observations `[B, ...]`; every dimension after the sample
    axis forms the joint vector (e.g. horizon x indicators). Returns `[B]`.
    """
    values = np.moveaxis(np.asarray(samples, dtype=np.float64), sample_axis, 1)
    observed = np.asarray(observations, dtype=np.float64)
    batch, count = values.shape[:2]
    flat = values.reshape(batch, count, -1)
    target = observed.reshape(batch, 1, -1)
    if flat.shape[2] != target.shape[2]:
        raise ValueError(f"samples {values.shape} and observations {observed.shape} differ")
    to_observation = np.linalg.norm(flat - target, axis=-1).mean(axis=1)
    pairwise = np.linalg.norm(flat[:, :, None, :] - flat[:, None, :, :], axis=-1)
    result: FloatArray = to_observation - 0.5 * pairwise.mean(axis=(1, 2))
    return result
