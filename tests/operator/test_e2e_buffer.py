"""`harmony operator` driving CapacityBuffers, and refusing a dynamic NodePool, on kmock with
the real Prometheus and PostgreSQL.

kmock serves the CapacityBuffer resource as `tests/operator/crds` defines it (and every
buffer seeded or written is checked against that CRD's schema), a PodTemplate
(one chunk: one CPU), the workload's one running pod (one chunk), and a NodePool without
`spec.replicas`. The square wave needs 5 replicas at its peaks and 1 between them, so the
Enforce buffer must hold 4 spare chunks when a peak begins and none after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import kmock
import pytest

from tests.helm.crd import schema_admission_errors
from tests.operator.conftest import E2E_STEP, NAMESPACE, Kube, OperatorProcess, store_model
from tests.operator.helpers import PERIOD
from tests.operator.test_capacity_buffer import buffer_schema, declare_capacity_buffers
from tests.operator.test_e2e import condition, e2e_spec, scaled_before_and_after, wait_for
from tests.prometheus import RunningPrometheus

pytestmark = [pytest.mark.postgres, pytest.mark.prometheus, pytest.mark.slow]
BUFFERS = "autoscaling.x-k8s.io/v1alpha1/capacitybuffers"
NODEPOOLS = "karpenter.sh/v1/nodepools"
SELECTOR = {"app": "inference"}
WORKLOAD_CHUNKS = 1


def declare_buffer_world(kube: Kube) -> None:
    mock = kube.mock
    declare_capacity_buffers(mock)
    mock.resources["v1/podtemplates"] = kmock.ResourceInfo(
        kind="PodTemplate", namespaced=True, verbs={"get"}
    )
    mock.resources["v1/pods"] = kmock.ResourceInfo(kind="Pod", namespaced=True, verbs={"list"})
    mock.resources[NODEPOOLS] = kmock.ResourceInfo(
        kind="NodePool", namespaced=False, subresources={"scale"}, verbs={"get", "patch"}
    )
    mock.objects["v1/podtemplates", NAMESPACE, "one-cpu"] = {
        "metadata": {"name": "one-cpu", "namespace": NAMESPACE},
        "template": {
            "spec": {"containers": [{"name": "p", "resources": {"requests": {"cpu": "1"}}}]}
        },
    }
    mock.objects["v1/pods", NAMESPACE, "server-0"] = {
        "metadata": {"name": "server-0", "namespace": NAMESPACE, "labels": dict(SELECTOR)},
        "spec": {
            "nodeName": "node-0",
            "containers": [{"name": "s", "resources": {"requests": {"cpu": "1000m"}}}],
        },
        "status": {"phase": "Running"},
    }
    for name in ("serving-buffer", "shadow-buffer"):
        seeded = {
            "apiVersion": "autoscaling.x-k8s.io/v1alpha1",
            "kind": "CapacityBuffer",
            "metadata": {"name": name, "namespace": NAMESPACE, "resourceVersion": "1"},
            "spec": {"podTemplateRef": {"name": "one-cpu"}, "replicas": 0},
            "status": {
                "conditions": [
                    {"type": "ReadyForProvisioning", "status": "True", "reason": "Resolved"},
                    {"type": "Provisioning", "status": "True", "reason": "Provisioning"},
                ]
            },
        }
        assert schema_admission_errors(buffer_schema(), seeded) == []
        mock.objects[BUFFERS, NAMESPACE, name] = seeded
    mock.objects[NODEPOOLS, None, "gpu-dynamic"] = {
        "apiVersion": "karpenter.sh/v1",
        "kind": "NodePool",
        "metadata": {"name": "gpu-dynamic", "resourceVersion": "1"},
        "spec": {"template": {"spec": {"requirements": []}}},
    }


def buffer_replicas(kube: Kube, name: str) -> int:
    return int(kube.mock.objects[BUFFERS, NAMESPACE, name].raw["spec"]["replicas"])


def buffer_patches(kube: Kube, name: str) -> list[Any]:
    suffix = f"/capacitybuffers/{name}"
    return [r for r in kube.mock if r.method == "PATCH" and r.url.path.endswith(suffix)]


def buffer_target(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling.x-k8s.io/v1alpha1",
        "kind": "CapacityBuffer",
        "name": name,
        "podSelector": dict(SELECTOR),
    }


async def test_the_buffer_grows_before_a_peak_and_a_dynamic_nodepool_is_invalid(
    kube: Kube,
    demand_prometheus: RunningPrometheus,
    operator_db: str,
    tiny_model_artifact: bytes,
    start_operator: Callable[..., OperatorProcess],
) -> None:
    declare_buffer_world(kube)
    store_model(operator_db, "buffered", tiny_model_artifact)
    store_model(operator_db, "shadow", tiny_model_artifact)
    url = demand_prometheus.url
    await kube.create_pool("buffered", e2e_spec(url, target=buffer_target("serving-buffer")))
    await kube.create_pool(
        "shadow", e2e_spec(url, mode="Recommend", target=buffer_target("shadow-buffer"))
    )
    await kube.create_pool(
        "dynamic",
        e2e_spec(
            url, target={"apiVersion": "karpenter.sh/v1", "kind": "NodePool", "name": "gpu-dynamic"}
        ),
    )
    operator = start_operator(operator_db)
    await wait_for(
        lambda: condition(kube.pool("buffered"), "ModelReady").get("status") == "True",
        60,
        "ModelReady=True on the buffered pool",
        operator,
    )

    # Enforce: the workload's chunk plus the buffer cover a peak when it begins, and the
    # buffer empties after it (the same proof as the /scale e2e test, on workload + buffer).
    step = E2E_STEP.total_seconds()
    samples: list[tuple[float, int]] = []
    # The watch ends as soon as the proof is seen; on two cores shared with other suites a
    # cycle can miss its slot, so up to five periods (a run at load 11 missed it within 3.5).
    deadline = time.monotonic() + 5 * PERIOD * step
    proof = None
    while proof is None and time.monotonic() < deadline:
        samples.append((time.time(), WORKLOAD_CHUNKS + buffer_replicas(kube, "serving-buffer")))
        proof = scaled_before_and_after(samples, step)
        await asyncio.sleep(0.25)
    assert proof is not None, samples
    written = [r.data["spec"]["replicas"] for r in buffer_patches(kube, "serving-buffer")]
    assert max(written) >= 4 and min(written) >= 0, written
    # What the operator wrote is a buffer the CapacityBuffer CRD admits.
    stored = dict(kube.mock.objects[BUFFERS, NAMESPACE, "serving-buffer"].raw)
    assert schema_admission_errors(buffer_schema(), stored) == []
    pool = kube.pool("buffered")
    assert condition(pool, "Ready")["status"] == "True"
    assert condition(pool, "Invalid")["status"] == "False"

    # Recommend: the buffer's size is reported, never written.
    await wait_for(
        lambda: "recommendedReplicas" in kube.pool("shadow").get("status", {}),
        60,
        "the shadow pool's status.recommendedReplicas",
        operator,
    )
    assert kube.pool("shadow")["status"]["recommendedReplicas"] >= 1
    assert buffer_patches(kube, "shadow-buffer") == []
    assert buffer_replicas(kube, "shadow-buffer") == 0

    # A dynamic NodePool: Invalid, naming why and what to use instead; never patched.
    await wait_for(
        lambda: condition(kube.pool("dynamic"), "Invalid").get("status") == "True",
        30,
        "Invalid=True on the dynamic NodePool's pool",
        operator,
    )
    invalid = condition(kube.pool("dynamic"), "Invalid")
    assert invalid["reason"] == "TargetNotScalable"
    assert "no spec.replicas" in invalid["message"] and "CapacityBuffer" in invalid["message"]
    assert "StaticCapacity" in invalid["message"]
    assert condition(kube.pool("dynamic"), "Ready")["status"] == "False"
    assert not [r for r in kube.mock if r.method == "PATCH" and "nodepools" in r.url.path]
