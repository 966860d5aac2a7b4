"""Every Kubernetes permission the operator needs, declared once.

The Helm chart's RBAC templates grant exactly these (its test compares the rendered
ClusterRole and Role with this module), so a new API call is paired with a new rule here.

- `OPERATOR_RULES`: cluster-wide rules (ClusterRole) for watching `PoolAutoscaler`s,
  writing their status, posting Events, reading nodes and listing pods (do-not-disrupt).
- `LEADER_ELECTION_RULES`: namespaced rules (Role in the operator's own namespace) for
  the `coordination.k8s.io` Lease that makes exactly one operator replica act.
- `SCALE_TARGETS`: every kind with a `/scale` subresource a `PoolAutoscaler` may target,
  kind → (apiGroup, resource); `scale_target_rules(kinds)` gives the rules for the kinds
  enabled in the chart's values, and `machine_deletion_rules(kinds)` the Machine rules a
  MachineDeployment's scale-down needs.
- `BUFFER_TARGETS`: the SIG Autoscaling `CapacityBuffer`, which has no `/scale`: the
  operator patches its `spec.replicas` and reads the `PodTemplate` it refers to.
  `TARGET_KINDS` is both; `target_object_rules(kinds)` gives the rules on the objects
  themselves (the buffer, its pod template, and a NodePool's own spec, read to tell a
  static-capacity NodePool from a dynamic one).
"""

from __future__ import annotations

from typing import Any

CRD_GROUP = "autoscaling.harmony.dev"
CRD_VERSION = "v1alpha1"
CRD_PLURAL = "poolautoscalers"
CRD_KIND = "PoolAutoscaler"

# The resource a replica turns into capacity on: GPU nodes advertise this when usable.
GPU_RESOURCE = "nvidia.com/gpu"

SCALE_TARGETS: dict[str, tuple[str, str]] = {
    "MachineDeployment": ("cluster.x-k8s.io", "machinedeployments"),
    "MachinePool": ("cluster.x-k8s.io", "machinepools"),
    "NodePool": ("karpenter.sh", "nodepools"),
    "Deployment": ("apps", "deployments"),
    "StatefulSet": ("apps", "statefulsets"),
}

# Kinds without `/scale` whose own `spec.replicas` the operator sets (see
# controller/actuators/capacity_buffer.py).
BUFFER_TARGETS: dict[str, tuple[str, str]] = {
    "CapacityBuffer": ("autoscaling.x-k8s.io", "capacitybuffers"),
}

TARGET_KINDS: dict[str, tuple[str, str]] = {**SCALE_TARGETS, **BUFFER_TARGETS}

# Reading `/scale` for current replicas and patching it to act; nothing on the object itself.
SCALE_VERBS: list[str] = ["get", "patch"]

OPERATOR_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [CRD_GROUP],
        "resources": [CRD_PLURAL],
        # kopf lists and watches, and patches its own annotations (last-handled spec).
        "verbs": ["get", "list", "watch", "patch"],
    },
    {
        "apiGroups": [CRD_GROUP],
        "resources": [f"{CRD_PLURAL}/status"],
        "verbs": ["get", "patch"],
    },
    {
        "apiGroups": [""],
        "resources": ["events"],
        "verbs": ["create", "patch"],
    },
    {
        # A GPU node counts as capacity only once it advertises allocatable GPUs.
        "apiGroups": [""],
        "resources": ["nodes"],
        "verbs": ["get", "list"],
    },
    {
        # Nodes running do-not-disrupt pods are never scaled away.
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["list"],
    },
]

LEADER_ELECTION_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "verbs": ["get", "create", "patch"],
    },
]


def scale_target_rules(kinds: list[str] | None = None) -> list[dict[str, Any]]:
    """Rules to read and patch `/scale` of the given target kinds (all known kinds by default).

    One rule per API group, resources sorted, so the chart can render the same list.
    """
    chosen = list(SCALE_TARGETS) if kinds is None else kinds
    unknown = [kind for kind in chosen if kind not in TARGET_KINDS]
    if unknown:
        raise ValueError(f"unknown scale target kinds {unknown}; known: {sorted(TARGET_KINDS)}")
    by_group: dict[str, list[str]] = {}
    for kind in chosen:
        if kind not in SCALE_TARGETS:
            continue  # no /scale: see target_object_rules
        group, resource = SCALE_TARGETS[kind]
        by_group.setdefault(group, []).append(f"{resource}/scale")
    return [
        {"apiGroups": [group], "resources": sorted(resources), "verbs": list(SCALE_VERBS)}
        for group, resources in sorted(by_group.items())
    ]


def target_object_rules(kinds: list[str] | None = None) -> list[dict[str, Any]]:
    """Rules on the target objects themselves for the enabled kinds (all by default):
    a CapacityBuffer is read and its `spec.replicas` patched, and the `PodTemplate` it refers
    to read (the size of one chunk); a NodePool is read to refuse a dynamic one (no
    `spec.replicas`), whose `/scale` would otherwise turn it static."""
    chosen = list(TARGET_KINDS) if kinds is None else kinds
    unknown = [kind for kind in chosen if kind not in TARGET_KINDS]
    if unknown:
        raise ValueError(f"unknown target kinds {unknown}; known: {sorted(TARGET_KINDS)}")
    rules: list[dict[str, Any]] = []
    if "CapacityBuffer" in chosen:
        group, resource = BUFFER_TARGETS["CapacityBuffer"]
        rules.append({"apiGroups": [group], "resources": [resource], "verbs": ["get", "patch"]})
        rules.append({"apiGroups": [""], "resources": ["podtemplates"], "verbs": ["get"]})
    if "NodePool" in chosen:
        group, resource = SCALE_TARGETS["NodePool"]
        rules.append({"apiGroups": [group], "resources": [resource], "verbs": ["get"]})
    return rules


def machine_deletion_rules(kinds: list[str] | None = None) -> list[dict[str, Any]]:
    """With MachineDeployments enabled: listing their Machines and annotating the ones a
    scale-down removes (`cluster.x-k8s.io/delete-machine`; see actuators/disruption.py)."""
    chosen = list(SCALE_TARGETS) if kinds is None else kinds
    if "MachineDeployment" not in chosen:
        return []
    group = SCALE_TARGETS["MachineDeployment"][0]
    return [{"apiGroups": [group], "resources": ["machines"], "verbs": ["list", "patch"]}]


def missing_permission(verb: str, group: str, resource: str, namespace: str | None) -> str:
    """How a condition names a permission the operator was refused (one line, RBAC words)."""
    where = f" in namespace {namespace}" if namespace else " cluster-wide"
    api_group = group or "core"
    return f"{verb} on {resource} (apiGroup {api_group}){where}"
