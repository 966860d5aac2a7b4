"""Forecaster interface: sample shapes on the original scale, save/load, refusing mismatches."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from forecaster import Forecaster, IncompatibleModelError, train_forecaster
from forecaster.config import FLOW_TRANSFORMS, FlowTransformKind
from forecaster.windows import Scaler
from tests.forecaster.helpers import QUICK_TRAINING, tiny_config

TINY = tiny_config(12, 3, **QUICK_TRAINING)
STEP = 300.0


@pytest.fixture(scope="module")
def trained() -> tuple[Forecaster, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    rows = 400
    times = 1_700_000_000.0 + STEP * np.arange(rows)
    daily = np.sin(2 * np.pi * times / 86_400.0)
    values = np.column_stack(
        [1000.0 + 200.0 * daily + rng.normal(0, 20, rows), 5.0 + rng.normal(0, 0.5, rows)]
    )
    values[50:53, 1] = np.nan
    model = train_forecaster(values, times, [1, 2], TINY, names=["demand", "cpu"])
    return model, values, times


def test_samples_are_joint_paths_on_the_original_scale(trained) -> None:
    model, values, times = trained
    starts = np.array([100, 200, 300])
    windows = np.stack([values[start : start + 12] for start in starts])
    samples = model.sample(windows, times[starts + 11], num_samples=50, seed=3)
    assert samples.shape == (3, 50, 3, 2)
    assert np.isfinite(samples).all()
    assert 500.0 < np.median(samples[..., 0]) < 1500.0  # back on the demand's scale
    assert np.median(np.abs(samples[..., 1] - 5.0)) < 3.0
    quantiles = model.quantiles(windows, times[starts + 11], [0.1, 0.5, 0.9], 50, seed=3)
    assert quantiles.shape == (3, 3, 3, 2)
    assert np.all(np.diff(quantiles, axis=1) >= 0)
    assert model.mean(windows, times[starts + 11], 50, seed=3).shape == (3, 3, 2)
    assert model.log_likelihood(
        windows, times[starts + 11], values[starts + 12][:, None].repeat(3, 1)
    ).shape == (3,)


def test_gaps_in_the_context_still_give_finite_samples(trained) -> None:
    model, values, times = trained
    window = values[40:52].copy()  # holds the NaN rows 50, 51
    window[:4, 0] = np.nan
    samples = model.sample(window[None], times[51:52], 20, seed=0)
    assert np.isfinite(samples).all()


def test_save_load_round_trip_gives_identical_samples(trained, tmp_path: Path) -> None:
    model, values, times = trained
    windows = np.stack([values[10:22], values[60:72]])
    ends = times[[21, 71]]
    model.save(tmp_path / "model")
    loaded = Forecaster.load(tmp_path / "model")
    from_bytes = Forecaster.from_bytes(model.to_bytes())
    expected = model.sample(windows, ends, 30, seed=11)
    np.testing.assert_array_equal(loaded.sample(windows, ends, 30, seed=11), expected)
    np.testing.assert_array_equal(from_bytes.sample(windows, ends, 30, seed=11), expected)
    assert not np.array_equal(model.sample(windows, ends, 30, seed=12), expected)
    assert loaded.names == ["demand", "cpu"] and loaded.config == model.config
    assert (tmp_path / "model" / "forecaster.json").is_file()


def test_loading_refuses_other_indicators_and_bad_artifacts(trained, tmp_path: Path) -> None:
    model, values, times = trained
    model.check_indicators(["demand", "cpu"])
    with pytest.raises(IncompatibleModelError, match=r"missing \['cpu'\].*retrain"):
        model.check_indicators(["demand", "gpu"])
    with pytest.raises(IncompatibleModelError, match="3 indicators"):
        model.sample(np.zeros((1, 12, 3)), [times[11]], 5)
    with pytest.raises(IncompatibleModelError, match="needs the last 12"):
        model.sample(values[:5][None], [times[4]], 5)
    with pytest.raises(IncompatibleModelError, match="no model at"):
        Forecaster.load(tmp_path / "nothing")
    with pytest.raises(IncompatibleModelError, match="not a Harmony forecaster"):
        Forecaster.from_bytes(b"not a model")


def test_training_refuses_irregular_time_and_short_series() -> None:
    times = STEP * np.arange(100.0)
    times[50:] += 7.0
    with pytest.raises(ValueError, match="regular grid"):
        train_forecaster(np.zeros((100, 1)), times, [1], TINY)
    with pytest.raises(ValueError, match="too short"):
        train_forecaster(np.zeros((20, 1)), STEP * np.arange(20.0), [1], TINY)
    with pytest.raises(ValueError, match="levels"):
        train_forecaster(np.zeros((100, 2)), STEP * np.arange(100.0), [1], TINY)


def test_an_empty_batch_gives_an_empty_result(trained) -> None:
    model, _, _ = trained
    assert model.sample(np.zeros((0, 12, 2)), np.zeros(0), 5).shape == (0, 5, 3, 2)


def _untrained_with_shape(flow_transform: FlowTransformKind) -> Forecaster:
    """A Forecaster whose flow weights are perturbed, so the flow is not the identity."""
    torch.manual_seed(0)
    scaler = Scaler(mean=np.array([1000.0, 5.0]), scale=np.array([200.0, 0.5]))
    config = TINY.replace(flow_transform=flow_transform)
    model = Forecaster(config, [1, 2], scaler, STEP, names=["demand", "cpu"])
    assert model.network.flow is not None
    with torch.no_grad():
        for parameter in model.network.flow.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


@pytest.mark.parametrize("flow_transform", FLOW_TRANSFORMS)
def test_each_flow_transform_survives_save_and_load(
    flow_transform: FlowTransformKind, trained, tmp_path: Path
) -> None:
    _, values, times = trained
    model = _untrained_with_shape(flow_transform)
    windows, ends = np.stack([values[10:22], values[60:72]]), times[[21, 71]]
    model.save(tmp_path / "model")
    loaded = Forecaster.load(tmp_path / "model")
    assert loaded.config.flow_transform == flow_transform
    np.testing.assert_array_equal(
        loaded.sample(windows, ends, 30, seed=4), model.sample(windows, ends, 30, seed=4)
    )


def test_an_artifact_from_before_the_flow_transform_setting_loads_as_spline(trained) -> None:
    _, values, times = trained
    model = _untrained_with_shape("spline")
    payload = torch.load(io.BytesIO(model.to_bytes()), weights_only=True)
    del payload["config"]["flow_transform"]
    old = io.BytesIO()
    torch.save(payload, old)
    loaded = Forecaster.from_bytes(old.getvalue())
    assert loaded.config.flow_transform == "spline"
    windows, ends = values[10:22][None], times[[21]]
    np.testing.assert_array_equal(
        loaded.sample(windows, ends, 30, seed=4), model.sample(windows, ends, 30, seed=4)
    )
