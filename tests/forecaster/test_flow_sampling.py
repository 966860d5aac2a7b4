"""The per-window inverse used for sampling gives nflows' inverse, value for value."""

from __future__ import annotations

import pytest
import torch

from forecaster.config import FLOW_TRANSFORMS, FlowTransformKind
from forecaster.flow_sampling import _supported, inverse_per_window
from forecaster.network import build_flow
from tests.forecaster.helpers import tiny_config

TINY = tiny_config(16, 3)
WINDOWS, SAMPLES = 5, 7


def _perturbed_flow(flow_transform: FlowTransformKind, features: int) -> torch.nn.Module:
    torch.manual_seed(0)
    flow = build_flow(TINY.replace(flow_transform=flow_transform), features=features)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.normal_(0.0, 0.3)
    return flow.eval()


def _both_inverses(flow: torch.nn.Module, features: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    # Wide noise so that values fall outside the spline's tail bound too.
    noise = 3.0 * torch.randn(WINDOWS * SAMPLES, features, generator=generator)
    window_context = torch.randn(WINDOWS, TINY.context_features, generator=generator)
    with torch.inference_mode():
        expected, _ = flow.inverse(noise, context=window_context.repeat_interleave(SAMPLES, dim=0))
        actual = inverse_per_window(flow, noise, window_context, SAMPLES)
    assert not torch.allclose(expected, noise, atol=0.1), "the flow must not be the identity"
    return expected, actual


@pytest.mark.parametrize("features", [6, 7])
@pytest.mark.parametrize("flow_transform", FLOW_TRANSFORMS)
def test_the_per_window_inverse_equals_nflows_inverse(
    flow_transform: FlowTransformKind, features: int
) -> None:
    flow = _perturbed_flow(flow_transform, features=features)
    assert _supported(flow)
    expected, actual = _both_inverses(flow, features=features)
    torch.testing.assert_close(actual, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("flow_transform", FLOW_TRANSFORMS)
def test_a_single_value_flow_goes_through_nflows_itself(flow_transform: FlowTransformKind) -> None:
    flow = _perturbed_flow(flow_transform, features=1)
    assert not _supported(flow)
    expected, actual = _both_inverses(flow, features=1)
    torch.testing.assert_close(actual, expected)


def test_a_flow_in_training_mode_goes_through_nflows_itself() -> None:
    flow = _perturbed_flow("spline", features=6).train()
    assert not _supported(flow)


def test_with_gradients_enabled_sampling_goes_through_nflows_itself() -> None:
    flow = _perturbed_flow("spline", features=6)
    generator = torch.Generator().manual_seed(2)
    noise = torch.randn(WINDOWS * SAMPLES, 6, generator=generator)
    window_context = torch.randn(WINDOWS, TINY.context_features, generator=generator)
    inverted = inverse_per_window(flow, noise, window_context, SAMPLES)
    assert inverted.requires_grad
    expected, _ = flow.inverse(noise, context=window_context.repeat_interleave(SAMPLES, dim=0))
    torch.testing.assert_close(inverted, expected)


@pytest.mark.parametrize("flow_transform", FLOW_TRANSFORMS)
def test_the_nflows_internals_the_fast_path_reads_are_there(
    flow_transform: FlowTransformKind,
) -> None:
    # The fast path reads private members of nflows (pinned ==0.14 in pyproject.toml):
    # an upgrade that renames one must fail here, not fall over while sampling.
    from nflows.transforms import CompositeTransform, Permutation
    from nflows.transforms.coupling import AffineCouplingTransform

    flow = _perturbed_flow(flow_transform, features=6)
    assert isinstance(flow, CompositeTransform) and hasattr(flow, "_transforms")
    layers = list(flow._transforms)
    assert layers
    for layer in layers:
        if isinstance(layer, Permutation):
            assert hasattr(layer, "_inverse_permutation") and layer._dim == 1
        if isinstance(layer, AffineCouplingTransform):
            assert callable(layer._scale_and_shift)
