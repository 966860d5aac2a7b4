"""The tiny forecaster architecture the unit tests train and sample in seconds."""

from __future__ import annotations

from typing import Any

from forecaster import ForecasterConfig

TINY_ARCHITECTURE: dict[str, Any] = {
    "d_model": 16,
    "num_heads": 2,
    "feedforward": 32,
    "flow_hidden": 16,
    "context_features": 16,
    "flow_layers": 2,
}
# A couple of short epochs: enough to exercise training, not to learn much.
QUICK_TRAINING: dict[str, Any] = {
    "max_epochs": 2,
    "windows_per_epoch": 256,
    "batch_size": 64,
    "validation_samples": 8,
}


def tiny_config(context_length: int, horizon: int, **changes: Any) -> ForecasterConfig:
    """A tiny model of `context_length` and `horizon` (plus quick training if asked)."""
    return ForecasterConfig(
        context_length=context_length, horizon=horizon, **{**TINY_ARCHITECTURE, **changes}
    )
