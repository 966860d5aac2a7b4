"""Probabilistic multi-indicator forecaster: hierarchical attention encoder + normalizing flow.

Arrays in, arrays out: this package never imports the controller.

The public names are imported on first use (PEP 562), not here: the operator imports
`forecaster.fill` on every start, and importing the package must not drag in torch and
pytorch_lightning (over a minute of CPU on a loaded node) for an operator that has no
model yet.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forecaster.base import IncompatibleModelError, ProbabilisticForecaster
    from forecaster.config import ForecasterConfig
    from forecaster.model import Forecaster
    from forecaster.training import train_forecaster

_WHERE = {
    "Forecaster": "forecaster.model",
    "ForecasterConfig": "forecaster.config",
    "IncompatibleModelError": "forecaster.base",
    "ProbabilisticForecaster": "forecaster.base",
    "train_forecaster": "forecaster.training",
}

__all__ = [
    "Forecaster",
    "ForecasterConfig",
    "IncompatibleModelError",
    "ProbabilisticForecaster",
    "train_forecaster",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'forecaster' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
