"""A KEDA-style queue scaler: the HPA fed the queue's length.

KEDA's queue scalers (RabbitMQ, SQS, Redis lists, Kafka lag) expose the pending work as an
external metric with an AverageValue target, and the HorizontalPodAutoscaler does the
rest: desired = ceil(pending work / target per replica), within its tolerance and with
its default behavior (300 s scale-down stabilisation). Here the pending work at t is the
backlog after step t-1 plus the work that arrived in it (messages ready and in flight),
and the target is in steps of one replica's capacity, the knob: at 1, a replica is wanted
for each step's worth of pending work. The knob is searched like every baseline's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from decision.hpa import HpaPolicy
from decision.types import Decision, FloatArray, PoolObservation, PoolSpec


class KedaQueuePolicy:
    """ceil(pending work / (knob × capacity per replica)) through the HPA's algorithm."""

    name = "keda-queue"
    knob_name = "target_work_per_replica"

    def __init__(self, spec: PoolSpec, knob: float) -> None:
        self.spec = spec
        self.knob = knob
        self._hpa = HpaPolicy(spec, knob, name=self.name)

    def decide(self, observation: PoolObservation, demand_samples: FloatArray | None) -> Decision:
        recent = np.array(observation.recent_demand, dtype=np.float64)
        if recent.shape[0]:
            recent[-1, 0] += observation.backlog
        pending = dataclasses.replace(observation, recent_demand=recent)
        return self._hpa.decide(pending, demand_samples)

    def observe(self, realised_demand: FloatArray | float) -> None:
        self._hpa.observe(realised_demand)

    def state(self) -> dict[str, Any]:
        return self._hpa.state()

    def load_state(self, state: dict[str, Any]) -> None:
        self._hpa.load_state(state)
