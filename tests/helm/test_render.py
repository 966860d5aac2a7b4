"""Helm's engine lints the chart clean and renders every value set into the expected objects."""

from __future__ import annotations

import itertools
import re
import shlex
from typing import Any

import helm_python as helm
import pytest

from tests.helm.chart import (
    CHART_DIR,
    NAMESPACE,
    REPO,
    VALUE_SETS,
    find,
    kinds,
    render,
    render_files,
)

WARNING = 2


@pytest.mark.parametrize("name", VALUE_SETS)
def test_lint_reports_no_errors_or_warnings(name: str) -> None:
    report = helm.lint(CHART_DIR, VALUE_SETS[name], namespace=NAMESPACE, kube_version="v1.30.0")
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    problems = [message for message in report["messages"] if message["severity"] >= WARNING]
    assert problems == []


def test_chart_metadata_names_the_app_version() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        metadata = chart.metadata
    assert metadata["apiVersion"] == "v2"
    assert metadata["name"] == "harmony"
    assert metadata["appVersion"] == "0.1.0"


BASE_KINDS = [
    "ClusterRole",
    "ClusterRoleBinding",
    "Deployment",
    "Job",
    "PodDisruptionBudget",
    "Role",
    "RoleBinding",
    "Secret",
    "Service",
    "ServiceAccount",
]


@pytest.mark.parametrize(
    ("name", "expected_kinds"),
    [
        ("defaults", BASE_KINDS),
        ("postgres-secret", BASE_KINDS),
        ("redis-worker", BASE_KINDS),
        ("servicemonitor", sorted([*BASE_KINDS, "ServiceMonitor"])),
        # tokens from an existing Secret: the chart generates none
        (
            "everything-on",
            sorted({*BASE_KINDS, "ServiceMonitor", "NetworkPolicy"} - {"Secret"}),
        ),
    ],
)
def test_each_value_set_renders_its_kinds(name: str, expected_kinds: list[str]) -> None:
    assert kinds(render(VALUE_SETS[name])) == expected_kinds


def _deployments(values: dict[str, Any]) -> dict[str, int]:
    return {
        manifest["metadata"]["labels"]["app.kubernetes.io/component"]: manifest["spec"]["replicas"]
        for manifest in find(render(values), "Deployment")
    }


def test_operator_runs_two_replicas_and_the_worker_only_with_redis() -> None:
    assert _deployments(VALUE_SETS["defaults"]) == {"operator": 2, "api": 1}
    assert _deployments(VALUE_SETS["redis-worker"]) == {"operator": 2, "api": 1, "worker": 3}
    switched_off = {**VALUE_SETS["redis-worker"], "worker": {"enabled": False}}
    assert _deployments(switched_off) == {"operator": 2, "api": 1}
    assert _deployments({"api": {"enabled": False}}) == {"operator": 2}


def test_worker_takes_its_replicas_resources_and_concurrency_from_values() -> None:
    (worker,) = find(render(VALUE_SETS["redis-worker"]), "Deployment", "worker")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["worker", "--concurrency", "4"]
    assert container["resources"] == VALUE_SETS["redis-worker"]["worker"]["resources"]


def test_operator_pdb_keeps_one_pod_through_drains() -> None:
    manifests = render({})
    (budget,) = find(manifests, "PodDisruptionBudget")
    (operator,) = find(manifests, "Deployment", "operator")
    assert budget["spec"]["minAvailable"] == 1
    assert budget["spec"]["selector"] == operator["spec"]["selector"]
    without = render({"operator": {"podDisruptionBudget": {"enabled": False}}})
    assert find(without, "PodDisruptionBudget") == []


def test_migration_job_is_a_pre_install_and_pre_upgrade_hook_running_db_upgrade() -> None:
    (job,) = find(render({}), "Job")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert [*container["command"], *container["args"]] == ["harmony", "db", "upgrade"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_services_select_the_pods_and_ports_they_name() -> None:
    manifests = render(VALUE_SETS["everything-on"])
    pods = {
        manifest["metadata"]["name"]: manifest["spec"]["template"]
        for manifest in find(manifests, "Deployment")
    }
    for service in find(manifests, "Service"):
        selector = service["spec"]["selector"]
        matching = [
            template
            for template in pods.values()
            if selector.items() <= template["metadata"]["labels"].items()
        ]
        assert len(matching) == 1, f"service {service['metadata']['name']} selects {len(matching)}"
        containers = matching[0]["spec"]["containers"]
        port_names = {port["name"] for container in containers for port in container["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in port_names


def test_notes_say_how_to_reach_the_dashboard_and_create_a_pool_autoscaler() -> None:
    notes = render_files({})["harmony/templates/NOTES.txt"]
    assert "port-forward service/harmony-api 8000:80" in notes
    assert "get secret harmony-api-tokens" in notes
    assert "kind: PoolAutoscaler" in notes


def test_notes_warn_when_tasks_would_queue_for_a_worker_the_release_does_not_run() -> None:
    without_worker = {"redis": {"existingSecret": "prod-redis"}, "worker": {"enabled": False}}
    notes = render_files(without_worker)["harmony/templates/NOTES.txt"]
    assert "WARNING: Redis is configured" in notes
    assert "No Redis configured" not in notes
    assert "WARNING" not in render_files({})["harmony/templates/NOTES.txt"]
    assert "WARNING" not in render_files(VALUE_SETS["redis-worker"])["harmony/templates/NOTES.txt"]


def _deep_merge(into: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value
    return into


def test_the_readmes_install_command_renders_with_the_secret_it_creates() -> None:
    readme = (REPO / "README.md").read_text().split("## Install in a cluster", 1)[1]
    command = re.search(r"^helm install harmony helm/harmony .*?(?<!\\)$", readme, re.M | re.S)
    assert command, "README's Install section has no `helm install harmony helm/harmony`"
    arguments = shlex.split(command.group(0).replace("\\\n", " "))
    values: dict[str, Any] = {}
    for flag, expression in itertools.pairwise(arguments):
        if flag == "--set":
            _deep_merge(values, helm.parse_set_string(expression))
    created = re.search(r"create secret generic (\S+)", readme)
    assert created and values["database"]["existingSecret"] == created.group(1)
    manifests = render(values)
    (operator,) = find(manifests, "Deployment", "operator")
    (container,) = operator["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "REGISTRY/harmony:0.1.0"
