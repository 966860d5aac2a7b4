"""Probabilistic multi-indicator forecaster: hierarchical attention encoder + normalizing flow.

Arrays in, arrays out: this package never imports the controller.
"""

from forecaster.base import IncompatibleModelError, ProbabilisticForecaster
from forecaster.config import ForecasterConfig
from forecaster.model import Forecaster
from forecaster.training import train_forecaster

__all__ = [
    "Forecaster",
    "ForecasterConfig",
    "IncompatibleModelError",
    "ProbabilisticForecaster",
    "train_forecaster",
]
