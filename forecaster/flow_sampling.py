"""Sampling the flow fast: its inverse with the conditioning computed once per window.

`flow.inverse(noise, context)` of nflows wants one context row per sample, so every
window's context is repeated S times and pushed through each conditioner's context
layers S times; its spline also splits the values inside and outside the tail bound with
boolean masks and computes log-determinants that sampling throws away. Together those
were most of the time of a backtest's forecasts. `inverse_per_window` inverts the
coupling flows of `forecaster.network` with the context terms of each `ResidualNet`
computed per window and broadcast over its samples, and the spline evaluated on every
value at once (values outside the bound are clamped in and passed through afterwards).
Transforms it does not know go through nflows' own inverse, so the result is always the
same distribution; the tests check the two agree value for value.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from nflows.nn.nets import ResidualNet
from nflows.transforms import CompositeTransform, Permutation, Transform
from nflows.transforms.coupling import (
    AffineCouplingTransform,
    PiecewiseRationalQuadraticCouplingTransform,
)
from nflows.transforms.splines.rational_quadratic import rational_quadratic_spline
from torch import Tensor
from torch.nn import functional


def inverse_per_window(
    flow: Transform, noise: Tensor, window_context: Tensor, samples_per_window: int
) -> Tensor:
    """`flow^-1(noise)` `[B * S, D]`, where rows b*S .. b*S + S - 1 of `noise` belong to
    window b, whose context is `window_context[b]` (`[B, C]`)."""
    if not _supported(flow):
        context = window_context.repeat_interleave(samples_per_window, dim=0)
        inverted: Tensor = flow.inverse(noise, context=context)[0]
        return inverted
    layers = flow._transforms if isinstance(flow, CompositeTransform) else [flow]
    values: Tensor = noise
    for layer in reversed(layers):
        if isinstance(layer, Permutation):
            values = layer.inverse(values)[0]
        else:
            values = _coupling_inverse(layer, values, window_context, samples_per_window)
    return values


def _supported(flow: Transform) -> bool:
    layers = flow._transforms if isinstance(flow, CompositeTransform) else [flow]
    return all(isinstance(layer, Permutation) or _supported_coupling(layer) for layer in layers)


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
    rows = values.shape[0]
    identity = values[:, layer.identity_features]
    transformed = values[:, layer.transform_features]
    per_window = identity.view(-1, samples_per_window, identity.shape[1])
    params = _residual_net(layer.transform_net, per_window, window_context).reshape(rows, -1)
    if isinstance(layer, PiecewiseRationalQuadraticCouplingTransform):
        inverted = _spline_inverse(layer, transformed, params)
    else:
        scale, shift = layer._scale_and_shift(params)
        inverted = (transformed - shift) / scale
    outputs = torch.empty_like(values)
    outputs[:, layer.identity_features] = identity
    outputs[:, layer.transform_features] = inverted
    return outputs


def _residual_net(net: ResidualNet, inputs: Tensor, window_context: Tensor) -> Tensor:
    """`net(inputs, context)` for inputs `[B, S, I]` sharing each window's context `[B, C]`:
    the context's share of the first layer and the blocks' context gates, once per window."""
    weight = net.initial_layer.weight
    features = inputs.shape[-1]
    context_term = functional.linear(window_context, weight[:, features:], net.initial_layer.bias)
    hidden = functional.linear(inputs, weight[:, :features]) + context_term.unsqueeze(1)
    for block in net.blocks:
        update = block.linear_layers[0](block.activation(hidden))
        update = block.dropout(block.activation(update))
        update = block.linear_layers[1](update)
        gate = torch.sigmoid(block.context_layer(window_context)).unsqueeze(1)
        hidden = hidden + update * gate
    output: Tensor = net.final_layer(hidden)
    return output


def _spline_inverse(
    layer: PiecewiseRationalQuadraticCouplingTransform, inputs: Tensor, params: Tensor
) -> Tensor:
    """The inverse of the layer's linear-tailed rational-quadratic spline, branch-free."""
    bins = layer.num_bins
    params = params.view(inputs.shape[0], inputs.shape[1], -1)
    # As nflows scales them: the conditioner's outputs are divided by sqrt(hidden) first.
    softmax_scale = 1.0 / math.sqrt(layer.transform_net.hidden_features)
    widths = params[..., :bins] * softmax_scale
    heights = params[..., bins : 2 * bins] * softmax_scale
    # Linear tails: the end derivatives are fixed so that the spline's slope there is 1.
    edge = float(np.log(np.exp(1 - layer.min_derivative) - 1))
    derivatives = functional.pad(params[..., 2 * bins :], pad=(1, 1), value=edge)
    bound = layer.tail_bound
    inside = (inputs >= -bound) & (inputs <= bound)
    outputs, _ = rational_quadratic_spline(
        inputs=inputs.clamp(-bound, bound),
        unnormalized_widths=widths,
        unnormalized_heights=heights,
        unnormalized_derivatives=derivatives,
        inverse=True,
        left=-bound,
        right=bound,
        bottom=-bound,
        top=bound,
        min_bin_width=layer.min_bin_width,
        min_bin_height=layer.min_bin_height,
        min_derivative=layer.min_derivative,
    )
    result: Tensor = torch.where(inside, outputs, inputs)
    return result
