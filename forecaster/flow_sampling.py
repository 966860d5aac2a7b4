"""Sampling the flow fast: its inverse with the conditioning computed once per window.

`flow.inverse(noise, context)` of nflows wants one context row per sample, so every
window's context is repeated S times and pushed through each conditioner's context
layers S times; its spline also splits the values inside and outside the tail bound with
boolean masks and computes log-determinants that sampling throws away. Together those
were most of the time of a backtest's forecasts. `inverse_per_window` inverts the
coupling flows of `forecaster.network` with the context terms of each `ResidualNet`
computed per window and broadcast over its samples, and the spline evaluated on every
value at once (values outside the bound are clamped in and passed through afterwards).

It works feature-major (values `[D, rows]`, spline parameters `[parameter, feature,
rows]`): every operation then runs over long contiguous rows, where row-major layout
made the spline's softmax over 8 bins the innermost dimension, and that softmax alone
took 41% of the sampling time (B4's model, 2 cores). Transforms it does not know go
through nflows' own inverse, so the result is always the same distribution; the tests
check the two agree value for value.
"""

from __future__ import annotations

import math

import torch
from nflows.nn.nets import ResidualNet
from nflows.transforms import CompositeTransform, Permutation, Transform
from nflows.transforms.coupling import (
    AffineCouplingTransform,
    PiecewiseRationalQuadraticCouplingTransform,
)
from torch import Tensor
from torch.nn import functional

from forecaster.spline_inverse import (
    SplineShape,
    parameter_major_layer,
    spline_inverse_feature_major,
)


def inverse_per_window(
    flow: Transform, noise: Tensor, window_context: Tensor, samples_per_window: int
) -> Tensor:
    """`flow^-1(noise)` `[B * S, D]`, where rows b*S .. b*S + S - 1 of `noise` belong to
    window b, whose context is `window_context[b]` (`[B, C]`).

    The fast path writes into buffers it allocates, so it runs only where no gradient is
    wanted (sampling under `torch.inference_mode` or `no_grad`, as `Forecaster` samples)."""
    if torch.is_grad_enabled() or not _supported(flow):
        context = window_context.repeat_interleave(samples_per_window, dim=0)
        inverted: Tensor = flow.inverse(noise, context=context)[0]
        return inverted
    layers = flow._transforms if isinstance(flow, CompositeTransform) else [flow]
    values = noise.t().contiguous()  # [D, rows]
    for layer in reversed(layers):
        if isinstance(layer, Permutation):
            values = values.index_select(0, layer._inverse_permutation)
        else:
            values = _coupling_inverse(layer, values, window_context, samples_per_window)
    return values.t()


def _supported(flow: Transform) -> bool:
    layers = flow._transforms if isinstance(flow, CompositeTransform) else [flow]
    return all(
        (isinstance(layer, Permutation) and layer._dim == 1) or _supported_coupling(layer)
        for layer in layers
    )


def _supported_coupling(layer: Transform) -> bool:
    if isinstance(layer, PiecewiseRationalQuadraticCouplingTransform):
        if layer.tails != "linear":
            return False
    elif not isinstance(layer, AffineCouplingTransform):
        return False
    net = layer.transform_net
    return (
        layer.unconditional_transform is None
        and isinstance(net, ResidualNet)
        and net.context_features is not None
        and all(not block.use_batch_norm for block in net.blocks)
        and not net.training
    )


def _coupling_inverse(
    layer: AffineCouplingTransform | PiecewiseRationalQuadraticCouplingTransform,
    values: Tensor,
    window_context: Tensor,
    samples_per_window: int,
) -> Tensor:
    """One coupling layer's inverse on feature-major values `[D, rows]`."""
    identity = values.index_select(0, layer.identity_features)
    transformed = values.index_select(0, layer.transform_features)
    hidden = _residual_net_hidden(layer.transform_net, identity, window_context, samples_per_window)
    final = layer.transform_net.final_layer
    features = layer.num_transform_features
    if isinstance(layer, PiecewiseRationalQuadraticCouplingTransform):
        shape = SplineShape(
            bins=layer.num_bins,
            tail_bound=layer.tail_bound,
            # As nflows scales them: the conditioner's outputs are divided by sqrt(hidden).
            softmax_scale=1.0 / math.sqrt(layer.transform_net.hidden_features),
            min_bin_width=layer.min_bin_width,
            min_bin_height=layer.min_bin_height,
            min_derivative=layer.min_derivative,
        )
        weight, bias = parameter_major_layer(final.weight, final.bias, features, shape)
        buffer = torch.addmm(bias.unsqueeze(1), weight, hidden)
        buffer = buffer.view(3, shape.bins + 1, features, hidden.shape[1])
        inverted = spline_inverse_feature_major(transformed, buffer, shape)
    else:
        # An affine layer's outputs are [shift | raw scale] per row: already parameter-major.
        params = torch.addmm(final.bias.unsqueeze(1), final.weight, hidden)  # [2F, rows]
        scale, shift = layer._scale_and_shift(params.t())
        inverted = (transformed - shift.t()) / scale.t()
    outputs = torch.empty_like(values)
    outputs[layer.identity_features] = identity
    outputs[layer.transform_features] = inverted
    return outputs


def _residual_net_hidden(
    net: ResidualNet, inputs: Tensor, window_context: Tensor, samples_per_window: int
) -> Tensor:
    """The last hidden layer `[H, rows]` of `net(inputs, context)` for feature-major inputs
    `[I, rows]` sharing each window's context `[B, C]`: the context's share of the first
    layer and the blocks' context gates are computed once per window."""
    weight = net.initial_layer.weight
    features = inputs.shape[0]
    windows = window_context.shape[0]
    context_term = functional.linear(window_context, weight[:, features:], net.initial_layer.bias)
    hidden = torch.mm(weight[:, :features], inputs).view(-1, windows, samples_per_window)
    hidden = hidden + context_term.t().unsqueeze(2)
    for block in net.blocks:
        first, second = block.linear_layers
        update = torch.addmm(
            first.bias.unsqueeze(1),
            first.weight,
            block.activation(hidden).view(-1, hidden[0].numel()),
        )
        update = block.dropout(block.activation(update))
        update = torch.addmm(second.bias.unsqueeze(1), second.weight, update)
        gate = torch.sigmoid(block.context_layer(window_context)).t().unsqueeze(2)
        hidden = hidden + update.view_as(hidden) * gate
    return hidden.view(hidden.shape[0], -1)
