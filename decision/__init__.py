"""The Bayesian decision engine and the baseline policies: arrays in, replica counts out.

Pure numpy/scipy, no I/O; the controller and the backtest run the very same code.
"""

from decision.calibration import CalibrationPosterior
from decision.errors import InvalidDecisionInput
from decision.policies import KNOBS, POLICY_NAMES, Policy, default_sweep, make_policy
from decision.types import BindingConstraint, Decision, InFlight, PoolObservation, PoolSpec

__all__ = [
    "KNOBS",
    "POLICY_NAMES",
    "BindingConstraint",
    "CalibrationPosterior",
    "Decision",
    "InFlight",
    "InvalidDecisionInput",
    "Policy",
    "PoolObservation",
    "PoolSpec",
    "default_sweep",
    "make_policy",
]
