"""Samples of non-negative demand are never negative (floors), and per-step spreads."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from forecaster import Forecaster, train_forecaster
from forecaster.base import sample_floor_of
from forecaster.baselines import ETSBaseline, LastValueBaseline, SeasonalNaiveBaseline
from tests.forecaster.helpers import QUICK_TRAINING, tiny_config

TINY = tiny_config(24, 4, **QUICK_TRAINING)
STEP = 300.0


def _bursts(rows: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Demand that is zero more than half of the time and bursts otherwise."""
    rng = np.random.default_rng(0)
    times = 1_700_000_000.0 + STEP * np.arange(rows)
    busy = rng.random(rows) < 0.4
    values = np.where(busy, rng.gamma(2.0, 50.0, rows), 0.0)[:, None]
    return values, times


@pytest.fixture(scope="module")
def bursts_models() -> dict[str, tuple[Forecaster, np.ndarray, np.ndarray]]:
    values, times = _bursts()
    return {
        kind: (train_forecaster(values, times, [1], TINY.replace(sample_floor=kind)), values, times)
        for kind in ("zero_if_nonnegative", "none")
    }


def _draws(model: Forecaster, values: np.ndarray, times: np.ndarray) -> np.ndarray:
    starts = np.arange(420, 470, 5)
    windows = np.stack([values[start : start + 24] for start in starts])
    return model.sample(windows, times[starts + 23], 64, seed=0)


def test_samples_of_non_negative_demand_are_never_negative(bursts_models) -> None:
    clamped = _draws(*bursts_models["zero_if_nonnegative"])
    raw = _draws(*bursts_models["none"])
    assert raw.min() < 0.0  # the unclamped head does put mass below zero here
    assert clamped.min() >= 0.0
    assert np.mean(clamped == 0.0) > 0.1  # the mass below zero sits at zero


def test_the_floor_survives_saving_and_old_artifacts_load_without_one(bursts_models) -> None:
    model, values, times = bursts_models["zero_if_nonnegative"]
    again = Forecaster.from_bytes(model.to_bytes())
    np.testing.assert_array_equal(_draws(again, values, times), _draws(model, values, times))
    payload = torch.load(io.BytesIO(model.to_bytes()), weights_only=True)
    del payload["floor"]
    state = payload["state_dict"]
    state["spread"] = state["spread"][0].clone()  # one factor per indicator, as before
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    old = Forecaster.from_bytes(buffer.getvalue())
    assert old.floor is None and torch.isinf(old.network.get_buffer("floor")).all()
    assert old.network.get_buffer("spread").shape == (TINY.horizon, 1)


def test_spread_is_calibrated_per_horizon_step(bursts_models) -> None:
    model, _, _ = bursts_models["zero_if_nonnegative"]
    spread = model.metadata["spread"]
    assert len(spread) == TINY.horizon and all(len(step) == 1 for step in spread)
    np.testing.assert_allclose(model.network.get_buffer("spread").numpy(), spread)


def test_floor_kinds() -> None:
    values = np.array([[3.0, -1.0, 2.0], [np.nan, 4.0, 5.0]])
    np.testing.assert_array_equal(
        sample_floor_of(values, "zero_if_nonnegative"), [0.0, -np.inf, 0.0]
    )
    np.testing.assert_array_equal(sample_floor_of(values, "training_min"), [3.0, -1.0, 2.0])
    assert np.isneginf(sample_floor_of(values, "none")).all()


def test_baselines_clamp_at_the_floor_unless_asked_not_to() -> None:
    values, _ = _bursts()
    history, windows = values[:400], np.stack([values[400 + k : 448 + k] for k in range(0, 40, 4)])
    ends = np.zeros(len(windows))
    for kind_of in (
        lambda floor: LastValueBaseline(history, 48, 4, sample_floor=floor),
        lambda floor: SeasonalNaiveBaseline(history, 48, 4, 24, sample_floor=floor),
        lambda floor: ETSBaseline(history, 48, 4, sample_floor=floor),
    ):
        assert kind_of("zero_if_nonnegative").sample(windows, ends, 50, seed=0).min() == 0.0
        assert kind_of("none").sample(windows, ends, 50, seed=0).min() < 0.0


def test_training_targets_on_the_floor_are_spread_into_the_band_below_it() -> None:
    from forecaster.network import ForecastNetwork
    from forecaster.training import ForecasterModule

    config = TINY.replace(floor_band=0.5)
    network = ForecastNetwork(config, [1, 2])
    network.set_floor(torch.tensor([0.0, float("-inf")]))
    module = ForecasterModule(network, config)
    target = torch.tensor([[[0.0, 0.0], [3.0, -2.0]]]).expand(64, 2, 2).clone()
    window_std = torch.tensor([[2.0, 1.0]]).expand(64, 2)
    spread = module.spread_floor_targets(target, window_std)
    on_floor = spread[:, 0, 0]
    assert (on_floor <= 0.0).all() and (on_floor >= -1.0).all() and on_floor.std() > 0.1
    torch.testing.assert_close(spread[:, 0, 1], target[:, 0, 1])  # no floor: unchanged
    torch.testing.assert_close(spread[:, 1], target[:, 1])  # above the floor: unchanged
    kept = ForecasterModule(network, config.replace(floor_band=0.0))
    torch.testing.assert_close(kept.spread_floor_targets(target, window_std), target)


def test_an_unbounded_indicator_keeps_no_floor_through_save_and_load(tmp_path) -> None:
    from forecaster.windows import Scaler

    scaler = Scaler(mean=np.array([10.0, 0.0]), scale=np.array([2.0, 1.0]))
    floor = sample_floor_of(np.array([[0.0, -3.0], [5.0, 1.0]]), "zero_if_nonnegative")
    model = Forecaster(TINY, [1, 2], scaler, STEP, floor=floor)
    again = Forecaster.load(model.save(tmp_path).parent)
    np.testing.assert_array_equal(again.floor, [0.0, -np.inf])
    window = np.zeros((1, TINY.context_length, 2))
    samples = again.sample(window, [1_700_000_000.0], 200, seed=0)
    assert samples[..., 0].min() == 0.0 and samples[..., 1].min() < 0.0
