"""Actuators: the one interface through which the control loop changes a pool's size."""

from controller.actuators.base import Actuator, InFlight, ReplicaState, ScaleResult
from controller.actuators.simulated import PoolAccount, SimulatedActuator, SimulatedPool

__all__ = [
    "Actuator",
    "InFlight",
    "PoolAccount",
    "ReplicaState",
    "ScaleResult",
    "SimulatedActuator",
    "SimulatedPool",
]
