"""Hierarchical attention encoder: one token per indicator window plus calendar tokens.

Every token carries a hierarchy level (1 = load or demand, 2 = compute and memory, 3 = I/O
and network; calendar tokens sit at `calendar_level`). Attention cascades level by level:
at the stage of level k only the tokens of level k are updated, and they attend to tokens
of levels <= k, i.e. their own level and the outputs of the levels above. The restriction
is a real -inf attention mask. With `demand_reads_all` a last stage updates the tokens of
the first level again, now attending to every token, so the finer levels' outputs (a queue
or a GPU memory that leads the demand) reach the demand; without it nothing flows upwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from forecaster.config import ForecasterConfig
from forecaster.windows import CALENDAR_FEATURES

STAT_FEATURES = 3


@dataclass
class NormalisedContext:
    """A context window after RevIN-style per-window normalisation (per indicator)."""

    values: Tensor  # [B, L, N] normalised, gaps filled from the last observed value
    missing: Tensor  # [B, L, N] 1.0 where the input was a gap
    mean: Tensor  # [B, N] mean of the observed values
    std: Tensor  # [B, N] sqrt(variance + floor)
    last: Tensor  # [B, N] last observed value (the window mean if none)


def normalise_context(context: Tensor, variance_floor: float) -> NormalisedContext:
    """Per-window, per-indicator normalisation that never reads a gap as a value.

    Gaps (NaN) are filled with the last observed value before them (the first observed
    value for leading gaps) and flagged in `missing`; the statistics use observed values
    only. An indicator with no observed value in the window becomes all-zero with
    `missing` all ones.
    """
    observed = torch.isfinite(context)
    length = context.shape[1]
    positions = torch.arange(length, device=context.device).view(1, length, 1)
    last_seen = torch.where(observed, positions, torch.full_like(positions, -1))
    last_seen = torch.cummax(last_seen, dim=1).values
    first_seen = torch.argmax(observed.to(torch.int8), dim=1, keepdim=True)
    source = torch.where(last_seen >= 0, last_seen, first_seen.expand_as(last_seen))
    filled = torch.gather(torch.nan_to_num(context, nan=0.0), 1, source)
    weights = observed.to(context.dtype)
    count = weights.sum(dim=1)
    safe_count = count.clamp(min=1.0)
    mean = (filled * weights).sum(dim=1) / safe_count
    variance = (((filled - mean.unsqueeze(1)) ** 2) * weights).sum(dim=1) / safe_count
    std = torch.sqrt(variance + variance_floor)
    normalised = (filled - mean.unsqueeze(1)) / std.unsqueeze(1)
    normalised = torch.where(count.unsqueeze(1) > 0, normalised, torch.zeros_like(normalised))
    last = torch.where(count > 0, filled[:, -1], mean)
    return NormalisedContext(
        values=normalised, missing=1.0 - weights, mean=mean, std=std, last=last
    )


def stage_masks(
    token_levels: list[int], demand_reads_all: bool = False
) -> tuple[list[int], Tensor]:
    """The stage order (the level each stage updates) and, per stage, an additive mask
    `[T, T]` (0 allowed, -inf not).

    Row i is a query, column j a key. At the stage of level k a level-k token may attend
    to tokens of level <= k; any other token attends only to itself (its output is
    discarded, so it stays unchanged through the stage). With `demand_reads_all` a last
    stage updates the first level's tokens, which then attend to every token.
    """
    cascade = sorted(set(token_levels))
    stages = cascade + ([cascade[0]] if demand_reads_all and len(cascade) > 1 else [])
    levels = torch.tensor(token_levels)
    count = len(token_levels)
    masks = torch.full((len(stages), count, count), float("-inf"))
    for index, level in enumerate(stages):
        active = levels == level
        readable = levels <= level if index < len(cascade) else torch.ones_like(active)
        allowed = active.unsqueeze(1) & readable.unsqueeze(0)
        allowed |= (~active).unsqueeze(1) & torch.eye(count, dtype=torch.bool)
        masks[index][allowed] = 0.0
    return stages, masks


class HierarchicalEncoder(nn.Module):
    """Maps a context window (and calendar) to one embedding per token `[B, T, d_model]`."""

    def __init__(self, config: ForecasterConfig, levels: list[int]) -> None:
        super().__init__()
        self.num_indicators = len(levels)
        self.num_calendar = CALENDAR_FEATURES if config.calendar else 0
        token_levels = list(levels) + [config.calendar_level] * self.num_calendar
        self.token_levels = token_levels
        stages, masks = stage_masks(token_levels, config.demand_reads_all)
        self.stages = stages
        self.register_buffer("masks", masks, persistent=False)
        self.register_buffer(
            "stage_active",
            torch.stack([torch.tensor(token_levels) == level for level in stages]),
            persistent=False,
        )
        d_model = config.d_model
        length = config.context_length
        self.variance_floor = config.revin_variance_floor
        self.value_embedding = nn.Linear(length, d_model)
        self.missing_embedding = nn.Linear(length, d_model, bias=False)
        self.stat_embedding = nn.Linear(STAT_FEATURES, d_model, bias=False)
        self.token_identity = nn.Parameter(torch.zeros(len(token_levels), d_model))
        level_slots = max(token_levels) + 1
        self.level_embedding = nn.Embedding(level_slots, d_model)
        self.register_buffer("level_index", torch.tensor(token_levels), persistent=False)
        if self.num_calendar:
            self.calendar_embedding = nn.Linear(length + config.horizon, d_model)
        self.layers = nn.ModuleList(
            [
                nn.ModuleList(
                    [
                        nn.TransformerEncoderLayer(
                            d_model,
                            config.num_heads,
                            config.feedforward,
                            config.dropout,
                            activation="gelu",
                            batch_first=True,
                            norm_first=True,
                        )
                        for _ in range(config.layers_per_level)
                    ]
                )
                for _ in stages
            ]
        )
        self.norm = nn.LayerNorm(d_model)

    @property
    def num_tokens(self) -> int:
        return len(self.token_levels)

    def embed(self, window: NormalisedContext, calendar: Tensor) -> Tensor:
        values = window.values.transpose(1, 2)  # [B, N, L]
        missing = window.missing.transpose(1, 2)
        stats = torch.stack(
            [window.mean, torch.log(window.std), missing.mean(dim=2)], dim=-1
        )  # [B, N, 3]
        tokens = (
            self.value_embedding(values)
            + self.missing_embedding(missing)
            + self.stat_embedding(stats)
        )
        if self.num_calendar:
            calendar_tokens = self.calendar_embedding(calendar.transpose(1, 2))  # [B, 4, d]
            tokens = torch.cat([tokens, calendar_tokens], dim=1)
        level_codes = self.level_embedding(self.get_buffer("level_index"))
        result: Tensor = tokens + self.token_identity + level_codes
        return result

    def forward(self, window: NormalisedContext, calendar: Tensor) -> Tensor:
        tokens = self.embed(window, calendar)
        masks = self.get_buffer("masks")
        active = self.get_buffer("stage_active")
        for stage, layers in enumerate(self.layers):
            updated = tokens
            for layer in layers:  # type: ignore[attr-defined]
                updated = layer(updated, src_mask=masks[stage])
            keep = active[stage].view(1, -1, 1)
            tokens = torch.where(keep, updated, tokens)
        result: Tensor = self.norm(tokens)
        return result
