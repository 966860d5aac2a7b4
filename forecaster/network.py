"""The full network: encoder, Gaussian projection and the conditional normalizing flow.

The distribution of the target y (globally scaled, `[H, N]`) given a context window:

    y = mean_w + std_w * (loc + scale * z),      z = flow^-1(u),  u ~ N(0, I)

mean_w, std_w are the window's RevIN statistics, loc and scale the Gaussian projection
of each indicator token (per horizon step), and flow a coupling flow from nflows
(rational-quadratic spline or affine layers: `ForecasterConfig.flow_transform`) over the
joint vector z of H x N values, conditioned on a summary of all tokens. With the
"gaussian" head the flow is the identity. The log-likelihood includes the log-determinants
of both affine maps, so it is the density of y itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from nflows.nn.nets import ResidualNet
from nflows.transforms import CompositeTransform, ReversePermutation, Transform
from nflows.transforms.autoregressive import (
    MaskedAffineAutoregressiveTransform,
    MaskedPiecewiseRationalQuadraticAutoregressiveTransform,
)
from nflows.transforms.coupling import (
    AffineCouplingTransform,
    PiecewiseRationalQuadraticCouplingTransform,
)
from nflows.transforms.splines.rational_quadratic import DEFAULT_MIN_DERIVATIVE
from torch import Tensor, nn
from torch.nn import functional

from forecaster.config import ForecasterConfig
from forecaster.encoder import HierarchicalEncoder, normalise_context
from forecaster.flow_sampling import inverse_per_window
from forecaster.spline_inverse import raw_for_unit_slope

_CONTEXT_PER_TOKEN = 8
_LOG_2PI = math.log(2 * math.pi)
# An affine coupling layer scales by at most e^3 ~ 20 either way; the Gaussian projection
# already carries the spread, so the flow needs only shape.
_AFFINE_LOG_SCALE_BOUND = 3.0
# nflows' MaskedAffineAutoregressiveTransform adds this to its softplus scale.
_MADE_AFFINE_EPSILON = 1e-3


@dataclass
class Prediction:
    """Parameters of the predictive distribution of a batch of windows."""

    loc: Tensor  # [B, H, N] in window-normalised units
    scale: Tensor  # [B, H, N]
    window_centre: Tensor  # [B, N] mean of the window's observed values
    window_std: Tensor  # [B, N]
    flow_context: Tensor  # [B, C]


def _start_as_identity(final_layer: nn.Linear, num_bins: int) -> None:
    """Make a spline layer the identity at initialisation: equal bins, unit slopes.

    The layer's outputs are `num_bins` widths, `num_bins` heights and `num_bins - 1`
    inner derivatives per transformed feature; derivatives are `min + softplus(raw)`,
    so raw = log(e^(1 - min) - 1) gives slope 1. The flow head then starts as the
    Gaussian head and training can only add shape to it.
    """
    per_feature = 3 * num_bins - 1
    unit_slope = raw_for_unit_slope(DEFAULT_MIN_DERIVATIVE)
    with torch.no_grad():
        final_layer.weight.zero_()
        bias = final_layer.bias.view(-1, per_feature)
        bias.zero_()
        bias[:, 2 * num_bins :] = unit_slope


def _start_affine_as_identity(final_layer: nn.Linear, raw_for_unit_scale: float) -> None:
    """Make an affine layer the identity at initialisation: zero shift, unit scale."""
    with torch.no_grad():
        final_layer.weight.zero_()
        final_layer.bias.fill_(raw_for_unit_scale)


class BoundedAffineCouplingTransform(AffineCouplingTransform):  # type: ignore[misc]
    """Affine coupling whose scale is exp(b * tanh(raw / b)): the identity at raw = 0 with
    unit slope there, and never beyond e^(+-b), so neither direction can blow up.

    nflows' own `sigmoid(raw + 2) + 1e-3` caps the scale near 1 and would have to start
    in its flat part to be the identity.
    """

    def __init__(
        self,
        mask: Tensor,
        transform_net_create_fn: Callable[[int, int], nn.Module],
        log_scale_bound: float,
    ) -> None:
        super().__init__(mask=mask, transform_net_create_fn=transform_net_create_fn)
        self.log_scale_bound = log_scale_bound

    def _scale_and_shift(self, transform_params: Tensor) -> tuple[Tensor, Tensor]:
        raw = transform_params[:, self.num_transform_features :, ...]
        shift = transform_params[:, : self.num_transform_features, ...]
        bound = self.log_scale_bound
        return torch.exp(bound * torch.tanh(raw / bound)), shift


def build_flow(config: ForecasterConfig, features: int) -> Transform:
    """Flow over `features` values, conditioned on a context, made of `config.flow_transform`
    layers, starting as the identity.

    Coupling layers (alternating halves) invert in one pass, so sampling costs the same as
    evaluating the likelihood; a single value has nothing to couple with and gets one
    autoregressive layer, which with one feature is also a single pass.
    """
    if features == 1:
        return _single_feature_flow(config)

    def coupling_net(in_features: int, out_features: int) -> nn.Module:
        net: nn.Module = ResidualNet(
            in_features,
            out_features,
            hidden_features=config.flow_hidden,
            context_features=config.context_features,
            num_blocks=1,
            activation=functional.gelu,
        )
        return net

    transforms: list[Transform] = []
    for layer in range(config.flow_layers):
        mask = coupling_mask(config, features, first_half=layer % 2 == 0)
        transforms.append(_coupling_layer(config, mask, coupling_net))
        if layer % 2 == 1 and layer + 1 < config.flow_layers:
            transforms.append(ReversePermutation(features))
    return CompositeTransform(transforms)


def coupling_mask(config: ForecasterConfig, features: int, first_half: bool) -> Tensor:
    """nflows' coupling mask over the flat joint vector (position h * N + n): > 0 marks
    the features the layer transforms, the rest condition it."""
    position = torch.arange(features)
    if config.coupling_mask == "checkerboard":
        indicators = features // config.horizon
        parity = (position // indicators + position % indicators) % 2
    else:
        parity = position % 2
    return (parity == (0 if first_half else 1)).to(torch.int64)


def _coupling_layer(
    config: ForecasterConfig, mask: Tensor, coupling_net: Callable[[int, int], nn.Module]
) -> Transform:
    coupling: AffineCouplingTransform | PiecewiseRationalQuadraticCouplingTransform
    if config.flow_transform == "affine":
        coupling = BoundedAffineCouplingTransform(mask, coupling_net, _AFFINE_LOG_SCALE_BOUND)
        _start_affine_as_identity(coupling.transform_net.final_layer, 0.0)
        return coupling
    coupling = PiecewiseRationalQuadraticCouplingTransform(
        mask=mask,
        transform_net_create_fn=coupling_net,
        num_bins=config.flow_bins,
        tails="linear",
        tail_bound=config.flow_tail_bound,
    )
    _start_as_identity(coupling.transform_net.final_layer, config.flow_bins)
    return coupling


def _single_feature_flow(config: ForecasterConfig) -> Transform:
    if config.flow_transform == "affine":
        affine = MaskedAffineAutoregressiveTransform(
            features=1,
            hidden_features=config.flow_hidden,
            context_features=config.context_features,
            num_blocks=2,
        )
        # Its scale is softplus(raw) + 1e-3 (bounded below, so the inverse is safe); the
        # final layer's outputs interleave (scale, shift), so only the scale's bias moves.
        final_layer = affine.autoregressive_net.final_layer
        _start_affine_as_identity(final_layer, 0.0)
        with torch.no_grad():
            final_layer.bias[0] = raw_for_unit_slope(_MADE_AFFINE_EPSILON)
        return affine
    single = MaskedPiecewiseRationalQuadraticAutoregressiveTransform(
        features=1,
        hidden_features=config.flow_hidden,
        context_features=config.context_features,
        num_bins=config.flow_bins,
        tails="linear",
        tail_bound=config.flow_tail_bound,
        num_blocks=2,
    )
    _start_as_identity(single.autoregressive_net.final_layer, config.flow_bins)
    return single


class ForecastNetwork(nn.Module):
    def __init__(self, config: ForecasterConfig, levels: list[int]) -> None:
        super().__init__()
        self.config = config
        self.num_indicators = len(levels)
        self.horizon = config.horizon
        self.encoder = HierarchicalEncoder(config, levels)
        self.projection = nn.Linear(config.d_model, 2 * config.horizon)
        # A direct linear map of each indicator's normalised window to its loc, one per
        # indicator (persistent and mean-reverting indicators need opposite ones). It starts
        # at zero, i.e. at the window's mean after RevIN; training learns how much of each
        # past step to carry.
        self.skip_weight = nn.Parameter(
            torch.zeros(len(levels), config.context_length, config.horizon)
        )
        self.summary = nn.Linear(config.d_model, _CONTEXT_PER_TOKEN)
        self.context_net = nn.Sequential(
            nn.Linear(self.encoder.num_tokens * _CONTEXT_PER_TOKEN, config.context_features),
            nn.GELU(),
            nn.Linear(config.context_features, config.context_features),
        )
        # Widening of the predictive spread per horizon step and indicator, fitted on the
        # validation windows after training (see `training.calibrate_spread`); part of the
        # scale, so the likelihood and the samples both include it.
        self.register_buffer("spread", torch.ones(config.horizon, len(levels)))
        # Lowest value a sample may take per indicator (globally scaled; -inf: none), set
        # by `set_floor` from the model's floor, which the artifact keeps exactly. The
        # likelihood is that of the unclamped distribution; only samples are clamped.
        self.register_buffer("floor", torch.full((len(levels),), float("-inf")), persistent=False)
        self.flow_enabled = True
        self.flow: Transform | None = (
            build_flow(config, self.features) if config.head == "flow" else None
        )

    def use_flow(self, enabled: bool) -> None:
        """Switch the flow off (the head is then its Gaussian base) or on.

        Training switches it off for a first phase: the flow starts as the identity, so
        skipping it changes nothing but the time, and its weights stay frozen meanwhile.
        """
        self.flow_enabled = enabled
        if self.flow is not None:
            for parameter in self.flow.parameters():
                parameter.requires_grad_(enabled)

    def set_floor(self, floor: Tensor) -> None:
        """Clamp samples at `floor` `[N]` (globally scaled; -inf: unbounded)."""
        buffer = self.get_buffer("floor")
        buffer.copy_(floor.to(buffer))

    @property
    def features(self) -> int:
        """Dimension of the joint vector the flow models: horizon x indicators."""
        return self.horizon * self.num_indicators

    def forward(self, context: Tensor, calendar: Tensor) -> Prediction:
        """context `[B, L, N]` globally scaled with NaN gaps; calendar `[B, L + H, 4]`."""
        window = normalise_context(context, self.config.revin_variance_floor)
        tokens = self.encoder(window, calendar)
        indicator_tokens = tokens[:, : self.num_indicators]
        raw = self.projection(indicator_tokens)  # [B, N, 2H]
        skip = torch.einsum("bln,nlh->bnh", window.values, self.skip_weight)
        loc = (raw[..., : self.horizon] + skip).transpose(1, 2)
        scale = functional.softplus(raw[..., self.horizon :]).transpose(1, 2)
        scale = (scale + self.config.min_scale) * self.get_buffer("spread")
        summary = self.summary(tokens).flatten(start_dim=1)
        return Prediction(
            loc=loc,
            scale=scale,
            window_centre=window.mean,
            window_std=window.std,
            flow_context=self.context_net(summary),
        )

    def log_prob(self, prediction: Prediction, target: Tensor) -> Tensor:
        """Log-density `[B]` of globally scaled targets `[B, H, N]`."""
        mean = prediction.window_centre.unsqueeze(1)
        std = prediction.window_std.unsqueeze(1)
        standardised = ((target - mean) / std - prediction.loc) / prediction.scale
        flat = standardised.flatten(start_dim=1)
        if self.flow is None or not self.flow_enabled:
            noise, log_det = flat, torch.zeros(flat.shape[0], device=flat.device)
        else:
            noise, log_det = self.flow(flat, context=prediction.flow_context)
        base = -0.5 * (noise**2).sum(dim=1) - 0.5 * self.features * _LOG_2PI
        affine = torch.log(prediction.scale).flatten(1).sum(dim=1)
        affine = affine + self.horizon * torch.log(prediction.window_std).sum(dim=1)
        result: Tensor = base + log_det - affine
        return result

    def sample(
        self,
        prediction: Prediction,
        num_samples: int,
        generator: torch.Generator | None,
        clamp: bool = True,
    ) -> Tensor:
        """Joint samples `[B, S, H, N]` of the globally scaled target, at or above the floor
        unless `clamp` is off."""
        batch = prediction.loc.shape[0]
        noise = torch.randn(
            batch * num_samples,
            self.features,
            generator=generator,
            device=prediction.loc.device,
            dtype=prediction.loc.dtype,
        )
        if self.flow is None or not self.flow_enabled:
            standardised = noise
        else:
            standardised = inverse_per_window(
                self.flow, noise, prediction.flow_context, num_samples
            )
        shaped = standardised.view(batch, num_samples, self.horizon, self.num_indicators)
        normalised = prediction.loc.unsqueeze(1) + prediction.scale.unsqueeze(1) * shaped
        mean = prediction.window_centre.view(batch, 1, 1, -1)
        std = prediction.window_std.view(batch, 1, 1, -1)
        samples = normalised * std + mean
        return self.clamp(samples) if clamp else samples

    def clamp(self, samples: Tensor) -> Tensor:
        """Raise values `[..., N]` below each indicator's floor to it."""
        return torch.maximum(samples, self.get_buffer("floor").to(samples.dtype))


def count_parameters(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())
