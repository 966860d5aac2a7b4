"""Point forecasts of three predictive autoscalers, for every decision origin at once.

Row i of `point_forecasts` is the system's forecast at origin t = first_origin + i from
`demand[:t]` only (horizon index h = step t + h), NaN where its minimum-history rule is not
met (or Crane finds no period). Each indicator column is forecast on its own; hours and
days count from row 0. All are linear in the demand (parameters fitted on normalised data).

- "holt-winters" (jthomperoo/predictive-horizontal-pod-autoscaler): statsmodels
  ExponentialSmoothing, additive trend and season, season = a day of steps, default
  "estimated" initialisation, `fit(alpha, beta, gamma, optimized=False)`, as its
  algorithms/holt_winters/holt_winters.py; history pruned to storedSeasons = 4 whole seasons
  plus the current one; nothing under max(2 * season, 10 + 2 * (season // 2)) observations.
  alpha/beta/gamma: maximum likelihood on the history, refitted once a day and then held
  (a user tuning PHPA on its past); the recursion then runs step by step with them, exactly
  as statsmodels'. Deviations: on the demand, not the replica history; gaps forward-filled.
- "crane-dsp" (gocrane/crane pkg/prediction/dsp): refreshed every 12 h (model-update-interval)
  from the last 7 d + 1 h (historyLength of the EHPA example); gaps filled linearly, data
  before a gap over 1 h dropped, whole hours kept, outliers beyond P0.1/P99.9 replaced by
  the previous value; period by FFT against 100 random permutations (99th largest maximum),
  verified as the highest ACF peak, accepted only if 1 day or 1 week; then one fft
  estimator with the defaults (components above 1/3600 Hz under the 100th largest amplitude
  removed, at least 3 kept) replays the last period. Its marginFraction is the policy's
  knob (Crane picks among 8 default estimators when none is configured). Deviations:
  seeded permutations; lowAmplitudeThreshold (1.0 in the metric's unit) is 0 and values
  <= 0 become 0, not 0.01, for linearity; numpy's percentiles.
- "aws-seasonal" (EC2 Auto Scaling predictive scaling): an hourly forecast refreshed every
  6 h from up to the last 14 days, needing 24 h of data, covering 48 h. AWS's model is not
  public: here each hour's forecast is the mean load of that hour of day over those days.
"""

from __future__ import annotations

import warnings

import numpy as np
import numpy.typing as npt
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from forecaster.fill import forward_fill

FloatArray = npt.NDArray[np.float64]
FORECAST_SOURCES = ("holt-winters", "crane-dsp", "aws-seasonal")
HOUR, DAY = 3600.0, 86400.0
PHPA_STORED_SEASONS = 4
CRANE_HISTORY_SECONDS = 7 * DAY + HOUR
CRANE_UPDATE_SECONDS = 12 * HOUR
CRANE_GAP_SECONDS = HOUR
CRANE_PERMUTATIONS = 100
CRANE_ACF_PEAK_SECONDS = 4 * HOUR
CRANE_MIN_ITEMS, CRANE_MAX_ITEMS = 3, 100
CRANE_HIGH_FREQUENCY_HZ = 1.0 / HOUR
CRANE_LOW_AMPLITUDE = 0.0
AWS_HISTORY_HOURS, AWS_MIN_HOURS, AWS_FORECAST_HOURS, AWS_UPDATE_HOURS = 14 * 24, 24, 48, 6


def point_forecasts(
    source: str, demand: FloatArray, first_origin: int, horizon: int, step_seconds: float
) -> npt.NDArray[np.float32]:
    """[T - first_origin, horizon, K] forecasts; row i is the forecast made at origin
    t = first_origin + i from demand[:t] only (rows >= t never read); horizon index h is
    step t + h. NaN where the system's minimum-history rule is not met yet. demand is
    [T, K] (K demand indicators, NaN = gap)."""
    if source not in FORECAST_SOURCES:
        raise ValueError(f"unknown forecast source {source!r}; choose one of {FORECAST_SOURCES}")
    values = np.asarray(demand, dtype=np.float64)
    values = values[:, None] if values.ndim == 1 else values
    if values.ndim != 2 or not 0 <= first_origin <= values.shape[0] or horizon < 1:
        raise ValueError(
            f"need demand [T, K], 0 <= first_origin <= T and horizon >= 1, got shape "
            f"{np.shape(demand)}, first_origin={first_origin}, horizon={horizon}"
        )
    if not step_seconds > 0:
        raise ValueError(f"step_seconds must be > 0, got {step_seconds!r}")
    column_forecast = {"holt-winters": _holt_winters, "crane-dsp": _crane, "aws-seasonal": _aws}
    out = np.full((values.shape[0] - first_origin, horizon, values.shape[1]), np.nan)
    for k in range(values.shape[1]):
        out[:, :, k] = column_forecast[source](values[:, k], first_origin, horizon, step_seconds)
    return out.astype(np.float32)


def steps_in(seconds: float, step_seconds: float) -> int:
    """Whole steps in `seconds` (at least 1)."""
    return max(1, round(seconds / step_seconds))


# --- PHPA Holt-Winters -----------------------------------------------------------------


def holt_winters_min_history(season: int) -> int:
    """PHPA predicts nothing with fewer observations than this (statsmodels' minimum)."""
    return max(2 * season, 10 + 2 * (season // 2))


def holt_winters_window_start(t: int, first: int, season: int) -> int:
    """First row PHPA still holds at origin t: whole seasons beyond storedSeasons pruned."""
    return first + max(0, (t - first) // season - PHPA_STORED_SEASONS) * season


def holt_winters_block_start(t: int, first: int, season: int) -> int:
    """Origin whose history alpha/beta/gamma in force at origin t were fitted on."""
    block = first + (t - first) // season * season
    return max(block, first + holt_winters_min_history(season))


def fit_holt_winters_params(history: FloatArray, season: int) -> tuple[float, float, float]:
    """(alpha, beta, gamma) maximising the likelihood of `history` (additive trend and
    season, PHPA's initial states), fitted on the history divided by its mean |value|."""
    scale = float(np.mean(np.abs(history)))
    if not scale > 0:
        return 0.5, 0.0, 0.0
    model = ExponentialSmoothing(
        history / scale, trend="add", seasonal="add", seasonal_periods=season,
        initialization_method="heuristic",
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        params = model.fit(optimized=True).params
    alpha, beta, gamma = (float(params[f"smoothing_{n}"]) for n in ("level", "trend", "seasonal"))
    return alpha, beta, gamma


def _holt_winters(series: FloatArray, first_origin: int, horizon: int, step: float) -> FloatArray:
    season = steps_in(DAY, step)
    if season < 2:
        raise ValueError("holt-winters needs a step shorter than half a day")
    out = np.full((series.shape[0] - first_origin, horizon), np.nan)
    finite = np.isfinite(series)
    if not finite.any():
        return out
    first = int(np.argmax(finite))
    filled = forward_fill(series)
    block = first + max(0, first_origin - first) // season * season
    while block < series.shape[0]:
        fit_at = holt_winters_block_start(block, first, season)
        origins = list(range(max(fit_at, first_origin), min(block + season, series.shape[0])))
        if origins:
            start = holt_winters_window_start(block, first, season)
            history = filled[start:fit_at]
            model = ExponentialSmoothing(
                history, trend="add", seasonal="add", seasonal_periods=season
            )
            level, trend, seasonal = model.initial_values()
            params = fit_holt_winters_params(history, season)
            rows = _holt_winters_run(
                filled[start:], params, (float(level), float(trend), list(seasonal)),
                [t - start for t in origins], horizon, season,
            )  # fmt: skip
            out[origins[0] - first_origin : origins[-1] + 1 - first_origin] = rows
        block += season
    return out


def _holt_winters_run(
    y: FloatArray,
    params: tuple[float, float, float],
    initial: tuple[float, float, list[float]],
    stops: list[int],
    horizon: int,
    season: int,
) -> FloatArray:
    """statsmodels' additive recursion over y; at each n in `stops` (ascending), its
    forecast of the next `horizon` steps from y[:n] (seasonal indexing included)."""
    alpha, beta, gamma = params
    level, trend, seasonal = initial
    seasonal = list(seasonal)
    ahead = np.arange(horizon)
    rows = np.empty((len(stops), horizon))
    n = 0
    for row, stop in enumerate(stops):
        while n < stop:
            value = float(y[n])
            new_level = alpha * value - alpha * seasonal[n] + (1 - alpha) * (level + trend)
            seasonal.append(gamma * value - gamma * (level + trend) + (1 - gamma) * seasonal[n])
            trend = beta * (new_level - level) + (1 - beta) * trend
            level = new_level
            n += 1
        cycle = np.asarray([*seasonal[n : n + season - 1], seasonal[n - 1]])
        rows[row] = level + trend * (ahead + 1) + cycle[ahead % season]
    return rows


# --- Crane DSP -------------------------------------------------------------------------


def _crane(series: FloatArray, first_origin: int, horizon: int, step: float) -> FloatArray:
    out = np.full((series.shape[0] - first_origin, horizon), np.nan)
    every, history = steps_in(CRANE_UPDATE_SECONDS, step), steps_in(CRANE_HISTORY_SECONDS, step)
    for update in range(0, series.shape[0], every):
        origins = np.arange(max(update, first_origin), min(update + every, series.shape[0]))
        if origins.size == 0:
            continue
        start = max(0, update - history)
        model = crane_model(series[start:update], step, seed=update)
        if model is None:
            continue
        estimate, end, periods = model
        ahead = origins[:, None] + np.arange(horizon)[None, :] - (start + end)
        values = estimate[ahead % estimate.shape[0]]
        out[origins - first_origin] = np.where(ahead < periods * estimate.shape[0], values, np.nan)
    return out


def crane_model(
    window: FloatArray, step: float, seed: int = 0
) -> tuple[FloatArray, int, int] | None:
    """(one period of forecast, index in `window` it starts at, periods it covers), or None
    when Crane finds no daily/weekly period (or too little history)."""
    x, end = _crane_preprocess(window, step)
    if x is None:
        return None
    rng = np.random.default_rng(seed)
    period = None
    for length in (steps_in(7 * DAY, step), steps_in(DAY, step)):
        if x.shape[0] // length > 1:
            period = crane_find_period(x[-(x.shape[0] // length) * length :], step, rng)
            break
    if period is None or period not in (steps_in(DAY, step), steps_in(7 * DAY, step)):
        return None
    periods = x.shape[0] // period
    return _crane_fft_estimate(x[-periods * period :], period, step), end, periods


def _crane_preprocess(window: FloatArray, step: float) -> tuple[FloatArray | None, int]:
    """fillMissingData + removeExtremeOutliers; (samples, index after the last sample)."""
    seen = np.flatnonzero(np.isfinite(window))
    if seen.size == 0:
        return None, 0
    gaps = np.flatnonzero(np.diff(seen) * step > CRANE_GAP_SECONDS)
    seen = seen[gaps[-1] + 1 :] if gaps.size else seen
    positions = np.arange(seen[0], seen[-1] + 1)
    x = np.interp(positions, seen, window[seen])
    x = x[x.shape[0] % steps_in(HOUR, step) :]
    if x.shape[0] < 2:
        return None, 0
    high, low = np.percentile(x, 99.9), np.percentile(x, 0.1)
    outlier = (x > high) | (x < low)
    outlier[0] = False
    keep = np.maximum.accumulate(np.where(outlier, 0, np.arange(x.shape[0])))
    return x[keep], int(seen[-1]) + 1


def crane_find_period(x: FloatArray, step: float, rng: np.random.Generator) -> int | None:
    """Signal.FindPeriod: the candidate period (steps) above the permutation threshold whose
    ACF value is the highest peak; None when there is none."""
    n, half = x.shape[0], x.shape[0] // 2
    shuffled = rng.permuted(np.broadcast_to(x, (CRANE_PERMUTATIONS, n)), axis=1)
    powers = np.abs(np.fft.rfft(shuffled, axis=1))[:, 1:half]
    std = float(x.std())
    if powers.shape[1] == 0 or not std > 0:
        return None
    threshold = np.sort(powers.max(axis=1))[CRANE_PERMUTATIONS - 2]
    spectrum = np.abs(np.fft.rfft(x))
    hints: list[int] = []
    for k in np.flatnonzero(spectrum[2:half] > threshold) + 2:
        if not hints or hints[-1] > n // int(k):
            hints.append(n // int(k))
    acf = np.fft.ifft(np.abs(np.fft.fft((x - x.mean()) / std)) ** 2).real / n
    widest = int(CRANE_ACF_PEAK_SECONDS / step)
    best, best_value = None, 0.0
    for hint in hints:
        if _is_peak(acf, hint, min(widest, hint // 2)) and best_value < acf[hint]:
            best, best_value = hint, float(acf[hint])
    return best


def _is_peak(acf: FloatArray, i: int, k: int) -> bool:
    """Least-squares slope rising over [i-k, i] and falling over [i, i+k]."""
    n = acf.shape[0]
    if i < 1 or i > n - 1:
        return False
    return _slope(acf, max(0, i - k), i) > 0 and _slope(acf, i, min(n - 1, i + k)) < 0


def _slope(y: FloatArray, lo: int, hi: int) -> float:
    """Least-squares slope of y over [lo, hi] (linearRegressionLSE)."""
    return float(np.polyfit(np.arange(lo, hi + 1), y[lo : hi + 1], 1)[0])


def _crane_fft_estimate(x: FloatArray, period: int, step: float) -> FloatArray:
    """fftEstimator.GetEstimation without the margin: the last period of the signal with
    small high-frequency components removed (Crane's one-sided filter kept)."""
    n = x.shape[0]
    spectrum = np.fft.fft(x)
    magnitude = np.abs(spectrum)
    # |X[k]| and |X[n-k]| are equal but for rounding; averaged so that ties cannot flip.
    amplitude = (magnitude + magnitude[(n - np.arange(n)) % n]) / (2 * n)
    ranked = np.sort(amplitude[1 : n // 2])[::-1]
    floor = max(float(ranked[min(CRANE_MAX_ITEMS, ranked.shape[0]) - 1]), CRANE_LOW_AMPLITUDE)
    if ranked.shape[0] >= CRANE_MIN_ITEMS and ranked[CRANE_MIN_ITEMS - 1] < floor:
        floor = float(ranked[CRANE_MIN_ITEMS - 1])
    frequency = np.arange(n) / (n * step)
    spectrum[(amplitude < floor) & (frequency > CRANE_HIGH_FREQUENCY_HZ)] = 0
    estimate = np.fft.ifft(spectrum).real[-period:]
    return np.where(estimate > 0, estimate, 0.0)


# --- AWS predictive scaling ------------------------------------------------------------


def _aws(series: FloatArray, first_origin: int, horizon: int, step: float) -> FloatArray:
    out = np.full((series.shape[0] - first_origin, horizon), np.nan)
    per_hour = steps_in(HOUR, step)
    hours = series.shape[0] // per_hour
    blocks = series[: hours * per_hour].reshape(hours, per_hour)
    counts = np.isfinite(blocks).sum(axis=1)
    sums = np.where(np.isfinite(blocks), blocks, 0.0).sum(axis=1)
    hourly = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    every = AWS_UPDATE_HOURS * per_hour
    for update in range(0, series.shape[0], every):
        origins = np.arange(max(update, first_origin), min(update + every, series.shape[0]))
        now = update // per_hour
        lo = max(0, now - AWS_HISTORY_HOURS)
        window, seen = hourly[lo:now], np.isfinite(hourly[lo:now])
        if origins.size == 0 or seen.sum() < AWS_MIN_HOURS:
            continue
        of_day = np.arange(lo, now) % 24
        total = np.bincount(of_day[seen], weights=window[seen], minlength=24)
        count = np.bincount(of_day[seen], minlength=24)
        profile = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        hour = (origins[:, None] + np.arange(horizon)[None, :]) // per_hour
        values = profile[hour % 24]
        out[origins - first_origin] = np.where(hour < now + AWS_FORECAST_HOURS, values, np.nan)
    return out
