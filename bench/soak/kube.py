"""kmock's Kubernetes emulator as the soak's API server: faults, fencing and a request log.

What the emulator lacks and the soak needs, added in `_handle` before kmock sees a
request (kmock applies a write even when a reaction answers it with an error, so a 409
there would still change the object; a real API server changes nothing):
- the fault of the moment, answered as a Kubernetes `Status` without touching any object;
- a new `resourceVersion` on every write, and a `uid` on create (as in the e2e tests);
- the `resourceVersion` precondition of Lease writes (a real server's optimistic
  concurrency, which leader election relies on): a stale one is answered 409;
- Events acknowledged and logged, not stored (thousands of them would slow every write);
- a Deployment reports every desired replica at once (`status.replicas`);
- the log: who (the bearer token names the operator process) did what, when it took
  effect, and how it was answered. kmock's own request history is trimmed to the requests
  in flight: its reactions scan that history on every request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import time
import uuid
from dataclasses import dataclass
from typing import Any

import kmock
from aiohttp import web

from bench.soak.schedule import FaultKind

NAMESPACE = "fleet"
CRD = "autoscaling.harmony.dev/v1alpha1/poolautoscalers"
DEPLOYMENTS = "apps/v1/deployments"
LEASES = "coordination.k8s.io/v1/leases"
# Longer than the actuator's request timeout (10 s), so the client gives up first.
HANG_SECONDS = 11.0
ERRORS = {
    FaultKind.api_conflict: (409, "Conflict", "the object has been modified (injected)"),
    FaultKind.api_throttled: (429, "TooManyRequests", "too many requests (injected)"),
    FaultKind.api_error: (500, "InternalError", "etcdserver: leader changed (injected)"),
    FaultKind.api_forbidden: (403, "Forbidden", "cannot patch deployments/scale (injected)"),
}


@dataclass
class ApiRecord:
    at: float  # wall time it took effect (or was answered)
    identity: str  # the caller's bearer token: one per operator process
    method: str
    resource: str
    name: str
    subresource: str
    status: int
    fault: str = ""
    data: Any = None
    before: int | None = None  # a Deployment's spec.replicas around a /scale write
    after: int | None = None


@dataclass
class ActiveFault:
    kind: FaultKind | None = None
    target: str | None = None  # the Deployment a targeted fault hits


class SoakEmulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.fault = ActiveFault()
        self.log: list[ApiRecord] = []
        self._in_flight: set[int] = set()
        self._versions = itertools.count(100)

    async def _handle(self, request: Any) -> Any:
        self._in_flight.add(id(request))
        self._requests[:] = [r for r in self._requests if id(r) in self._in_flight]
        try:
            return await self._serve(request)
        finally:
            self._in_flight.discard(id(request))

    async def _serve(self, request: Any) -> Any:
        identity = str(request.headers.get("Authorization", "")).removeprefix("Bearer ")
        resource = "" if request.resource is None else str(request.resource.plural)
        record = ApiRecord(
            at=time.time(),
            identity=identity,
            method=str(request.method.value).upper(),
            resource=resource,
            name=request.name or "",
            subresource=request.subresource or "",
            status=0,
        )
        injected = self._injected(request, resource)
        if injected is not None:
            status, reason, message = ERRORS[injected]
            record.status, record.fault = status, injected.value
            self.log.append(record)
            return _status_response(status, reason, message)
        if self._hangs(request, resource):
            record.fault = FaultKind.api_timeout.value
            await asyncio.sleep(HANG_SECONDS)
        if resource == "events" and request.action == kmock.action.CREATE:
            record.status, record.data, record.at = 201, request.data, time.time()
            self.log.append(record)
            return web.json_response(request.data, status=201)
        stale_lease = resource == "leases" and request.action == kmock.action.UPDATE
        if stale_lease and not self._lease_version_matches(request):
            record.status, record.at = 409, time.time()
            self.log.append(record)
            return _status_response(409, "Conflict", "the lease was modified meanwhile")
        self._version(request)
        scale = resource == "deployments" and request.subresource == "scale"
        if scale and request.action == kmock.action.UPDATE:
            record.before = self._replicas(request.name)
        response = await super()._handle(request)
        record.status, record.at = int(response.status), time.time()
        if scale and request.action == kmock.action.UPDATE:
            record.after = self._replicas(request.name)
            self._report_replicas(request.name)
        if request.action in (kmock.action.CREATE, kmock.action.UPDATE):
            record.data = self._stored(request) if resource == "leases" else request.data
            self.log.append(record)
        return response

    def _injected(self, request: Any, resource: str) -> FaultKind | None:
        kind = self.fault.kind
        if kind not in ERRORS or resource != "deployments" or request.subresource != "scale":
            return None
        if kind == FaultKind.api_conflict and request.action != kmock.action.UPDATE:
            return None
        if kind == FaultKind.api_forbidden and request.name != self.fault.target:
            return None
        return kind

    def _hangs(self, request: Any, resource: str) -> bool:
        return (
            self.fault.kind == FaultKind.api_timeout
            and resource == "deployments"
            and request.subresource == "scale"
            and request.action == kmock.action.UPDATE
        )

    def _lease_version_matches(self, request: Any) -> bool:
        data = request.data if isinstance(request.data, dict) else {}
        wanted = (data.get("metadata") or {}).get("resourceVersion")
        found = self._object(request.resource, request.namespace, request.name)
        if wanted is None or found is None:
            return True
        stored = found.raw.get("metadata", {}).get("resourceVersion")
        return bool(wanted == stored)

    def _version(self, request: Any) -> None:
        """A new resourceVersion on each write; a uid and creationTimestamp on create."""
        if request.resource is None or request.action not in (
            kmock.action.CREATE,
            kmock.action.UPDATE,
        ):
            return
        version = str(next(self._versions))
        data = request.data
        if isinstance(data, dict):
            metadata = {**(data.get("metadata") or {}), "resourceVersion": version}
            if request.action == kmock.action.CREATE:
                metadata.setdefault("uid", str(uuid.uuid4()))
                metadata.setdefault(
                    "creationTimestamp", dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                )
            data = {**data, "metadata": metadata}
        elif isinstance(data, list):
            # kopf's JSON patches test the resourceVersion they saw; kmock cannot, so the
            # test is dropped (as in tests/operator/conftest.py).
            data = [op for op in data if op.get("path") != "/metadata/resourceVersion"]
            data.append({"op": "add", "path": "/metadata/resourceVersion", "value": version})
        object.__setattr__(request, "data", data)  # the parsed request is frozen

    def _object(self, resource: Any, namespace: str | None, name: str | None) -> Any:
        try:
            return self.objects[resource, namespace, name]
        except KeyError:
            return None

    def _replicas(self, name: str | None) -> int | None:
        found = self._object(DEPLOYMENTS, NAMESPACE, name)
        return None if found is None else int(found.raw.get("spec", {}).get("replicas") or 0)

    def _report_replicas(self, name: str | None) -> None:
        found = self._object(DEPLOYMENTS, NAMESPACE, name)
        if found is not None:
            found.patch({"status": {"replicas": found.raw["spec"]["replicas"]}})

    def _stored(self, request: Any) -> Any:
        found = self._object(request.resource, request.namespace, request.name)
        return request.data if found is None else found.raw


def _status_response(status: int, reason: str, message: str) -> web.Response:
    body = {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "code": status,
        "reason": reason,
        "message": message,
    }
    return web.json_response(body, status=status)


def declare_resources(mock: kmock.KubernetesEmulator) -> None:
    """What the operator looks up on any emulator: the CRD, Deployments and Leases (the
    operator tests' fixture adds Events and Nodes, which it stores)."""
    mock.resources[CRD] = kmock.ResourceInfo(
        kind="PoolAutoscaler",
        namespaced=True,
        subresources={"status"},
        shortnames={"pas"},
        verbs={"get", "list", "watch", "patch"},
    )
    mock.resources[DEPLOYMENTS] = kmock.ResourceInfo(
        kind="Deployment",
        namespaced=True,
        subresources={"scale", "status"},
        verbs={"get", "list", "watch", "patch"},
    )
    mock.resources[LEASES] = kmock.ResourceInfo(
        kind="Lease", namespaced=True, verbs={"get", "create", "patch"}
    )
    mock.resources["v1/events"] = kmock.ResourceInfo(
        kind="Event", namespaced=True, verbs={"create"}
    )
    mock.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = kmock.ResourceInfo(
        kind="CustomResourceDefinition", namespaced=False, verbs={"list", "watch"}
    )
    mock.resources["v1/namespaces"] = kmock.ResourceInfo(
        kind="Namespace", namespaced=False, verbs={"list", "watch"}
    )


def add_deployment(mock: SoakEmulator, name: str, replicas: int) -> None:
    mock.objects[DEPLOYMENTS, NAMESPACE, name] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "resourceVersion": "1"},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas},
    }


def pool_body(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling.harmony.dev/v1alpha1",
        "kind": "PoolAutoscaler",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "generation": 1,
            "resourceVersion": "1",
            "uid": str(uuid.uuid4()),
        },
        "spec": spec,
    }
