"""The CapacityBuffer actuator: sizes a SIG Autoscaling `CapacityBuffer` ahead of demand.

A `CapacityBuffer` (`autoscaling.x-k8s.io`, honoured by cluster-autoscaler, Karpenter and
GKE) asks the cluster's own autoscaler for spare capacity: `spec.replicas` chunks, each the
shape of the `PodTemplate` named by `spec.podTemplateRef`. It has no `/scale`; this actuator
patches `spec.replicas` and leaves nodes to that autoscaler, so the two never fight.

A pool's replica is one chunk of the template (its containers' requests). Its replicas:
- the workload: the pods in the buffer's namespace matching the target's `podSelector`
  (neither terminating nor finished), their requests counted in chunks (for each resource the
  template requests, the pods' total over the chunk's; the largest of these). Pods on a
  node are usable and pinned (Harmony cannot remove what the workload itself uses);
  unscheduled pods are in flight;
- the buffer: `spec.replicas` chunks, in flight until the buffer reports
  `ReadyForProvisioning` True (and `Provisioning` not False) and, when a `nodeSelector` is
  registered, no node of the pool is still joining (not yet advertising its GPUs).
  cluster-autoscaler's buffer controller writes both conditions and simulates placeholder
  pods only while both are True; Karpenter documents the same API. A buffer whose
  `ReadyForProvisioning` is False (e.g. its template is missing) is an error naming why.

`scale(pool, r)` sets `spec.replicas` to the spare capacity beyond the workload's own:
`max(0, r - workload)` chunks, never below zero; a count below the workload's leaves the
buffer at zero. A buffer with `scalableRef` instead of `podTemplateRef` raises
`TargetNotScalable`: its chunk is another object's pod, which this actuator does not read.

The API shape follows kubernetes/autoscaler's `cluster-autoscaler/apis/capacitybuffer`
v1alpha1 types (namespaced, `spec.replicas`, `podTemplateRef`/`scalableRef`, condition types
`ReadyForProvisioning`, `Provisioning`, `LimitedByQuotas`).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity

from controller.actuators.base import InFlight, ReplicaState, ScaleResult, TargetNotScalable
from controller.actuators.kube_objects import (
    allocatable_gpus,
    labels_match,
    parse_time,
    response_json,
)
from controller.actuators.kubernetes import MERGE_PATCH, KubernetesScaleActuator, ScaleBinding
from controller.errors import HarmonyError
from controller.operator.permissions import missing_permission
from controller.operator.spec import TargetRef

FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class BufferView:
    """What one `current` read: the workload in chunks and the buffer's own state."""

    running_chunks: float
    pending_chunks: float
    buffer_replicas: int
    buffer_active: bool

    @property
    def workload(self) -> int:
        """Chunks the workload's own pods already request (scheduled or not), rounded down:
        the buffer tops this up to what the decision asks for."""
        return math.floor(self.running_chunks + self.pending_chunks + 1e-9)


def _quantity(text: object) -> Decimal:
    """A resource quantity (`500m`, `80Gi`, `1`) as a number."""
    value: Decimal = parse_quantity(text)  # type: ignore[no-untyped-call]  # untyped client
    return value


def _requests(pod_spec: Mapping[str, Any]) -> dict[str, Decimal]:
    total: dict[str, Decimal] = {}
    for container in pod_spec.get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        for name, quantity in requests.items():
            total[name] = total.get(name, Decimal(0)) + _quantity(quantity)
    return total


def _chunks(requests: Mapping[str, Decimal], chunk: Mapping[str, Decimal]) -> float:
    """How many chunks `requests` amount to: the largest share over the chunk's resources."""
    return max(
        (float(requests.get(name, Decimal(0)) / size) for name, size in chunk.items() if size > 0),
        default=0.0,
    )


def _condition(buffer: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    for entry in (buffer.get("status") or {}).get("conditions") or []:
        if entry.get("type") == kind:
            return dict(entry)
    return {}


class CapacityBufferActuator(KubernetesScaleActuator):
    """`Actuator` over `CapacityBuffer`s; pools are registered by their `namespace/name`.

    Shares the `/scale` actuator's API client handling (retries, 403 and 404 messages,
    idempotency keys) and node reading; only what a replica is differs.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._views: dict[str, tuple[float, BufferView]] = {}
        self._views_lock = threading.Lock()

    def current(self, pool: str) -> ReplicaState:
        binding = self._binding(pool)
        now = self._clock.now()
        view = self._view(binding)
        with self._views_lock:
            self._views[pool] = (time.monotonic(), view)
        running = math.floor(view.running_chunks + 1e-9)
        joining = self._joining_nodes_ready_at(binding, now)
        buffer_usable = view.buffer_replicas if view.buffer_active and not joining else 0
        usable = running + buffer_usable
        desired = view.workload + view.buffer_replicas
        pending = desired - usable
        ready_at = max(joining, default=now + binding.provisioning_delay)
        in_flight = (InFlight(pending, ready_at),) if pending > 0 else ()
        return ReplicaState(
            usable=usable, in_flight=in_flight, observed_at=now, pinned=min(running, usable)
        )

    def scale(self, pool: str, replicas: int, idempotency_key: str) -> ScaleResult:
        if replicas < 0:
            raise HarmonyError(f"pool {pool!r}: cannot scale to {replicas} replicas")
        with self._lock:
            seen = self._results.get(idempotency_key)
        if seen is not None:
            return ScaleResult(
                pool=pool,
                idempotency_key=idempotency_key,
                from_replicas=seen.from_replicas,
                to_replicas=seen.to_replicas,
                applied=False,
                duplicate=True,
                message=f"action {idempotency_key!r} was already taken; nothing done",
            )
        binding = self._binding(pool)
        with self._views_lock:
            seen_at, view = self._views.pop(pool, (-1e18, None))
        if view is None or time.monotonic() - seen_at > self._fresh_seconds:
            view = self._view(binding)
        spare = max(0, replicas - view.workload)
        before = view.buffer_replicas
        if spare != before:
            self._call(binding, "patch-buffer", lambda: self._patch_buffer(binding.target, spare))
            self.patches += 1
        target = binding.target.describe()
        result = ScaleResult(
            pool=pool,
            idempotency_key=idempotency_key,
            from_replicas=view.workload + before,
            to_replicas=view.workload + spare,
            applied=spare != before,
            message=(
                f"set {target} to {spare} spare chunks (was {before}; the workload requests "
                f"{view.workload}) for {replicas} wanted"
            ),
            extra={"buffer_replicas": str(spare), "workload_chunks": str(view.workload)},
        )
        with self._lock:
            self._results[idempotency_key] = result
            if len(self._results) > 100_000:  # keys of old cycles are never asked again
                self._results.clear()
        return result

    # --- internals -------------------------------------------------------------------

    def _view(self, binding: ScaleBinding) -> BufferView:
        target = binding.target
        buffer = response_json(self._call(binding, "get-buffer", lambda: self._get_buffer(target)))
        spec = buffer.get("spec") or {}
        if spec.get("scalableRef") or not (spec.get("podTemplateRef") or {}).get("name"):
            raise TargetNotScalable(
                f"{target.describe()} has no spec.podTemplateRef: Harmony sizes a buffer in "
                "chunks of its PodTemplate; give the buffer a podTemplateRef (not scalableRef)"
            )
        ready = _condition(buffer, "ReadyForProvisioning")
        if ready.get("status") == "False":
            raise HarmonyError(
                f"{target.describe()} is not ready for provisioning "
                f"({ready.get('reason') or 'no reason'}: {ready.get('message') or 'no message'})"
            )
        chunk = self._chunk(binding, str(spec["podTemplateRef"]["name"]))
        running, pending = self._workload_chunks(binding, chunk)
        active = (
            ready.get("status") == "True"
            and _condition(buffer, "Provisioning").get("status") != "False"
        )
        return BufferView(
            running_chunks=running,
            pending_chunks=pending,
            buffer_replicas=int(spec.get("replicas") or 0),
            buffer_active=active,
        )

    def _chunk(self, binding: ScaleBinding, template_name: str) -> dict[str, Decimal]:
        target = binding.target
        template = response_json(
            self._call(
                binding,
                "get-podtemplate",
                lambda: self._core.read_namespaced_pod_template(
                    template_name,
                    target.namespace,
                    _request_timeout=self._timeout,
                    _preload_content=False,
                ),
            )
        )
        chunk = _requests(((template.get("template") or {}).get("spec")) or {})
        if not any(size > 0 for size in chunk.values()):
            raise TargetNotScalable(
                f"PodTemplate {target.namespace}/{template_name} of {target.describe()} requests "
                "no resources: one chunk must request what one replica of capacity is (e.g. "
                "nvidia.com/gpu: 1)"
            )
        return chunk

    def _workload_chunks(
        self, binding: ScaleBinding, chunk: Mapping[str, Decimal]
    ) -> tuple[float, float]:
        target = binding.target
        selector = ",".join(f"{key}={value}" for key, value in sorted(target.pod_selector.items()))
        listing = self._call(
            binding,
            "list-workload-pods",
            lambda: self._core.list_namespaced_pod(
                target.namespace,
                label_selector=selector,
                _request_timeout=self._timeout,
                _preload_content=False,
            ),
        )
        running: dict[str, Decimal] = {}
        pending: dict[str, Decimal] = {}
        for pod in response_json(listing).get("items", []):
            metadata = pod.get("metadata") or {}
            if not labels_match(pod, target.pod_selector) or metadata.get("deletionTimestamp"):
                continue
            if (pod.get("status") or {}).get("phase") in FINISHED_PHASES:
                continue
            spec = pod.get("spec") or {}
            into = running if spec.get("nodeName") else pending
            for name, quantity in _requests(spec).items():
                into[name] = into.get(name, Decimal(0)) + quantity
        return _chunks(running, chunk), _chunks(pending, chunk)

    def _joining_nodes_ready_at(self, binding: ScaleBinding, now: dt.datetime) -> list[dt.datetime]:
        """When each node of the pool still provisioning (no GPUs advertised yet) is expected
        to be usable; empty without a `nodeSelector`."""
        if not binding.node_selector:
            return []
        return [
            max(
                now,
                (parse_time((node.get("metadata") or {}).get("creationTimestamp")) or now)
                + binding.provisioning_delay,
            )
            for node in self._pool_nodes(binding)
            if allocatable_gpus(node) < binding.gpus_per_replica
        ]

    def _get_buffer(self, target: TargetRef) -> Any:
        return self._custom.get_namespaced_custom_object(
            target.group,
            target.version,
            target.namespace,
            target.resource,
            target.name,
            _request_timeout=self._timeout,
            _preload_content=False,
        )

    def _patch_buffer(self, target: TargetRef, replicas: int) -> None:
        self._custom.patch_namespaced_custom_object(
            target.group,
            target.version,
            target.namespace,
            target.resource,
            target.name,
            {"spec": {"replicas": replicas}},
            _request_timeout=self._timeout,
            _content_type=MERGE_PATCH,
            _preload_content=False,
        )

    def _permission(self, target: TargetRef, verb: str) -> str:
        if verb in ("get-buffer", "patch-buffer"):
            action = verb.split("-")[0]
            return missing_permission(action, target.group, target.resource, target.namespace)
        if verb == "get-podtemplate":
            return missing_permission("get", "", "podtemplates", target.namespace)
        if verb == "list-workload-pods":
            return missing_permission("list", "", "pods", None)
        return super()._permission(target, verb)

    def _not_found(self, target: TargetRef, verb: str) -> str:
        if verb == "get-podtemplate":
            return (
                f"the PodTemplate that {target.describe()} refers to (spec.podTemplateRef) was "
                "not found in its namespace; create it or fix the buffer"
            )
        return (
            f"{target.describe()} ({target.api_version}) was not found; create it (the "
            "CapacityBuffer CRD must be installed: cluster-autoscaler or Karpenter with buffer "
            "support) or fix spec.target"
        )
