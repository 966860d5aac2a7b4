"""The one forward fill: gaps carry the last value forward, leading gaps take the first."""

from __future__ import annotations

import numpy as np

from forecaster.fill import forward_fill

NAN = np.nan


def test_gaps_carry_the_last_value_and_leading_gaps_the_first() -> None:
    values = np.array([[NAN, 1.0], [2.0, NAN], [NAN, NAN], [4.0, 3.0]])
    np.testing.assert_array_equal(
        forward_fill(values, axis=0), [[2.0, 1.0], [2.0, 1.0], [2.0, 1.0], [4.0, 3.0]]
    )


def test_a_lane_never_observed_stays_nan_and_other_axes_work() -> None:
    windows = np.array([[[NAN, 5.0], [NAN, np.inf], [NAN, 7.0]]])  # [B, L, N]
    filled = forward_fill(windows, axis=1)
    assert np.isnan(filled[0, :, 0]).all()
    np.testing.assert_array_equal(filled[0, :, 1], [5.0, 5.0, 7.0])
    assert not np.isnan(windows[0, 0, 1])  # the input is left alone
