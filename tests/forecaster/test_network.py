"""Encoder shapes, real hierarchical masks, gap handling, and flow likelihood vs sampling."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from forecaster.config import FLOW_TRANSFORMS, FlowTransformKind, ForecasterConfig
from forecaster.encoder import HierarchicalEncoder, normalise_context, stage_masks
from forecaster.network import (
    BoundedAffineCouplingTransform,
    ForecastNetwork,
    build_flow,
    coupling_mask,
)
from tests.forecaster.helpers import tiny_config

LEVELS = [1, 3, 3, 2, 2]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny tensors: a second intra-op thread only spin-waits on a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


TINY = tiny_config(16, 3)


def _inputs(
    batch: int = 4, config: ForecasterConfig = TINY, indicators: int = len(LEVELS)
) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    context = torch.randn(batch, config.context_length, indicators, generator=generator)
    calendar = torch.randn(batch, config.context_length + config.horizon, 4, generator=generator)
    return context, calendar


def test_shapes_of_tokens_prediction_and_samples() -> None:
    network = ForecastNetwork(TINY, LEVELS).eval()
    context, calendar = _inputs()
    prediction = network(context, calendar)
    assert prediction.loc.shape == (4, 3, 5)
    assert prediction.scale.shape == (4, 3, 5)
    assert bool((prediction.scale > 0).all())
    assert network.log_prob(prediction, torch.randn(4, 3, 5)).shape == (4,)
    assert network.sample(prediction, 7, torch.Generator().manual_seed(1)).shape == (4, 7, 3, 5)
    window = normalise_context(context, TINY.revin_variance_floor)
    assert network.encoder(window, calendar).shape == (4, 5 + 4, 16)


def test_stage_masks_let_a_level_see_only_itself_and_the_levels_above() -> None:
    stages, masks = stage_masks([1, 3, 2, 1])
    assert stages == [1, 2, 3]
    allowed = torch.isfinite(masks)
    # Stage of level 2: token 2 (level 2) sees tokens 0, 2, 3 (levels 1, 2, 1), not token 1.
    assert allowed[1, 2].tolist() == [True, False, True, True]
    # Stage of level 1: level-1 tokens never see levels 2 or 3.
    assert allowed[0, 0].tolist() == [True, False, False, True]
    assert torch.isneginf(masks[0, 0, 1])


def test_the_last_stage_lets_the_demand_level_read_every_level() -> None:
    stages, masks = stage_masks([1, 3, 2, 1], demand_reads_all=True)
    assert stages == [1, 2, 3, 1]
    allowed = torch.isfinite(masks)
    assert allowed[3, 0].tolist() == [True, True, True, True]
    assert allowed[3, 1].tolist() == [False, True, False, False]  # not updated there
    assert stage_masks([1, 1], demand_reads_all=True)[0] == [1]  # one level: no extra stage


def _tokens_before_and_after_a_level_3_change(
    encoder: HierarchicalEncoder,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder's tokens for `_inputs()` and for the same with indicator 1 (level 3)
    perturbed."""
    context, calendar = _inputs()
    changed = context.clone()
    changed[:, :, 1] += 5.0 * torch.randn_like(changed[:, :, 1])
    before = encoder(normalise_context(context, 0.01), calendar)
    after = encoder(normalise_context(changed, 0.01), calendar)
    return before, after


def test_with_the_last_stage_a_finer_level_reaches_the_demand_only() -> None:
    encoder = HierarchicalEncoder(
        TINY.replace(calendar=False, demand_reads_all=True), LEVELS
    ).eval()
    before, after = _tokens_before_and_after_a_level_3_change(encoder)
    levels = torch.tensor(LEVELS)
    assert not torch.allclose(before[:, levels == 1], after[:, levels == 1])
    assert torch.equal(before[:, levels == 2], after[:, levels == 2])


def test_checkerboard_masks_couple_the_steps_of_each_indicator() -> None:
    config = TINY.replace(horizon=3, coupling_mask="checkerboard")
    for indicators in (1, 2, 4):
        features = 3 * indicators
        for first_half in (True, False):
            mask = coupling_mask(config, features, first_half).view(3, indicators)
            # Every indicator has steps on both sides of every layer.
            assert bool((mask.sum(dim=0) > 0).all()) and bool((mask.sum(dim=0) < 3).all())
    alternating = coupling_mask(config.replace(coupling_mask="alternating"), 6, True)
    assert alternating.view(3, 2)[:, 1].sum() == 0  # split by indicator: the old defect


def test_a_token_never_receives_information_from_a_finer_level() -> None:
    encoder = HierarchicalEncoder(
        TINY.replace(calendar=False, demand_reads_all=False), LEVELS
    ).eval()
    context, calendar = _inputs()
    before, after = _tokens_before_and_after_a_level_3_change(encoder)
    levels = torch.tensor(LEVELS)
    assert torch.equal(before[:, levels < 3], after[:, levels < 3])
    assert not torch.allclose(before[:, levels == 3], after[:, levels == 3])
    # Information does flow downwards: the level-1 input reaches the level-2 tokens.
    changed = context.clone()
    changed[:, :, 0] += 5.0
    changed[:, -1, 0] -= 3.0
    after = encoder(normalise_context(changed, 0.01), calendar)
    assert not torch.allclose(before[:, levels == 2], after[:, levels == 2])


def test_gaps_are_filled_from_the_last_value_and_flagged() -> None:
    context = torch.tensor([[1.0, np.nan, np.nan, 4.0, np.nan]]).T.unsqueeze(0)  # [1, 5, 1]
    leading = torch.tensor([[np.nan, 2.0, 3.0, 3.0, 3.0]]).T.unsqueeze(0)
    empty = torch.full((1, 5, 1), float("nan"))
    window = normalise_context(torch.cat([context, leading, empty]), variance_floor=0.0)
    filled = window.values * window.std.unsqueeze(1) + window.mean.unsqueeze(1)
    np.testing.assert_allclose(filled[0, :, 0], [1, 1, 1, 4, 4], atol=1e-6)
    np.testing.assert_allclose(filled[1, :, 0], [2, 2, 3, 3, 3], atol=1e-6)
    assert window.missing[0, :, 0].tolist() == [0, 1, 1, 0, 1]
    assert window.mean[0, 0].item() == pytest.approx(2.5)  # observed values only
    assert torch.all(window.values[2] == 0) and torch.all(window.missing[2] == 1)
    assert torch.isfinite(window.values).all()


def _train_toy_flow(
    flow_transform: FlowTransformKind,
) -> tuple[ForecastNetwork, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A flow fitted to a bimodal, correlated 2-D target with a fixed context."""
    torch.manual_seed(0)
    config = TINY.replace(
        context_length=8, horizon=1, calendar=False, flow_layers=4, flow_transform=flow_transform
    )
    network = ForecastNetwork(config, [1, 2])
    context = torch.zeros(1, 8, 2)
    context[0, :, 0] = torch.linspace(-1, 1, 8)
    calendar = torch.zeros(1, 9, 4)
    generator = torch.Generator().manual_seed(1)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-2)
    for _ in range(150):
        mode = torch.randint(0, 2, (128, 1), generator=generator).float() * 2 - 1
        first = 1.5 * mode + 0.3 * torch.randn(128, 1, generator=generator)
        second = 0.8 * first + 0.4 * torch.randn(128, 1, generator=generator)
        target = torch.cat([first, second], dim=1).unsqueeze(1)
        prediction = network(context.expand(128, -1, -1), calendar.expand(128, -1, -1))
        loss = -network.log_prob(prediction, target).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return network.eval(), context, calendar, target


@pytest.mark.parametrize("flow_transform", FLOW_TRANSFORMS)
def test_flow_samples_have_the_moments_its_likelihood_implies(
    flow_transform: FlowTransformKind,
) -> None:
    network, context, calendar, _ = _train_toy_flow(flow_transform)
    with torch.no_grad():
        prediction = network(context, calendar)
        axis = torch.linspace(-5, 5, 161)
        grid = torch.cartesian_prod(axis, axis)  # [G, 2]
        repeated = type(prediction)(
            loc=prediction.loc.expand(len(grid), -1, -1),
            scale=prediction.scale.expand(len(grid), -1, -1),
            window_centre=prediction.window_centre.expand(len(grid), -1),
            window_std=prediction.window_std.expand(len(grid), -1),
            flow_context=prediction.flow_context.expand(len(grid), -1),
        )
        density = network.log_prob(repeated, grid.unsqueeze(1)).exp() * (axis[1] - axis[0]) ** 2
        samples = network.sample(prediction, 20_000, torch.Generator().manual_seed(2))[0, :, 0]
    assert density.sum().item() == pytest.approx(1.0, abs=0.02)
    implied_mean = (density[:, None] * grid).sum(dim=0)
    implied_second = (density[:, None, None] * grid[:, :, None] * grid[:, None, :]).sum(dim=0)
    empirical_second = samples.T @ samples / len(samples)
    np.testing.assert_allclose(samples.mean(dim=0), implied_mean, atol=0.05)
    np.testing.assert_allclose(empirical_second, implied_second, atol=0.08)
    # And the flow learnt the toy: two modes near +-1.5 and a strong positive correlation.
    first = samples[:, 0]
    assert 0.35 < (first > 0).float().mean().item() < 0.65
    assert (first.abs() - 1.5).abs().median().item() < 0.4
    assert np.corrcoef(samples.T.numpy())[0, 1] > 0.7


@pytest.mark.parametrize("flow_transform", FLOW_TRANSFORMS)
@pytest.mark.parametrize("levels,horizon", [(LEVELS, 3), ([1], 1)], ids=["joint", "one_value"])
def test_an_untrained_flow_is_the_identity_so_the_first_phase_may_skip_it(
    flow_transform: FlowTransformKind, levels: list[int], horizon: int
) -> None:
    config = TINY.replace(horizon=horizon, flow_transform=flow_transform)
    network = ForecastNetwork(config, levels).eval()
    context, calendar = _inputs(config=config, indicators=len(levels))
    target = torch.randn(4, horizon, len(levels))
    with torch.no_grad():
        prediction = network(context, calendar)
        with_flow = network.log_prob(prediction, target)
        network.use_flow(False)
        without_flow = network.log_prob(prediction, target)
    torch.testing.assert_close(with_flow, without_flow, atol=1e-4, rtol=1e-5)
    assert not any(parameter.requires_grad for parameter in network.flow.parameters())
    network.use_flow(True)
    assert all(parameter.requires_grad for parameter in network.flow.parameters())


@pytest.mark.parametrize("flow_transform", FLOW_TRANSFORMS)
def test_a_perturbed_flow_inverts_with_the_opposite_log_determinant(
    flow_transform: FlowTransformKind,
) -> None:
    torch.manual_seed(0)
    config = TINY.replace(flow_transform=flow_transform)
    flow = build_flow(config, features=6)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.normal_(0.0, 0.3)
    values = 2.0 * torch.randn(64, 6)
    context = torch.randn(64, config.context_features)
    with torch.no_grad():
        noise, forward_log_det = flow(values, context=context)
        recovered, inverse_log_det = flow.inverse(noise, context=context)
    assert not torch.allclose(noise, values, atol=0.1)
    torch.testing.assert_close(recovered, values, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(inverse_log_det, -forward_log_det, atol=1e-2, rtol=1e-4)


def test_the_affine_scale_stays_within_its_bound_for_any_raw_output() -> None:
    coupling = build_flow(TINY.replace(flow_transform="affine"), features=4)._transforms[0]
    assert isinstance(coupling, BoundedAffineCouplingTransform)
    raw = torch.tensor([[0.0, 0.0, -1e6, 1e6]])  # shift of 2 features, then their raw scale
    scale, shift = coupling._scale_and_shift(raw)
    bound = coupling.log_scale_bound
    torch.testing.assert_close(scale.log(), torch.tensor([[-bound, bound]]))
    assert bool((shift == 0).all())
    unit, _ = coupling._scale_and_shift(torch.zeros(1, 4))
    torch.testing.assert_close(unit, torch.ones(1, 2))
