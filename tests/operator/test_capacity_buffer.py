"""The CapacityBuffer actuator and the refusal of dynamic NodePools, against kmock over
loopback; the CapacityBuffer examples against the tests' CapacityBuffer CRD."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kmock
import pytest
import pytest_asyncio
import yaml
from kubernetes import client as k8s

from controller.actuators.base import TargetNotScalable
from controller.actuators.capacity_buffer import CapacityBufferActuator
from controller.actuators.kubernetes import KubernetesScaleActuator, ScaleBinding, TargetNotFound
from controller.actuators.targets import TargetActuator
from controller.clock import ManualClock
from controller.errors import HarmonyError
from controller.operator.spec import InvalidSpec, TargetRef, parse_spec
from tests.helm.crd import schema_admission_errors
from tests.operator.helpers import pool_spec_document

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
REPO = Path(__file__).resolve().parents[2]
BUFFER_CRD = Path(__file__).parent / "crds" / "capacitybuffers.autoscaling.x-k8s.io.yaml"
BUFFERS = "autoscaling.x-k8s.io/v1alpha1/capacitybuffers"
NODEPOOLS = "karpenter.sh/v1/nodepools"
DEPLOYMENTS = "apps/v1/deployments"
SELECTOR = {"app": "llm"}


def buffer_crd() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(BUFFER_CRD.read_text())
    return loaded


def buffer_schema() -> dict[str, Any]:
    (version,) = buffer_crd()["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def declare_capacity_buffers(mock: Any) -> None:
    """Serve the tests' CapacityBuffer CRD on kmock: its group, version, plural, kind, scope
    and subresources as the CRD declares them; the verbs the operator uses."""
    crd = buffer_crd()["spec"]
    (version,) = crd["versions"]
    mock.resources[f"{crd['group']}/{version['name']}/{crd['names']['plural']}"] = (
        kmock.ResourceInfo(
            kind=crd["names"]["kind"],
            namespaced=crd["scope"] == "Namespaced",
            subresources=set(version.get("subresources", {})),
            verbs={"get", "patch"},
        )
    )


def buffer_target(name: str = "spare") -> TargetRef:
    return TargetRef(
        "autoscaling.x-k8s.io/v1alpha1",
        "CapacityBuffer",
        name,
        "fleet",
        "autoscaling.x-k8s.io",
        "capacitybuffers",
        pod_selector=dict(SELECTOR),
    )


def nodepool(name: str) -> TargetRef:
    return TargetRef("karpenter.sh/v1", "NodePool", name, "fleet", "karpenter.sh", "nodepools")


def pod(name: str, gpus: int, node: str | None, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "containers": [{"name": "server", "resources": {"requests": {"nvidia.com/gpu": gpus}}}]
    }
    if node:
        spec["nodeName"] = node
    return {
        "metadata": {"name": name, "namespace": "fleet", "labels": dict(SELECTOR)},
        "spec": spec,
        "status": {"phase": "Running" if node else "Pending", **extra},
    }


def buffer(replicas: int, ready: str = "True", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling.x-k8s.io/v1alpha1",
        "kind": "CapacityBuffer",
        "metadata": {"name": "spare", "namespace": "fleet"},
        "spec": {"podTemplateRef": {"name": "one-gpu"}, "replicas": replicas, **spec},
        "status": {
            "conditions": [
                {"type": "ReadyForProvisioning", "status": ready, "reason": "Why", "message": "m"},
                {"type": "Provisioning", "status": "True"},
            ]
        },
    }


@pytest_asyncio.fixture
async def api() -> AsyncIterator[tuple[Any, k8s.ApiClient]]:
    async with kmock.KubernetesEmulator() as mock, kmock.Server(mock) as server:
        declare_capacity_buffers(mock)
        mock.resources["v1/podtemplates"] = kmock.ResourceInfo(
            kind="PodTemplate", namespaced=True, verbs={"get"}
        )
        mock.resources["v1/pods"] = kmock.ResourceInfo(kind="Pod", namespaced=True, verbs={"list"})
        mock.resources["v1/nodes"] = kmock.ResourceInfo(
            kind="Node", namespaced=False, verbs={"list"}
        )
        mock.resources[NODEPOOLS] = kmock.ResourceInfo(
            kind="NodePool", namespaced=False, subresources={"scale"}, verbs={"get", "patch"}
        )
        mock.resources[DEPLOYMENTS] = kmock.ResourceInfo(
            kind="Deployment", namespaced=True, subresources={"scale"}, verbs={"get", "patch"}
        )
        mock.objects["v1/podtemplates", "fleet", "one-gpu"] = {
            "metadata": {"name": "one-gpu", "namespace": "fleet"},
            "template": {
                "spec": {
                    "containers": [
                        {"name": "p", "resources": {"requests": {"nvidia.com/gpu": "1"}}}
                    ]
                }
            },
        }
        for item in (
            pod("a", 1, "node-1"),
            pod("b", 2, "node-2"),
            pod("c", 1, None),  # waiting for a node: in flight
            pod("done", 4, "node-1", phase="Succeeded"),
            {**pod("other", 4, "node-3"), "metadata": {"name": "other", "namespace": "fleet"}},
        ):
            mock.objects["v1/pods", "fleet", item["metadata"]["name"]] = item
        configuration = k8s.Configuration(host=str(server.url).rstrip("/"))
        yield mock, k8s.ApiClient(configuration)


def buffer_patches(mock: Any) -> list[Any]:
    return [r for r in mock if r.method == "PATCH" and "/capacitybuffers/" in r.url.path]


async def test_the_buffer_holds_what_the_decision_wants_beyond_the_workload(api: Any) -> None:
    mock, client = api
    mock.objects[BUFFERS, "fleet", "spare"] = buffer(1)
    actuator = CapacityBufferActuator(client, ManualClock(NOW), backoff_seconds=0.01)
    actuator.register("fleet/p", ScaleBinding(buffer_target(), dt.timedelta(minutes=3)))

    def work() -> tuple[Any, ...]:
        state = actuator.current("fleet/p")
        grow = actuator.scale("fleet/p", 7, "k1")
        again = actuator.scale("fleet/p", 7, "k1")
        shrink = actuator.scale("fleet/p", 2, "k2")
        kept = actuator.scale("fleet/p", 3, "k3")
        return state, grow, again, shrink, kept

    state, grow, again, shrink, kept = await asyncio.to_thread(work)
    # The workload requests 3 GPUs on nodes and 1 waiting; the buffer holds 1 more.
    assert (state.usable, state.in_flight_count, state.desired, state.pinned) == (4, 1, 5, 3)
    assert state.in_flight[0].ready_at == NOW + dt.timedelta(minutes=3)
    assert grow.applied and (grow.from_replicas, grow.to_replicas) == (5, 7)
    assert grow.extra == {"buffer_replicas": "3", "workload_chunks": "4"}
    assert again.duplicate and not again.applied
    # Below what the workload requests, the buffer goes to zero, never below.
    assert shrink.applied and shrink.extra["buffer_replicas"] == "0"
    assert not kept.applied and kept.extra["buffer_replicas"] == "0"
    assert [r.data for r in buffer_patches(mock)] == [
        {"spec": {"replicas": 3}},
        {"spec": {"replicas": 0}},
    ]
    assert mock.objects[BUFFERS, "fleet", "spare"].raw["spec"]["replicas"] == 0


async def test_buffer_chunks_are_in_flight_until_provisioned_and_faults_are_named(
    api: Any,
) -> None:
    mock, client = api
    unready = buffer(2)
    unready["status"]["conditions"][1]["status"] = "False"  # Provisioning=False
    mock.objects[BUFFERS, "fleet", "spare"] = unready
    actuator = CapacityBufferActuator(client, ManualClock(NOW), backoff_seconds=0.01)
    actuator.register("fleet/p", ScaleBinding(buffer_target(), dt.timedelta(minutes=3)))
    actuator.register("fleet/gone", ScaleBinding(buffer_target("gone"), dt.timedelta(0)))
    state = await asyncio.to_thread(actuator.current, "fleet/p")
    assert (state.usable, state.in_flight_count) == (3, 3)

    mock.objects[BUFFERS, "fleet", "spare"] = buffer(2, ready="False")
    with pytest.raises(HarmonyError, match="not ready for provisioning"):
        await asyncio.to_thread(actuator.current, "fleet/p")
    scalable = buffer(2, scalableRef={"kind": "Deployment", "name": "llm"})
    del scalable["spec"]["podTemplateRef"]
    mock.objects[BUFFERS, "fleet", "spare"] = scalable
    with pytest.raises(TargetNotScalable, match="podTemplateRef"):
        await asyncio.to_thread(actuator.current, "fleet/p")
    mock.objects[BUFFERS, "fleet", "spare"] = buffer(2, podTemplateRef={"name": "missing"})
    with pytest.raises(TargetNotFound, match="PodTemplate"):
        await asyncio.to_thread(actuator.current, "fleet/p")
    with pytest.raises(TargetNotFound, match="CapacityBuffer fleet/gone"):
        await asyncio.to_thread(actuator.current, "fleet/gone")


async def test_a_dynamic_nodepool_is_refused_and_a_static_one_scaled(api: Any) -> None:
    mock, client = api
    mock.objects[NODEPOOLS, None, "dynamic"] = {"metadata": {"name": "dynamic"}, "spec": {}}
    mock.objects[NODEPOOLS, None, "static"] = {
        "metadata": {"name": "static"},
        "spec": {"replicas": 2},
        "status": {"nodes": 2},
    }
    mock.objects[BUFFERS, "fleet", "spare"] = buffer(0)
    clock = ManualClock(NOW)
    actuator = TargetActuator(
        KubernetesScaleActuator(client, clock, backoff_seconds=0.01),
        CapacityBufferActuator(client, clock, backoff_seconds=0.01),
    )
    actuator.register("fleet/dynamic", ScaleBinding(nodepool("dynamic"), dt.timedelta(0)))
    actuator.register("fleet/static", ScaleBinding(nodepool("static"), dt.timedelta(0)))
    actuator.register("fleet/buffer", ScaleBinding(buffer_target(), dt.timedelta(0)))
    with pytest.raises(TargetNotScalable) as refused:
        await asyncio.to_thread(actuator.current, "fleet/dynamic")
    assert "CapacityBuffer" in str(refused.value) and "StaticCapacity" in str(refused.value)
    static = await asyncio.to_thread(actuator.current, "fleet/static")
    assert static.desired == 2
    routed = await asyncio.to_thread(actuator.scale, "fleet/buffer", 6, "k")
    assert routed.extra["buffer_replicas"] == "2" and actuator.patches == 1
    assert not [r for r in mock if r.method == "PATCH" and "nodepools" in r.url.path]
    actuator.unregister("fleet/buffer")
    with pytest.raises(HarmonyError, match="not registered"):
        await asyncio.to_thread(actuator.current, "fleet/buffer")


def test_a_capacitybuffer_target_needs_the_workloads_pod_selector() -> None:
    target = {"apiVersion": "autoscaling.x-k8s.io/v1alpha1", "kind": "CapacityBuffer"}
    with pytest.raises(InvalidSpec) as missing:
        parse_spec("fleet", "p", pool_spec_document(target={**target, "name": "b"}), None)
    assert missing.value.field == "spec.target.podSelector"
    config = parse_spec(
        "fleet",
        "p",
        pool_spec_document(target={**target, "name": "b", "podSelector": SELECTOR}),
        None,
    )
    assert config.target.pod_selector == SELECTOR
    with pytest.raises(InvalidSpec, match="CapacityBuffer") as unknown:
        parse_spec(
            "fleet", "p", pool_spec_document(target={**target, "kind": "Job", "name": "j"}), None
        )
    assert unknown.value.field == "spec.target.kind"


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.mark.parametrize("cluster", ["karpenter", "cluster-autoscaler"])
def test_buffer_examples_fit_the_capacitybuffer_crd_and_their_pool(cluster: str) -> None:
    documents = _documents(REPO / "examples" / "capacitybuffer" / f"{cluster}.yaml")
    (template,) = [doc for doc in documents if doc["kind"] == "PodTemplate"]
    (example_buffer,) = [doc for doc in documents if doc["kind"] == "CapacityBuffer"]
    assert schema_admission_errors(buffer_schema(), example_buffer) == []
    assert example_buffer["spec"]["podTemplateRef"]["name"] == template["metadata"]["name"]
    assert template["metadata"]["namespace"] == example_buffer["metadata"]["namespace"]
    pool = yaml.safe_load(
        (REPO / "examples" / f"poolautoscaler-capacitybuffer-{cluster}.yaml").read_text()
    )
    config = parse_spec(
        pool["metadata"]["namespace"], pool["metadata"]["name"], pool["spec"], "http://p"
    )
    assert (config.target.name, config.target.namespace) == (
        example_buffer["metadata"]["name"],
        example_buffer["metadata"]["namespace"],
    )
    assert config.target.api_version == example_buffer["apiVersion"]


def test_the_capacitybuffer_crd_refuses_what_the_api_refuses() -> None:
    both = buffer(1, scalableRef={"kind": "Deployment", "name": "llm"})
    negative = buffer(-1)
    template_alone = buffer(1)
    del template_alone["spec"]["replicas"]
    for broken in (both, negative, template_alone):
        assert schema_admission_errors(buffer_schema(), broken), broken["spec"]
    assert schema_admission_errors(buffer_schema(), buffer(1)) == []
