"""The rendered RBAC grants exactly what controller/operator/permissions.py declares.

The operator declares each permission once, in code; the chart's ClusterRole and Role must
match it rule for rule, and the whole grant must stay inside the list of the chart's issue
(plus the two verbs kopf needs, named below).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.chart import NAMESPACE, VALUE_SETS, find, render

try:
    from controller.operator import permissions
except ImportError as missing:  # the operator owns the module; without it nothing is checked
    pytest.fail(
        f"controller/operator/permissions.py cannot be imported ({missing}): the chart's RBAC "
        "is compared with its OPERATOR_RULES, LEADER_ELECTION_RULES and SCALE_TARGETS",
        pytrace=False,
    )

Grant = tuple[str, str, str]  # (apiGroup, resource, verb)

# The issue's list: read/watch PoolAutoscalers and patch their status; get/patch /scale of
# the enabled targets (a CapacityBuffer: get/patch the buffer, get its PodTemplate); read
# nodes and pods; create Events; Leases in its own namespace.
# kopf also patches the PoolAutoscaler itself (its last-handled annotation and finalizer)
# and Events may be patched when kopf/client aggregate repeats: both are declared by the
# operator in permissions.py and allowed here by name.
ALLOWED_CLUSTER_WIDE: set[Grant] = {
    *{("autoscaling.harmony.dev", "poolautoscalers", verb) for verb in ("get", "list", "watch")},
    ("autoscaling.harmony.dev", "poolautoscalers", "patch"),
    *{("autoscaling.harmony.dev", "poolautoscalers/status", verb) for verb in ("get", "patch")},
    *{("", resource, verb) for resource in ("nodes", "pods") for verb in ("get", "list", "watch")},
    ("", "events", "create"),
    ("", "events", "patch"),
}
ALLOWED_LEADER_ELECTION: set[Grant] = {
    ("coordination.k8s.io", "leases", verb)
    for verb in ("get", "list", "watch", "create", "update", "patch")
}


def _grants(rules: list[dict[str, Any]]) -> set[Grant]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _normalised(rules: list[dict[str, Any]]) -> list[dict[str, list[str]]]:
    return sorted(
        ({key: sorted(rule[key]) for key in ("apiGroups", "resources", "verbs")} for rule in rules),
        key=repr,
    )


def _enabled_kinds(values: dict[str, Any]) -> list[str]:
    defaults = {
        "MachineDeployment": True,
        "MachinePool": True,
        "NodePool": True,
        "CapacityBuffer": True,
    }
    chosen = {**defaults, **values.get("rbac", {}).get("scaleTargets", {})}
    return [kind for kind, enabled in chosen.items() if enabled]


SCALE_CHOICES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "every-kind": {"rbac": {"scaleTargets": dict.fromkeys(permissions.TARGET_KINDS, True)}},
    "deployment-only": {
        "rbac": {
            "scaleTargets": {
                **dict.fromkeys(permissions.TARGET_KINDS, False),
                "Deployment": True,
            }
        }
    },
    "no-kind": {"rbac": {"scaleTargets": dict.fromkeys(permissions.TARGET_KINDS, False)}},
    "capacity-buffer-only": {
        "rbac": {
            "scaleTargets": {
                **dict.fromkeys(permissions.TARGET_KINDS, False),
                "CapacityBuffer": True,
            }
        }
    },
    "everything-on": VALUE_SETS["everything-on"],
}


def test_chart_offers_exactly_the_operators_scale_target_kinds() -> None:
    (cluster_role,) = find(render(SCALE_CHOICES["every-kind"]), "ClusterRole")
    assert sorted(_enabled_kinds(SCALE_CHOICES["every-kind"])) == sorted(permissions.TARGET_KINDS)
    scale_rules = [rule for rule in cluster_role["rules"] if "/scale" in rule["resources"][0]]
    assert _normalised(scale_rules) == _normalised(permissions.scale_target_rules())


@pytest.mark.parametrize("name", SCALE_CHOICES)
def test_cluster_role_is_exactly_the_declared_rules(name: str) -> None:
    values = SCALE_CHOICES[name]
    (cluster_role,) = find(render(values), "ClusterRole")
    expected = [
        *permissions.OPERATOR_RULES,
        *permissions.scale_target_rules(_enabled_kinds(values)),
        *permissions.target_object_rules(_enabled_kinds(values)),
        *permissions.machine_deletion_rules(_enabled_kinds(values)),
    ]
    assert _normalised(cluster_role["rules"]) == _normalised(expected)


def test_role_is_exactly_the_leader_election_rules_in_the_release_namespace() -> None:
    (role,) = find(render({}), "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert _normalised(role["rules"]) == _normalised(permissions.LEADER_ELECTION_RULES)


@pytest.mark.parametrize("name", SCALE_CHOICES)
def test_nothing_beyond_the_issues_list_is_granted(name: str) -> None:
    values = SCALE_CHOICES[name]
    manifests = render(values)
    (cluster_role,) = find(manifests, "ClusterRole")
    (role,) = find(manifests, "Role")
    scale_allowed = {
        (group, f"{resource}/scale", verb)
        for kind, (group, resource) in permissions.SCALE_TARGETS.items()
        if kind in _enabled_kinds(values)
        for verb in ("get", "patch")
    }
    # A CapacityBuffer is patched itself (no /scale) and its PodTemplate read; a NodePool is
    # read to refuse a dynamic one.
    scale_allowed |= _grants(permissions.target_object_rules(_enabled_kinds(values)))
    if "MachineDeployment" in _enabled_kinds(values):
        # Its scale-down marks which Machines go, so that none running do-not-disrupt pods does.
        scale_allowed |= {("cluster.x-k8s.io", "machines", verb) for verb in ("list", "patch")}
    cluster_grants = _grants(cluster_role["rules"])
    assert cluster_grants - ALLOWED_CLUSTER_WIDE - scale_allowed == set()
    assert _grants(role["rules"]) - ALLOWED_LEADER_ELECTION == set()
    every_rule = [*cluster_role["rules"], *role["rules"]]
    keys = ("apiGroups", "resources", "verbs")
    assert not any("*" in rule[key] for rule in every_rule for key in keys)
    assert not any("resourceNames" in rule or "nonResourceURLs" in rule for rule in every_rule)
    # a disabled kind gets nothing at all, not even reads of its /scale
    disabled = set(permissions.TARGET_KINDS) - set(_enabled_kinds(values))
    for kind in disabled:
        resource = permissions.TARGET_KINDS[kind][1]
        assert not any(grant[1].startswith(resource) for grant in cluster_grants), kind


def test_bindings_tie_the_roles_to_the_charts_service_account_only() -> None:
    manifests = render({})
    (account,) = find(manifests, "ServiceAccount")
    name = account["metadata"]["name"]
    subject = {"kind": "ServiceAccount", "name": name, "namespace": NAMESPACE}
    for binding_kind, role_kind in (("ClusterRoleBinding", "ClusterRole"), ("RoleBinding", "Role")):
        (binding,) = find(manifests, binding_kind)
        (role,) = find(manifests, role_kind)
        assert binding["subjects"] == [subject]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": role_kind,
            "name": role["metadata"]["name"],
        }


def test_only_the_operator_mounts_a_service_account_token() -> None:
    manifests = render(VALUE_SETS["redis-worker"])
    mounting = {
        manifest["metadata"]["labels"]["app.kubernetes.io/component"]
        for manifest in [*find(manifests, "Deployment"), *find(manifests, "Job")]
        if manifest["spec"]["template"]["spec"].get("automountServiceAccountToken", True)
    }
    assert mounting == {"operator"}


def test_rbac_can_be_left_to_the_cluster_admin() -> None:
    manifests = render({"rbac": {"create": False}})
    for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"):
        assert find(manifests, kind) == []
