"""The `/scale` actuator against kmock's Kubernetes API over loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import kmock
import pytest
import pytest_asyncio
from kubernetes import client as k8s

from controller.actuators.kubernetes import (
    KubernetesScaleActuator,
    PermissionDenied,
    ScaleBinding,
    TargetNotFound,
)
from controller.clock import ManualClock
from controller.operator.spec import TargetRef

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
DEPLOYMENTS = "apps/v1/deployments"
MACHINE_DEPLOYMENTS = "cluster.x-k8s.io/v1beta1/machinedeployments"
MACHINES = "cluster.x-k8s.io/v1beta1/machines"


def deployment(name: str) -> TargetRef:
    return TargetRef("apps/v1", "Deployment", name, "fleet", "apps", "deployments")


@pytest_asyncio.fixture
async def api() -> AsyncIterator[tuple[Any, KubernetesScaleActuator]]:
    async with kmock.KubernetesEmulator() as mock, kmock.Server(mock) as server:
        mock.resources[DEPLOYMENTS] = kmock.ResourceInfo(
            kind="Deployment", namespaced=True, subresources={"scale"}, verbs={"get", "patch"}
        )
        mock.resources[MACHINE_DEPLOYMENTS] = kmock.ResourceInfo(
            kind="MachineDeployment",
            namespaced=True,
            subresources={"scale"},
            verbs={"get", "patch"},
        )
        mock.resources["v1/nodes"] = kmock.ResourceInfo(
            kind="Node", namespaced=False, verbs={"list"}
        )
        mock.resources["v1/pods"] = kmock.ResourceInfo(kind="Pod", namespaced=True, verbs={"list"})
        mock.resources[MACHINES] = kmock.ResourceInfo(
            kind="Machine", namespaced=True, verbs={"list", "patch"}
        )
        configuration = k8s.Configuration(host=str(server.url).rstrip("/"))
        actuator = KubernetesScaleActuator(
            k8s.ApiClient(configuration), ManualClock(NOW), backoff_seconds=0.01
        )
        yield mock, actuator


async def test_conflicts_are_retried_and_the_scale_applied_once(api: Any) -> None:
    mock, actuator = api
    mock.objects[DEPLOYMENTS, "fleet", "web"] = {
        "metadata": {"name": "web", "namespace": "fleet"},
        "spec": {"replicas": 1},
        "status": {"replicas": 1},
    }
    path = "patch /apis/apps/v1/namespaces/fleet/deployments/web/scale"
    mock[path][:2] << 409 << {"kind": "Status", "code": 409, "message": "conflict"}
    actuator.register("fleet/web", ScaleBinding(deployment("web"), dt.timedelta(minutes=2)))

    def work() -> tuple[Any, Any, Any]:
        before = actuator.current("fleet/web")
        return before, actuator.scale("fleet/web", 3, "k1"), actuator.scale("fleet/web", 3, "k1")

    before, first, again = await asyncio.to_thread(work)
    assert before.usable == 1 and before.desired == 1
    assert first.applied and (first.from_replicas, first.to_replicas) == (1, 3)
    assert again.duplicate and not again.applied
    patches = [r for r in mock if r.method == "PATCH"]
    assert len(patches) == 3  # two conflicts, one success; the duplicate sent nothing
    assert mock.objects[DEPLOYMENTS, "fleet", "web"].raw["spec"]["replicas"] == 3


async def test_forbidden_names_the_permission_and_missing_targets_say_so(api: Any) -> None:
    mock, actuator = api
    mock.objects[DEPLOYMENTS, "fleet", "locked"] = {
        "metadata": {"name": "locked", "namespace": "fleet"},
        "spec": {"replicas": 1},
    }
    path = "patch /apis/apps/v1/namespaces/fleet/deployments/locked/scale"
    mock[path] << 403 << {"kind": "Status", "code": 403, "message": "forbidden"}
    actuator.register("fleet/locked", ScaleBinding(deployment("locked"), dt.timedelta(0)))
    actuator.register("fleet/gone", ScaleBinding(deployment("gone"), dt.timedelta(0)))
    with pytest.raises(PermissionDenied) as denied:
        await asyncio.to_thread(actuator.scale, "fleet/locked", 4, "k2")
    assert denied.value.permission == (
        "patch on deployments/scale (apiGroup apps) in namespace fleet"
    )
    with pytest.raises(TargetNotFound, match="fleet/gone"):
        await asyncio.to_thread(actuator.current, "fleet/gone")


def node(name: str, gpus: int, created: dt.datetime) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {"pool": "h100"},
            "creationTimestamp": created.isoformat().replace("+00:00", "Z"),
        },
        "status": {"allocatable": {"nvidia.com/gpu": str(gpus)} if gpus else {}},
    }


def gpu_node_pool(mock: Any, actuator: KubernetesScaleActuator) -> None:
    """A MachineDeployment of 4 nodes: two advertise their GPUs, one is joining, and one
    is still to be created; a node of another pool beside them."""
    mock.objects[MACHINE_DEPLOYMENTS, "fleet", "md"] = {
        "metadata": {"name": "md", "namespace": "fleet"},
        "spec": {"replicas": 4},
        "status": {"replicas": 4},
    }
    mock.objects["v1/nodes", None, "ready-1"] = node("ready-1", 8, NOW - dt.timedelta(hours=1))
    mock.objects["v1/nodes", None, "ready-2"] = node("ready-2", 8, NOW - dt.timedelta(hours=1))
    mock.objects["v1/nodes", None, "joining"] = node("joining", 0, NOW - dt.timedelta(minutes=4))
    other = node("elsewhere", 8, NOW)
    other["metadata"]["labels"] = {"pool": "a100"}
    mock.objects["v1/nodes", None, "elsewhere"] = other
    target = TargetRef(
        "cluster.x-k8s.io/v1beta1",
        "MachineDeployment",
        "md",
        "fleet",
        "cluster.x-k8s.io",
        "machinedeployments",
    )
    actuator.register(
        "fleet/md",
        ScaleBinding(
            target, dt.timedelta(minutes=10), node_selector={"pool": "h100"}, gpus_per_replica=8
        ),
    )


def pod(name: str, node_name: str, annotations: dict[str, str], **extra: Any) -> dict[str, Any]:
    metadata = {"name": name, "namespace": "jobs", "annotations": annotations}
    metadata.update(extra.pop("metadata", {}))
    return {"metadata": metadata, "spec": {"nodeName": node_name}, **extra}


async def test_gpu_nodes_count_only_once_they_advertise_their_gpus(api: Any) -> None:
    mock, actuator = api
    gpu_node_pool(mock, actuator)
    state = await asyncio.to_thread(actuator.current, "fleet/md")
    assert state.usable == 2  # Ready is not enough: the joining node has no GPUs yet
    assert state.desired == 4
    ready_times = sorted(entry.ready_at for entry in state.in_flight)
    # The joining node is due 10 minutes after it appeared; the one not started yet, from now.
    assert ready_times == [NOW + dt.timedelta(minutes=6), NOW + dt.timedelta(minutes=10)]
    assert state.pinned == 0


async def test_nodes_running_do_not_disrupt_pods_are_pinned(api: Any) -> None:
    mock, actuator = api
    gpu_node_pool(mock, actuator)
    keep = {"karpenter.sh/do-not-disrupt": "true"}
    pods = {
        "training": pod("training", "ready-1", keep, status={"phase": "Running"}),
        "batch": pod(
            "batch",
            "ready-1",
            {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
            status={"phase": "Running"},
        ),
        "finished": pod("finished", "ready-2", keep, status={"phase": "Succeeded"}),
        "leaving": pod(
            "leaving", "ready-2", keep, metadata={"deletionTimestamp": "2026-03-01T11:59:00Z"}
        ),
        "evictable": pod("evictable", "ready-2", {"karpenter.sh/do-not-disrupt": "false"}),
        "waiting": pod("waiting", "joining", keep, status={"phase": "Pending"}),
        "elsewhere": pod("elsewhere", "elsewhere", keep, status={"phase": "Running"}),
    }
    for name, document in pods.items():
        mock.objects["v1/pods", "jobs", name] = document
    state = await asyncio.to_thread(actuator.current, "fleet/md")
    # ready-1 only: finished, leaving and evictable pods do not pin ready-2, the joining
    # node is not capacity yet, and the other pool's node is not this pool's.
    assert (state.usable, state.pinned) == (2, 1)


async def test_a_refused_pod_listing_names_the_permission(api: Any) -> None:
    mock, actuator = api
    gpu_node_pool(mock, actuator)
    mock["get /api/v1/pods"] << 403 << {"kind": "Status", "code": 403, "message": "forbidden"}
    with pytest.raises(PermissionDenied) as denied:
        await asyncio.to_thread(actuator.current, "fleet/md")
    assert denied.value.permission == "list on pods (apiGroup core) cluster-wide"


async def test_a_machine_deployment_scale_down_marks_unpinned_machines_first(api: Any) -> None:
    mock, actuator = api
    gpu_node_pool(mock, actuator)
    mock.objects["v1/pods", "jobs", "training"] = pod(
        "training", "ready-2", {"karpenter.sh/do-not-disrupt": "true"}, status={"phase": "Running"}
    )
    for name, node_name, created in (
        ("m-ready-1", "ready-1", "2026-03-01T10:00:00Z"),
        ("m-ready-2", "ready-2", "2026-03-01T11:00:00Z"),  # newest usable, but pinned
        ("m-joining", "joining", "2026-03-01T11:56:00Z"),
        ("m-pending", "", "2026-03-01T11:58:00Z"),
    ):
        mock.objects[MACHINES, "fleet", name] = {
            "metadata": {
                "name": name,
                "namespace": "fleet",
                "labels": {"cluster.x-k8s.io/deployment-name": "md"},
                "creationTimestamp": created,
            },
            "status": {"nodeRef": {"name": node_name}} if node_name else {},
        }

    def work() -> Any:
        actuator.current("fleet/md")
        return actuator.scale("fleet/md", 1, "down")

    result = await asyncio.to_thread(work)
    assert result.applied and (result.from_replicas, result.to_replicas) == (4, 1)
    marked = {
        name
        for name in ("m-ready-1", "m-ready-2", "m-joining", "m-pending")
        if "cluster.x-k8s.io/delete-machine"
        in (mock.objects[MACHINES, "fleet", name].raw["metadata"].get("annotations") or {})
    }
    # Three go: the two not yet capacity, then the only unpinned usable one.
    assert marked == {"m-pending", "m-joining", "m-ready-1"}
    assert mock.objects[MACHINE_DEPLOYMENTS, "fleet", "md"].raw["spec"]["replicas"] == 1
