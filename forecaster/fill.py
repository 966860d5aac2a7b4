"""Filling gaps in series: the one forward fill the forecaster, the baselines, the backtest
and the operator share."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


def forward_fill(values: npt.ArrayLike, axis: int = 0) -> FloatArray:
    """`values` with each gap (NaN or ±inf) along `axis` replaced by the last finite value
    before it; gaps before the first finite value take that first value. A lane with no
    finite value at all stays NaN."""
    array = np.asarray(values, dtype=np.float64)
    moved = np.moveaxis(array, axis, 0)
    finite = np.isfinite(moved)
    positions = np.arange(moved.shape[0]).reshape((-1,) + (1,) * (moved.ndim - 1))
    last_seen = np.maximum.accumulate(np.where(finite, positions, -1), axis=0)
    first_seen = np.argmax(finite, axis=0)[None]
    source = np.where(last_seen >= 0, last_seen, first_seen)
    filled = np.take_along_axis(moved, source, axis=0)
    observed = np.asarray(np.any(finite, axis=0))
    filled = np.where(observed[None], filled, np.nan)
    result: FloatArray = np.moveaxis(filled, 0, axis)
    return result
