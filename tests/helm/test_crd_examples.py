"""PoolAutoscaler manifests against the CRD the chart ships: the examples and the minimal
ones of the README and NOTES are accepted, the broken ones refused at the right field."""

from __future__ import annotations

import copy
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import REPO, render_files
from tests.helm.crd import admission_errors, crd, version_schema

EXAMPLES = sorted((REPO / "examples").glob("poolautoscaler-*.yaml"))
BROKEN_EXAMPLES = sorted((REPO / "examples" / "invalid").glob("*.yaml"))


def _load(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def test_the_chart_ships_the_poolautoscaler_crd() -> None:
    spec = crd()["spec"]
    assert crd()["metadata"]["name"] == "poolautoscalers.autoscaling.harmony.dev"
    assert spec["scope"] == "Namespaced"
    assert [version["name"] for version in spec["versions"]] == ["v1alpha1"]
    assert version_schema()["properties"]["spec"]["x-kubernetes-validations"]


def test_there_are_examples_of_both_kinds() -> None:
    assert len(EXAMPLES) >= 3
    assert len(BROKEN_EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_is_accepted(path: Path) -> None:
    assert admission_errors(_load(path)) == []


@pytest.mark.parametrize("path", BROKEN_EXAMPLES, ids=lambda path: path.name)
def test_broken_example_is_refused(path: Path) -> None:
    assert admission_errors(_load(path)), f"{path.name} would be accepted"


def _minimal_from_notes() -> dict[str, Any]:
    notes = render_files({})["harmony/templates/NOTES.txt"]
    block = re.search(r"<<EOF\n(.*?)\n\s*EOF", notes, re.DOTALL)
    assert block, "NOTES.txt has no `kubectl apply -f - <<EOF` PoolAutoscaler"
    loaded: dict[str, Any] = yaml.safe_load(textwrap.dedent(block.group(1)))
    return loaded


def _minimal_from_readme() -> dict[str, Any]:
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Install in a cluster", 1)
    assert len(section) == 2, "README.md has no 'Install in a cluster' section"
    blocks = re.findall(r"```yaml\n(.*?)```", section[1], re.DOTALL)
    (manifest,) = [
        loaded
        for block in blocks
        for loaded in [yaml.safe_load(block)]
        if loaded.get("kind") == "PoolAutoscaler"
    ]
    result: dict[str, Any] = manifest
    return result


DOCUMENTED = [_minimal_from_notes, _minimal_from_readme]


@pytest.mark.parametrize("source", DOCUMENTED, ids=["notes", "readme"])
def test_the_documented_minimal_poolautoscaler_is_accepted(source: Any) -> None:
    manifest = source()
    assert manifest["kind"] == "PoolAutoscaler"
    assert manifest["spec"]["mode"] == "Recommend"
    assert admission_errors(manifest) == []


# One change to a valid example → the field the refusal must name.
MUTATIONS: list[tuple[str, Any, str]] = [
    ("spec.maxReplicas", 0, "spec.maxReplicas"),
    ("spec.maxReplicas", "8", "spec.maxReplicas"),
    ("spec.minReplicas", 99, "spec.minReplicas"),  # above maxReplicas: the CEL rule
    ("spec.minReplicas", -1, "spec.minReplicas"),
    ("spec.capacityPerReplica", -5, "spec.capacityPerReplica"),
    ("spec.mode", "enforce", "spec.mode"),
    ("spec.interval", "5 minutes", "spec.interval"),
    ("spec.sla.targetUtilization", 1.2, "spec.sla.targetUtilization"),
    ("spec.sla.maxShortfallProbability", 0, "spec.sla.maxShortfallProbability"),
    ("spec.indicators.0.level", 0, "spec.indicators.0.level"),
    ("spec.indicators.0.query", "", "spec.indicators.0.query"),
    ("spec.indicators.1.name", "gpu_seconds_demand", "spec.indicators"),  # duplicate key
    ("spec.target.name", None, "spec.target"),  # deleted: required
    ("spec.prometheus.url", "prometheus:9090", "spec.prometheus.url"),
    ("spec.replicas", 3, "spec"),  # unknown field
    ("spec.behavior.scaleDown.maxStep", 0, "spec.behavior.scaleDown.maxStep"),
]


def _mutate(manifest: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(manifest)
    *parents, last = path.split(".")
    node: Any = changed
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return changed


@pytest.mark.parametrize(("path", "value", "field"), MUTATIONS, ids=lambda item: str(item))
def test_a_one_field_change_is_refused_at_that_field(path: str, value: Any, field: str) -> None:
    manifest = _load(REPO / "examples" / "poolautoscaler-machinedeployment.yaml")
    assert admission_errors(manifest) == []
    errors = admission_errors(_mutate(manifest, path, value))
    assert errors, f"{path}={value!r} would be accepted"
    assert all(error.split(":", 1)[0].startswith(field) for error in errors), errors
