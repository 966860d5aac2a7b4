"""The Kubernetes actuator: reads and patches a target's `/scale` subresource.

Implements `controller.actuators.base.Actuator` with the official `kubernetes` client,
for any kind in `controller.operator.permissions.SCALE_TARGETS`. A pool's replicas:
- desired: the target's `/scale` `spec.replicas`;
- usable, for node pools (a `nodeSelector` is registered): nodes matching it that
  advertise at least `gpus_per_replica` allocatable `nvidia.com/gpu`; a node that exists
  but does not advertise its GPUs yet is in flight until `creationTimestamp + delay`;
- usable, for workloads: the `/scale` `status.replicas`, capped at desired;
- pinned, for node pools: usable nodes running a pod that must not be disrupted
  (`karpenter.sh/do-not-disrupt: "true"` or cluster-autoscaler's `safe-to-evict: "false"`);
  the policies never scale below them. A Cluster API MachineDeployment's scale-down first
  marks which Machines go (`controller.actuators.disruption`): never a pinned one, those not
  yet capacity first. For other node pools the provider picks; the floor leaves it enough
  unpinned nodes to remove.

A 409 conflict, 429 or 5xx is retried with exponential backoff; a 403 raises a
`HarmonyError` naming the missing permission; a 404 names the missing target. A dynamic
Karpenter NodePool (no `spec.replicas`) raises `TargetNotScalable` naming the alternatives.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from controller.actuators.base import InFlight, ReplicaState, ScaleResult, TargetNotScalable
from controller.actuators.disruption import (
    DELETE_MACHINE_ANNOTATION,
    DEPLOYMENT_NAME_LABEL,
    MachineView,
    blocks_disruption,
    choose_machines_to_delete,
)
from controller.actuators.kube_objects import (
    allocatable_gpus,
    error_reason,
    labels_match,
    object_name,
    parse_time,
    response_json,
)
from controller.clock import Clock
from controller.errors import HarmonyError
from controller.operator.permissions import missing_permission
from controller.operator.spec import TargetRef

log = logging.getLogger(__name__)

# Kinds in SCALE_TARGETS that are cluster-scoped (no namespace in their path).
CLUSTER_SCOPED_KINDS = frozenset({"NodePool"})
RETRIED_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
MERGE_PATCH = "application/merge-patch+json"
# Kinds whose Machines a scale-down chooses, and the label naming a Machine's owner.
MACHINE_OWNERS = {"MachineDeployment": DEPLOYMENT_NAME_LABEL}
T = TypeVar("T")


class PermissionDenied(HarmonyError):
    """The API server refused a call; `permission` names what the ClusterRole lacks."""

    def __init__(self, permission: str, detail: str) -> None:
        super().__init__(f"forbidden: the operator needs {permission} ({detail})")
        self.permission = permission


class TargetNotFound(HarmonyError):
    """The target of a pool does not exist (yet)."""


@dataclass(frozen=True)
class ScaleBinding:
    """How one pool maps onto the cluster: its target and how its capacity is counted."""

    target: TargetRef
    provisioning_delay: dt.timedelta
    node_selector: Mapping[str, str] = field(default_factory=dict)
    gpus_per_replica: int = 1


class KubernetesScaleActuator:
    """`Actuator` over the Kubernetes API; pools are registered by their `namespace/name`."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        clock: Clock,
        *,
        retries: int = 4,
        backoff_seconds: float = 0.2,
        max_backoff_seconds: float = 5.0,
        request_timeout_seconds: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._custom = k8s.CustomObjectsApi(api_client)
        self._core = k8s.CoreV1Api(api_client)
        self._clock = clock
        self._retries = retries
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._timeout = request_timeout_seconds
        self._sleep = sleep
        self._bindings: dict[str, ScaleBinding] = {}
        self._results: dict[str, ScaleResult] = {}
        # Desired count each pool's `current` last read: `scale` in the same cycle reuses it.
        self._desired_seen: dict[str, tuple[float, int]] = {}
        self._fresh_seconds = 5.0
        # Nodes running do-not-disrupt pods: one cluster-wide pod listing serves every node
        # pool of a cycle's batch.
        self._pinned_nodes: tuple[float, frozenset[str]] = (-1e18, frozenset())
        self._pods_lock = threading.Lock()
        self._lock = threading.Lock()
        self.patches = 0  # scale patches sent (for metrics and tests)

    def register(self, pool: str, binding: ScaleBinding) -> None:
        with self._lock:
            self._bindings[pool] = binding

    def unregister(self, pool: str) -> None:
        with self._lock:
            self._bindings.pop(pool, None)

    def _binding(self, pool: str) -> ScaleBinding:
        with self._lock:
            binding = self._bindings.get(pool)
        if binding is None:
            raise HarmonyError(f"pool {pool!r} is not registered with the Kubernetes actuator")
        return binding

    # --- Actuator protocol -----------------------------------------------------------

    def current(self, pool: str) -> ReplicaState:
        binding = self._binding(pool)
        now = self._clock.now()
        if binding.target.kind == "NodePool":
            self._require_static_capacity(binding)
        scale = self._call(binding, "get", lambda: self._get_scale(binding.target))
        desired = int((scale.get("spec") or {}).get("replicas") or 0)
        with self._lock:
            self._desired_seen[pool] = (time.monotonic(), desired)
        if binding.node_selector:
            return self._node_pool_state(binding, desired, now)
        reported = int((scale.get("status") or {}).get("replicas") or 0)
        usable = min(desired, reported)
        pending = desired - usable
        in_flight = (InFlight(pending, now + binding.provisioning_delay),) if pending else ()
        return ReplicaState(usable=usable, in_flight=in_flight, observed_at=now)

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
        with self._lock:
            seen_at, seen_desired = self._desired_seen.get(pool, (-1e18, 0))
        if time.monotonic() - seen_at <= self._fresh_seconds:
            before = seen_desired  # read by `current` moments ago in this cycle
        else:
            before_scale = self._call(binding, "get", lambda: self._get_scale(binding.target))
            before = int((before_scale.get("spec") or {}).get("replicas") or 0)
        if replicas < before and binding.node_selector and binding.target.kind in MACHINE_OWNERS:
            self._mark_machines_to_delete(binding, before - replicas)
        if before != replicas:
            self._call(binding, "patch", lambda: self._patch_scale(binding.target, replicas))
            self.patches += 1
        target = binding.target.describe()
        result = ScaleResult(
            pool=pool,
            idempotency_key=idempotency_key,
            from_replicas=before,
            to_replicas=replicas,
            applied=before != replicas,
            message=(
                f"scaled {target} {before} → {replicas}"
                if before != replicas
                else f"kept {target} at {before}"
            ),
        )
        with self._lock:
            self._results[idempotency_key] = result
            self._desired_seen.pop(pool, None)
            if len(self._results) > 100_000:  # keys of old cycles are never asked again
                self._results.clear()
        return result

    # --- internals -------------------------------------------------------------------

    def _node_pool_state(
        self, binding: ScaleBinding, desired: int, now: dt.datetime
    ) -> ReplicaState:
        nodes = self._pool_nodes(binding)
        advertising = [node for node in nodes if allocatable_gpus(node) >= binding.gpus_per_replica]
        usable = min(desired, len(advertising))
        joining = sorted(
            max(
                now,
                (parse_time((node.get("metadata") or {}).get("creationTimestamp")) or now)
                + binding.provisioning_delay,
            )
            for node in nodes
            if allocatable_gpus(node) < binding.gpus_per_replica
        )
        pending = desired - usable
        in_flight: list[InFlight] = [InFlight(1, ready_at) for ready_at in joining[:pending]]
        not_started = pending - len(in_flight)
        if not_started > 0:
            in_flight.append(InFlight(not_started, now + binding.provisioning_delay))
        pinned_nodes = self._nodes_running_do_not_disrupt_pods(binding)
        pinned = sum(1 for node in advertising if object_name(node) in pinned_nodes)
        return ReplicaState(
            usable=usable, in_flight=tuple(in_flight), observed_at=now, pinned=min(pinned, usable)
        )

    def _pool_nodes(self, binding: ScaleBinding) -> list[dict[str, Any]]:
        selector = ",".join(
            f"{key}={value}" for key, value in sorted(binding.node_selector.items())
        )
        listing = self._call(
            binding,
            "list-nodes",
            lambda: self._core.list_node(
                label_selector=selector, _request_timeout=self._timeout, _preload_content=False
            ),
        )
        return [
            node
            for node in response_json(listing).get("items", [])
            if labels_match(node, binding.node_selector)
        ]

    def _mark_machines_to_delete(self, binding: ScaleBinding, count: int) -> None:
        """Annotate the Machines this scale-down should remove (see `disruption`)."""
        target = binding.target
        version = target.api_version.rsplit("/", 1)[-1]
        listing = self._call(
            binding,
            "list-machines",
            lambda: self._custom.list_namespaced_custom_object(
                target.group,
                version,
                target.namespace,
                "machines",
                label_selector=f"{MACHINE_OWNERS[target.kind]}={target.name}",
                _request_timeout=self._timeout,
                _preload_content=False,
            ),
        )
        machines = [MachineView.of(item) for item in response_json(listing).get("items", [])]
        usable = {
            object_name(node)
            for node in self._pool_nodes(binding)
            if allocatable_gpus(node) >= binding.gpus_per_replica
        }
        marks = choose_machines_to_delete(
            machines, usable, self._nodes_running_do_not_disrupt_pods(binding), count
        )
        changes = [(name, "yes") for name in marks.mark] + [(name, None) for name in marks.unmark]
        for name, value in changes:
            body = {"metadata": {"annotations": {DELETE_MACHINE_ANNOTATION: value}}}
            self._call(
                binding,
                "patch-machines",
                lambda name=name, body=body: self._custom.patch_namespaced_custom_object(
                    target.group,
                    version,
                    target.namespace,
                    "machines",
                    name,
                    body,
                    _request_timeout=self._timeout,
                    _content_type=MERGE_PATCH,
                    _preload_content=False,
                ),
            )
        if marks.mark:
            log.info("%s: marked %s for deletion", target.describe(), ", ".join(marks.mark))

    def _nodes_running_do_not_disrupt_pods(self, binding: ScaleBinding) -> frozenset[str]:
        with self._pods_lock:
            listed_at, nodes = self._pinned_nodes
            if time.monotonic() - listed_at <= self._fresh_seconds:
                return nodes
            listing = self._call(
                binding,
                "list-pods",
                lambda: self._core.list_pod_for_all_namespaces(
                    _request_timeout=self._timeout, _preload_content=False
                ),
            )
            nodes = frozenset(
                str(pod["spec"]["nodeName"])
                for pod in response_json(listing).get("items", [])
                if blocks_disruption(pod)
            )
            self._pinned_nodes = (time.monotonic(), nodes)
            return nodes

    def _get_scale(self, target: TargetRef) -> dict[str, Any]:
        if target.kind in CLUSTER_SCOPED_KINDS:
            response = self._custom.get_cluster_custom_object_scale(
                target.group,
                target.version,
                target.resource,
                target.name,
                _request_timeout=self._timeout,
                _preload_content=False,
            )
        else:
            response = self._custom.get_namespaced_custom_object_scale(
                target.group,
                target.version,
                target.namespace,
                target.resource,
                target.name,
                _request_timeout=self._timeout,
                _preload_content=False,
            )
        return response_json(response)

    def _patch_scale(self, target: TargetRef, replicas: int) -> None:
        body = {"spec": {"replicas": replicas}}
        if target.kind in CLUSTER_SCOPED_KINDS:
            self._custom.patch_cluster_custom_object_scale(
                target.group,
                target.version,
                target.resource,
                target.name,
                body,
                _request_timeout=self._timeout,
                _content_type=MERGE_PATCH,
                _preload_content=False,
            )
        else:
            self._custom.patch_namespaced_custom_object_scale(
                target.group,
                target.version,
                target.namespace,
                target.resource,
                target.name,
                body,
                _request_timeout=self._timeout,
                _content_type=MERGE_PATCH,
                _preload_content=False,
            )

    def _call(self, binding: ScaleBinding, verb: str, request: Callable[[], T]) -> T:
        target = binding.target
        delay = self._backoff
        for attempt in range(self._retries + 1):
            try:
                return request()
            except ApiException as error:
                status = int(error.status or 0)
                if status == 403:
                    permission = self._permission(target, verb)
                    raise PermissionDenied(permission, error_reason(error)) from None
                if status == 404:
                    raise TargetNotFound(self._not_found(target, verb)) from None
                if status not in RETRIED_STATUSES or attempt == self._retries:
                    request_name = f"{verb} /scale" if verb in ("get", "patch") else verb
                    raise HarmonyError(
                        f"{request_name} of {target.describe()} failed with HTTP {status} "
                        f"after {attempt + 1} attempts: {error_reason(error)}"
                    ) from None
            except TransportError as error:
                if attempt == self._retries:
                    raise HarmonyError(
                        f"the Kubernetes API could not be reached for {target.describe()} "
                        f"after {attempt + 1} attempts: {error}"
                    ) from None
            log.debug("retrying %s of %s in %.2fs", verb, target.describe(), delay)
            self._sleep(delay)
            delay = min(delay * 2, self._max_backoff)
        raise AssertionError("unreachable")

    def _permission(self, target: TargetRef, verb: str) -> str:
        """The permission a 403 on `verb` (see `_call`) says the operator lacks."""
        if verb in ("list-nodes", "list-pods"):
            return missing_permission("list", "", verb.removeprefix("list-"), None)
        if verb in ("list-machines", "patch-machines"):
            action = verb.split("-")[0]
            return missing_permission(action, target.group, "machines", target.namespace)
        namespace = None if target.kind in CLUSTER_SCOPED_KINDS else target.namespace
        if verb == "get-object":
            return missing_permission("get", target.group, target.resource, namespace)
        return missing_permission(verb, target.group, f"{target.resource}/scale", namespace)

    def _not_found(self, target: TargetRef, verb: str) -> str:
        return (
            f"{target.describe()} ({target.api_version}) was not found or has no /scale "
            "subresource; create it or fix spec.target"
        )

    def _require_static_capacity(self, binding: ScaleBinding) -> None:
        """A Karpenter NodePool without `spec.replicas` is dynamic: no object holds its node
        count, and patching its `/scale` would try to turn it static (which Karpenter
        refuses, or does for good). Say so, and what to use instead."""
        target = binding.target
        pool = self._call(
            binding,
            "get-object",
            lambda: self._custom.get_cluster_custom_object(
                target.group,
                target.version,
                target.resource,
                target.name,
                _request_timeout=self._timeout,
                _preload_content=False,
            ),
        )
        if (response_json(pool).get("spec") or {}).get("replicas") is None:
            raise TargetNotScalable(
                f"NodePool {target.name} is dynamic (no spec.replicas): Karpenter sizes it from "
                "pending pods and no object holds its node count. Target a CapacityBuffer "
                "(autoscaling.x-k8s.io) that Karpenter honours instead, or use a static-capacity "
                "NodePool (spec.replicas; StaticCapacity feature gate, Karpenter >= 1.8)"
            )
