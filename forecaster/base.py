"""What every probabilistic forecaster offers: joint samples, and quantiles and means of them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from forecaster.config import FloorKind

FloatArray = npt.NDArray[np.float64]


class IncompatibleModelError(ValueError):
    """A model does not fit the series it is asked about (indicators, context length)."""


@runtime_checkable
class ProbabilisticForecaster(Protocol):
    name: str
    context_length: int
    horizon: int

    def sample(
        self,
        context: npt.ArrayLike,
        context_end_timestamps: npt.ArrayLike,
        num_samples: int,
        seed: int | None = None,
    ) -> FloatArray:
        """Joint sample paths `[B, S, H, N]` on the original scale."""
        ...


class SampleSummaries:
    """Quantiles and means computed from `sample`; mixed into every forecaster."""

    def sample(
        self,
        context: npt.ArrayLike,
        context_end_timestamps: npt.ArrayLike,
        num_samples: int,
        seed: int | None = None,
    ) -> FloatArray:
        raise NotImplementedError

    def quantiles(
        self,
        context: npt.ArrayLike,
        context_end_timestamps: npt.ArrayLike,
        levels: Sequence[float],
        num_samples: int = 200,
        seed: int | None = None,
    ) -> FloatArray:
        """`[B, Q, H, N]` quantiles at `levels` (each in (0, 1))."""
        if any(not 0.0 < level < 1.0 for level in levels):
            raise ValueError(f"quantile levels must lie in (0, 1), got {list(levels)}")
        samples = self.sample(context, context_end_timestamps, num_samples, seed)
        return np.moveaxis(np.quantile(samples, np.asarray(levels), axis=1), 0, 1)

    def mean(
        self,
        context: npt.ArrayLike,
        context_end_timestamps: npt.ArrayLike,
        num_samples: int = 200,
        seed: int | None = None,
    ) -> FloatArray:
        """`[B, H, N]` mean of the predictive distribution (Monte-Carlo)."""
        samples = self.sample(context, context_end_timestamps, num_samples, seed)
        result: FloatArray = samples.mean(axis=1)
        return result


def check_context(
    context: npt.ArrayLike,
    context_end_timestamps: npt.ArrayLike,
    context_length: int,
    num_indicators: int,
    num_samples: int,
) -> tuple[FloatArray, FloatArray]:
    """Validated `[B, L, N]` context (the last L rows if longer) and `[B]` end times."""
    array = np.asarray(context, dtype=np.float64)
    ends = np.asarray(context_end_timestamps, dtype=np.float64).reshape(-1)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise IncompatibleModelError(f"context must be [B, L, N], got shape {array.shape}")
    if array.shape[2] != num_indicators:
        raise IncompatibleModelError(
            f"context has {array.shape[2]} indicators, the model expects {num_indicators}"
        )
    if array.shape[1] < context_length:
        raise IncompatibleModelError(
            f"context has {array.shape[1]} rows, the model needs the last {context_length}"
        )
    if ends.shape[0] != array.shape[0]:
        raise IncompatibleModelError(
            f"{ends.shape[0]} context end timestamps for {array.shape[0]} windows"
        )
    if num_samples < 1:
        raise ValueError("num_samples must be >= 1")
    return array[:, -context_length:], ends


def sample_floor_of(values: npt.ArrayLike, kind: FloorKind) -> FloatArray:
    """`[N]` lowest value a sample of each indicator may take (-inf: unbounded), from the
    training data `[T, N]` (NaN ignored)."""
    lowest: FloatArray = np.nanmin(np.asarray(values, dtype=np.float64), axis=0)
    if kind == "training_min":
        return lowest
    if kind == "zero_if_nonnegative":
        result: FloatArray = np.where(lowest >= 0.0, 0.0, -np.inf)
        return result
    return np.full(lowest.shape, -np.inf)
