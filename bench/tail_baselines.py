"""The 0.99 quantile of the largest demand over a decision window, as baselines predict it.

A node asked for at origin o (data up to row o - 1 known) is ready `lead` steps later and
then serves `window` steps, so the quantity the decision needs is the window maximum
max(y[o + lead : o + lead + window]). Every baseline here is made as strong as a user
could make it without looking at the test part: models are fitted on the rows before
`fit_end`, and each prediction is then shifted by split-conformal calibration on the
origins between `fit_end` and `train_end` (Romano et al. 2019, conformalized quantile
regression: the level-quantile of the calibration residuals, with the finite-sample
rank ceil((n + 1) * level)). Test origins start at `train_end`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingRegressor

from forecaster.classical import point_forecasts
from forecaster.fill import forward_fill

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
DAY_SECONDS, WEEK_SECONDS = 86400.0, 7 * 86400.0
LAGS = 12
LAST_VALUE_BINS = 10


@dataclass(frozen=True)
class TailTask:
    """One series and the origins the tail is scored at."""

    values: FloatArray  # [T] demand, NaN = gap
    times: FloatArray  # [T] unix seconds, regular grid
    lead: int  # steps from an origin to the first step a new node serves
    window: int  # steps it then serves
    season: int  # steps in a day
    fit_end: int  # models fit on rows < fit_end
    train_end: int  # calibration origins in [fit_end, train_end), test origins after
    level: float = 0.99

    @property
    def horizon(self) -> int:
        return self.lead + self.window

    @property
    def step_seconds(self) -> float:
        return float(self.times[1] - self.times[0])

    def origins(self, start: int, end: int) -> IntArray:
        """Origins in [start, end) whose whole decision window is observed."""
        first = max(start, self.season + LAGS)
        candidates = np.arange(first, min(end, len(self.values) - self.horizon + 1))
        targets = self.window_max(candidates)
        return candidates[np.isfinite(targets)]

    def window_max(self, origins: IntArray) -> FloatArray:
        """max(y[o + lead : o + lead + window]) per origin; NaN if any step is a gap."""
        offsets = np.arange(self.lead, self.horizon)
        rows = self.values[origins[:, None] + offsets[None, :]]
        result: FloatArray = np.max(rows, axis=1)
        return result

    def calibration_origins(self) -> IntArray:
        return self.origins(self.fit_end, self.train_end)

    def test_origins(self) -> IntArray:
        return self.origins(self.train_end, len(self.values))


def conformal_shift(residuals: FloatArray, level: float) -> float:
    """The split-conformal correction: the ceil((n + 1) * level)-th smallest residual."""
    finite = np.sort(residuals[np.isfinite(residuals)])
    if len(finite) == 0:
        return 0.0
    rank = min(len(finite), math.ceil((len(finite) + 1) * level))
    return float(finite[rank - 1])


def calibration_shift(task: TailTask, predict: Callable[[IntArray], FloatArray]) -> float:
    """The conformal correction of `predict`: its residual quantile on calibration."""
    calibration = task.calibration_origins()
    residuals = task.window_max(calibration) - predict(calibration)
    return conformal_shift(residuals, task.level)


def conformalised(task: TailTask, predict: Callable[[IntArray], FloatArray]) -> FloatArray:
    """`predict` at the test origins, shifted by its residual quantile on calibration."""
    return predict(task.test_origins()) + calibration_shift(task, predict)


def seasonal_naive(task: TailTask) -> FloatArray:
    """The same window one day earlier, its maximum."""

    def predict(origins: IntArray) -> FloatArray:
        return task.window_max(origins - task.season)

    return conformalised(task, predict)


def holt_winters(task: TailTask) -> FloatArray:
    """PHPA's Holt-Winters (additive, daily season, refitted daily) over the window."""
    first = task.fit_end
    series = forward_fill(task.values[:, None], axis=0)
    forecasts = point_forecasts("holt-winters", series, first, task.horizon, task.step_seconds)

    def predict(origins: IntArray) -> FloatArray:
        window = forecasts[origins - first, task.lead :, 0].astype(np.float64)
        fallback = task.values[origins - 1]
        result: FloatArray = np.where(np.isnan(window).all(axis=1), fallback, window.max(axis=1))
        return result

    return conformalised(task, predict)


def ets(task: TailTask, context: int) -> FloatArray:
    """Damped-trend ETS (statsmodels), parameters fitted on the fit rows, smoothed over each
    origin's context window; the largest point forecast over the window."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    filled = forward_fill(task.values[:, None], axis=0)[:, 0]
    settings = {"error": "add", "trend": "add", "damped_trend": True}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = ETSModel(
            filled[: task.fit_end], initialization_method="heuristic", **settings
        ).fit(disp=False)

    def predict(origins: IntArray) -> FloatArray:
        out = np.empty(len(origins))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, origin in enumerate(origins):
                model = ETSModel(
                    filled[origin - context : origin],
                    initialization_method="heuristic",
                    **settings,
                )
                path = model.smooth(fitted.params).forecast(task.horizon)
                out[i] = float(np.max(np.asarray(path)[task.lead :]))
        return out

    return conformalised(task, predict)


def last_value_quantile(task: TailTask) -> FloatArray:
    """The empirical level-quantile of past window maxima given the last value: the fit
    rows' origins binned by their last value (deciles), and per bin the quantile of
    (window max - last value), added to the last value."""
    history = task.origins(0, task.fit_end)
    last = task.values[history - 1]
    keep = np.isfinite(last)
    history, last = history[keep], last[keep]
    excess = task.window_max(history) - last
    edges = np.unique(np.quantile(last, np.linspace(0, 1, LAST_VALUE_BINS + 1)[1:-1]))
    bins = np.digitize(last, edges)
    per_bin = np.array(
        [
            np.quantile(excess[bins == b], task.level) if np.any(bins == b) else np.nan
            for b in range(len(edges) + 1)
        ]
    )
    per_bin = np.where(np.isnan(per_bin), np.quantile(excess, task.level), per_bin)

    def predict(origins: IntArray) -> FloatArray:
        now = forward_fill(task.values[:, None], axis=0)[origins - 1, 0]
        result: FloatArray = now + per_bin[np.digitize(now, edges)]
        return result

    return conformalised(task, predict)


def lag_features(task: TailTask, origins: IntArray) -> FloatArray:
    """Lags, recent maxima and means, the window a day earlier, and the calendar."""
    values = task.values
    lags = values[origins[:, None] - np.arange(1, LAGS + 1)[None, :]]
    columns = [lags]
    for span in (6, 36, task.season):
        block = values[origins[:, None] - np.arange(1, span + 1)[None, :]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            columns.append(np.nanmax(block, axis=1)[:, None])
            columns.append(np.nanmean(block, axis=1)[:, None])
    columns.append(task.window_max(origins - task.season)[:, None])
    served_from = task.times[origins - 1] + (task.lead + 1) * task.step_seconds
    for period in (DAY_SECONDS, WEEK_SECONDS):
        angle = 2 * np.pi * (served_from % period) / period
        columns.extend([np.sin(angle)[:, None], np.cos(angle)[:, None]])
    return np.hstack(columns)


def boosted_quantile(task: TailTask, seed: int) -> FloatArray:
    """Gradient-boosted level-quantile regression (scikit-learn) on lag and calendar
    features, fitted on the fit rows' origins."""
    history = task.origins(0, task.fit_end)
    model = HistGradientBoostingRegressor(
        loss="quantile",
        quantile=task.level,
        max_iter=300,
        learning_rate=0.05,
        min_samples_leaf=40,
        random_state=seed,
    )
    model.fit(lag_features(task, history), task.window_max(history))

    def predict(origins: IntArray) -> FloatArray:
        result: FloatArray = model.predict(lag_features(task, origins))
        return result

    return conformalised(task, predict)


def baseline_quantiles(task: TailTask, context: int, seed: int) -> dict[str, FloatArray]:
    """Every baseline's level-quantile of the window maximum at the test origins."""
    return {
        "ets": ets(task, context),
        "holt-winters": holt_winters(task),
        "seasonal-naive": seasonal_naive(task),
        "last-value-quantile": last_value_quantile(task),
        "boosted-quantile": boosted_quantile(task, seed),
    }
