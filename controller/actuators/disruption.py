"""What a scale-down must not disrupt, and which Cluster API Machines it removes.

A node running a pod annotated `karpenter.sh/do-not-disrupt: "true"` (or cluster-
autoscaler's `safe-to-evict: "false"`) is pinned: the policies never scale below the pinned
nodes. `/scale` says how many Machines go, not which; Cluster API deletes first the Machines
annotated `cluster.x-k8s.io/delete-machine`, whatever the MachineDeployment's deletion
policy. Before scaling down, the actuator marks the ones to go, so the `Actuator`
contract holds on real clusters: never a Machine whose node runs do-not-disrupt pods,
and Machines not yet capacity (no node, or a node not advertising its GPUs) before
usable ones, the newest first.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Pod annotations (key, value) that forbid removing the node the pod runs on.
DO_NOT_DISRUPT = frozenset(
    {
        ("karpenter.sh/do-not-disrupt", "true"),
        ("cluster-autoscaler.kubernetes.io/safe-to-evict", "false"),
    }
)
DELETE_MACHINE_ANNOTATION = "cluster.x-k8s.io/delete-machine"
DEPLOYMENT_NAME_LABEL = "cluster.x-k8s.io/deployment-name"


def blocks_disruption(pod: Mapping[str, Any]) -> bool:
    """A pod bound to a node, not finished or leaving, that asks not to be disrupted."""
    metadata = pod.get("metadata") or {}
    if not (pod.get("spec") or {}).get("nodeName") or metadata.get("deletionTimestamp"):
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    annotations = metadata.get("annotations") or {}
    return any(str(annotations.get(key, "")).lower() == value for key, value in DO_NOT_DISRUPT)


@dataclass(frozen=True)
class MachineView:
    """What the choice needs of one Machine."""

    name: str
    node: str  # status.nodeRef.name; "" while it has no node
    created: str  # metadata.creationTimestamp (RFC 3339 sorts as text)
    marked: bool
    deleting: bool

    @classmethod
    def of(cls, machine: Mapping[str, Any]) -> MachineView:
        metadata = machine.get("metadata") or {}
        node_ref = (machine.get("status") or {}).get("nodeRef") or {}
        return cls(
            name=str(metadata.get("name") or ""),
            node=str(node_ref.get("name") or ""),
            created=str(metadata.get("creationTimestamp") or ""),
            marked=DELETE_MACHINE_ANNOTATION in (metadata.get("annotations") or {}),
            deleting=bool(metadata.get("deletionTimestamp")),
        )


@dataclass(frozen=True)
class DeletionMarks:
    """Machines to annotate for deletion, and stale marks to take off (pinned since)."""

    mark: tuple[str, ...]
    unmark: tuple[str, ...]


def choose_machines_to_delete(
    machines: Sequence[MachineView],
    usable_nodes: Collection[str],
    pinned_nodes: Collection[str],
    count: int,
) -> DeletionMarks:
    """The `count` Machines a scale-down by `count` should remove (fewer when the others are
    pinned): marks already on unpinned Machines are kept and count first; then Machines
    that are not capacity yet, then usable ones, newest first within each. Other marks are
    taken off; Machines already being deleted are left to Cluster API."""
    live = [machine for machine in machines if not machine.deleting]
    pinned = {machine.name for machine in live if machine.node and machine.node in pinned_nodes}
    marked = {m.name for m in live if m.marked}
    kept = [m.name for m in live if m.marked and m.name not in pinned][:count]
    # A mark is this decision's or none: pinned Machines and surplus marks lose theirs.
    unmark = tuple(sorted(marked - set(kept)))
    candidates = sorted(
        (m for m in live if not m.marked and m.name not in pinned),
        key=lambda m: (m.node in usable_nodes, _reversed(m.created)),
    )
    mark = tuple(m.name for m in candidates[: max(count - len(kept), 0)])
    return DeletionMarks(mark=mark, unmark=unmark)


def _reversed(stamp: str) -> tuple[int, ...]:
    """Sort key putting later timestamps first."""
    return tuple(-ord(character) for character in stamp)
