"""The CRD's schema accepts the example manifests and rejects the broken ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from controller.operator.permissions import (
    CRD_GROUP,
    CRD_KIND,
    CRD_PLURAL,
    CRD_VERSION,
    LEADER_ELECTION_RULES,
    OPERATOR_RULES,
    SCALE_TARGETS,
    TARGET_KINDS,
    scale_target_rules,
)
from tests.helm.crd import rule_errors

REPO = Path(__file__).resolve().parents[2]
CRD_PATH = REPO / "helm" / "harmony" / "crds" / f"{CRD_PLURAL}.{CRD_GROUP}.yaml"
EXAMPLES = sorted((REPO / "examples").glob("poolautoscaler-*.yaml"))
INVALID = sorted((REPO / "examples" / "invalid").glob("*.yaml"))


def _crd() -> dict[str, Any]:
    return dict(yaml.safe_load(CRD_PATH.read_text()))


def _version() -> dict[str, Any]:
    (version,) = [v for v in _crd()["spec"]["versions"] if v["name"] == CRD_VERSION]
    return dict(version)


def _schema_errors(manifest: dict[str, Any]) -> list[str]:
    schema = _version()["schema"]["openAPIV3Schema"]
    # Kubernetes' structural schemas use draft-4 style boolean exclusiveMinimum.
    validator = jsonschema.Draft4Validator(schema)
    errors = [error.message for error in validator.iter_errors(manifest)]
    if errors:  # as in the API server, CEL rules run only on schema-valid objects
        return errors
    # The CEL rules, evaluated by a real CEL interpreter as the API server would.
    return rule_errors(schema, manifest)


def test_crd_names_and_subresources() -> None:
    crd = _crd()
    assert crd["metadata"]["name"] == f"{CRD_PLURAL}.{CRD_GROUP}"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["kind"] == CRD_KIND
    assert crd["spec"]["names"]["shortNames"] == ["pas"]
    version = _version()
    assert version["subresources"] == {"status": {}}
    columns = {column["name"] for column in version["additionalPrinterColumns"]}
    assert {"Target", "Replicas", "Recommended", "Shortfall", "Mode", "Age"} <= columns


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_examples_are_accepted(path: Path) -> None:
    manifest = yaml.safe_load(path.read_text())
    assert manifest["kind"] == CRD_KIND
    assert _schema_errors(manifest) == []
    assert manifest["spec"]["target"]["kind"] in TARGET_KINDS


@pytest.mark.parametrize("path", INVALID, ids=lambda path: path.name)
def test_broken_examples_are_rejected(path: Path) -> None:
    assert _schema_errors(yaml.safe_load(path.read_text())), f"{path.name} was accepted"


def test_examples_cover_the_four_kinds_of_target() -> None:
    kinds = {yaml.safe_load(path.read_text())["spec"]["target"]["kind"] for path in EXAMPLES}
    assert kinds == {"MachineDeployment", "NodePool", "Deployment", "CapacityBuffer"}


def test_rules_name_every_scale_target_once() -> None:
    rules = scale_target_rules()
    resources = sorted(resource for rule in rules for resource in rule["resources"])
    assert resources == sorted(f"{resource}/scale" for _, resource in SCALE_TARGETS.values())
    assert all(rule["verbs"] == ["get", "patch"] for rule in rules)
    assert scale_target_rules(["Deployment"]) == [
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "patch"]}
    ]
    with pytest.raises(ValueError, match="Unicorn"):
        scale_target_rules(["Unicorn"])
    granted = {
        (group, resource)
        for rule in OPERATOR_RULES
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert (CRD_GROUP, f"{CRD_PLURAL}/status") in granted
    assert LEADER_ELECTION_RULES[0]["resources"] == ["leases"]
