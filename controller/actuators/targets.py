"""One `Actuator` over every target kind: each pool goes to the actuator of its target's kind.

Kinds with a `/scale` subresource go to `KubernetesScaleActuator`; a `CapacityBuffer` (no
`/scale`) goes to `CapacityBufferActuator`. The operator registers and forgets pools here
and never needs to know which of the two drives a pool.
"""

from __future__ import annotations

import threading

from controller.actuators.base import ReplicaState, ScaleResult
from controller.actuators.capacity_buffer import CapacityBufferActuator
from controller.actuators.kubernetes import KubernetesScaleActuator, ScaleBinding
from controller.errors import HarmonyError
from controller.operator.permissions import BUFFER_TARGETS


class TargetActuator:
    """`Actuator` routing each registered pool by `ScaleBinding.target.kind`."""

    def __init__(self, scale: KubernetesScaleActuator, buffers: CapacityBufferActuator) -> None:
        self._scale = scale
        self._buffers = buffers
        self._routes: dict[str, KubernetesScaleActuator] = {}
        self._lock = threading.Lock()

    @property
    def patches(self) -> int:
        """Writes that changed a target's size, over both actuators (for metrics and tests)."""
        return self._scale.patches + self._buffers.patches

    def register(self, pool: str, binding: ScaleBinding) -> None:
        chosen = self._buffers if binding.target.kind in BUFFER_TARGETS else self._scale
        other = self._scale if chosen is self._buffers else self._buffers
        other.unregister(pool)  # the target's kind may have changed with the spec
        chosen.register(pool, binding)
        with self._lock:
            self._routes[pool] = chosen

    def unregister(self, pool: str) -> None:
        with self._lock:
            self._routes.pop(pool, None)
        self._scale.unregister(pool)
        self._buffers.unregister(pool)

    def current(self, pool: str) -> ReplicaState:
        return self._route(pool).current(pool)

    def scale(self, pool: str, replicas: int, idempotency_key: str) -> ScaleResult:
        return self._route(pool).scale(pool, replicas, idempotency_key)

    def _route(self, pool: str) -> KubernetesScaleActuator:
        with self._lock:
            chosen = self._routes.get(pool)
        if chosen is None:
            raise HarmonyError(f"pool {pool!r} is not registered with the Kubernetes actuator")
        return chosen
