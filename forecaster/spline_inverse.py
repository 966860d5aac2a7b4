"""The inverse of nflows' linear-tailed rational-quadratic spline, feature-major and branch-free.

The same function as `nflows.transforms.splines.rational_quadratic_spline(inverse=True)`
inside `[-tail_bound, tail_bound]` and the identity outside it, on values laid out
`[F, rows]`: bins along the leading dimension, so that each step is one pass over
contiguous memory, and no log-determinant (sampling does not need one).

The conditioner's final layer is rewritten (`parameter_major_layer`) to emit the spline's
parameters straight into one buffer `[3, K + 1, F, rows]`: the widths and the heights
(already times nflows' softmax scale), which become the bin edges in place, and the raw
derivatives with the constant ends that give the linear tails their slope of 1. Each input
then takes its bin's six values in two gathers, and a derivative's softplus is applied only
to the two values each input needs. The passes over `[K, F, rows]` tensors are what costs;
this keeps them to a handful.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional


@dataclass(frozen=True)
class SplineShape:
    bins: int
    tail_bound: float
    softmax_scale: float
    min_bin_width: float
    min_bin_height: float
    min_derivative: float

    @property
    def edge_derivative_raw(self) -> float:
        """The unnormalised derivative nflows pads both ends with (slope 1 there)."""
        return raw_for_unit_slope(self.min_derivative)


def raw_for_unit_slope(minimum: float) -> float:
    """The raw value r with `minimum + softplus(r) == 1`: how nflows' splines and affine
    layers parametrise a slope or scale of 1."""
    return math.log(math.expm1(1.0 - minimum))


def parameter_major_layer(
    weight: Tensor, bias: Tensor, features: int, shape: SplineShape
) -> tuple[Tensor, Tensor]:
    """The final layer `(weight [F * (3K - 1), H], bias)` of an nflows spline conditioner,
    whose outputs are feature-major, as `(weight', bias')` whose outputs, viewed as
    `[3, K + 1, F]`, are the buffer `spline_inverse_feature_major` works in: the widths
    and the heights (times nflows' softmax scale) in rows 1..K of slots 0 and 1 (row 0 is
    room for the first knot), the raw derivatives in slot 2 with the constant ends."""
    bins = shape.bins
    hidden = weight.shape[1]
    rows = weight.view(features, 3 * bins - 1, hidden).transpose(0, 1)
    offsets = bias.view(features, 3 * bins - 1).t()
    new_weight = weight.new_zeros((3, bins + 1, features, hidden))
    new_bias = bias.new_zeros((3, bins + 1, features))
    new_weight[0, 1:] = rows[:bins] * shape.softmax_scale
    new_bias[0, 1:] = offsets[:bins] * shape.softmax_scale
    new_weight[1, 1:] = rows[bins : 2 * bins] * shape.softmax_scale
    new_bias[1, 1:] = offsets[bins : 2 * bins] * shape.softmax_scale
    new_weight[2, 1:bins] = rows[2 * bins :]
    new_bias[2, 1:bins] = offsets[2 * bins :]
    new_bias[2, 0] = shape.edge_derivative_raw
    new_bias[2, bins] = shape.edge_derivative_raw
    return new_weight.reshape(-1, hidden), new_bias.reshape(-1)


def spline_inverse_feature_major(inputs: Tensor, buffer: Tensor, shape: SplineShape) -> Tensor:
    """`spline^-1(inputs)` `[F, rows]` from the layer outputs `[3, K + 1, F, rows]` of
    `parameter_major_layer`, which it overwrites (the knots are made in place)."""
    bins, bound = shape.bins, shape.tail_bound
    _knots_in_place(buffer[0], shape.min_bin_width, bound)
    _knots_in_place(buffer[1], shape.min_bin_height, bound)
    knots_y = buffer[1]

    clamped = inputs.clamp(-bound, bound)
    # The bin whose height interval holds the value: count the inner knots at or below it
    # (the outer ones are -bound <= value and, as nflows has it, bound + 1e-6 > value).
    below = torch.count_nonzero(clamped.unsqueeze(0) >= knots_y[1:bins], dim=0)
    index = below.view(1, 1, *below.shape).expand(3, 1, *below.shape)
    x_low, y_low, raw_slope_low = buffer.gather(1, index)[:, 0]
    x_high, y_high, raw_slope_high = buffer[:, 1:].gather(1, index)[:, 0]
    width = x_high - x_low
    height = y_high - y_low
    slope_low = functional.softplus(raw_slope_low) + shape.min_derivative
    slope_high = functional.softplus(raw_slope_high) + shape.min_derivative

    delta = height / width
    curvature = slope_low + slope_high - 2 * delta
    offset = clamped - y_low
    a = offset * curvature + height * (delta - slope_low)
    b = height * slope_low - offset * curvature
    c = -delta * offset
    discriminant = b * b - 4 * a * c
    root = (2 * c) / (-b - torch.sqrt(discriminant))
    outputs = root * width + x_low
    inside = (inputs >= -bound) & (inputs <= bound)
    return torch.where(inside, outputs, inputs)


def _knots_in_place(slot: Tensor, min_size: float, bound: float) -> None:
    """Turn rows 1..K of `slot` `[K + 1, ...]` (softmax inputs) into the K + 1 bin edges
    over [-bound, bound], as nflows makes them: sizes `min_size + (1 - K min_size)
    softmax`, edges their cumulative sum, the ends set exactly. With e = exp(input - max)
    and E its cumulative sum, edge k is `2 bound (k min_size + (1 - K min_size) E_k /
    E_K) - bound`: one cumulative sum and one multiply-add, not a pass per softmax step."""
    bins = slot.shape[0] - 1
    sizes = slot[1:]
    sizes.sub_(sizes.amax(dim=0, keepdim=True)).exp_().cumsum_(dim=0)
    share = (2 * bound * (1 - min_size * bins)) / sizes[bins - 1]
    steps = torch.arange(1, bins, dtype=slot.dtype, device=slot.device)
    floor = (2 * bound * min_size * steps - bound).view(-1, *[1] * (slot.dim() - 1))
    inner = sizes[: bins - 1]
    torch.addcmul(floor, inner, share.unsqueeze(0), out=inner)
    slot[0] = -bound
    slot[bins] = bound
