"""values.schema.json rejects wrong types and unknown keys with a message naming the value."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.helm.chart import CHART_DIR, NAMESPACE, RELEASE, chart

SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text())
VALUES_TEXT = (CHART_DIR / "values.yaml").read_text()

# (a `helm install --set` expression, the path Helm's message must name, what it must say)
BAD_VALUES: list[tuple[str, str, str]] = [
    ("database.url=postgresql://u:pw@db/harmony", "/database", "'url' not allowed"),
    ("database.existingSecret=", "/database/existingSecret", "minLength"),
    ("api.auth.tokens=admin:secret", "/api/auth", "'tokens' not allowed"),
    ("operator.replicas=two", "/operator/replicas", "want integer"),
    ("operator.replicas=0", "/operator/replicas", "minimum"),
    ("worker.concurency=4", "/worker", "'concurency' not allowed"),
    ("api.service.type=Ingress", "/api/service/type", "must be one of"),
    ("api.port=70000", "/api/port", "maximum"),
    ("rbac.scaleTargets.Pod=true", "/rbac/scaleTargets", "'Pod' not allowed"),
    ("rbac.scaleTargets.Deployment=yes", "/rbac/scaleTargets/Deployment", "want boolean"),
    ("logging.level=TRACE", "/logging/level", "must be one of"),
    ("operator.resources.limits.memroy=1Gi", "/operator/resources/limits", "'memroy' not allowed"),
    ("worker.resources.requests.cpu=lots", "/worker/resources/requests/cpu", "match pattern"),
    ("serviceMonitor.enabled=on", "/serviceMonitor/enabled", "want boolean"),
    ("prometheus.url=prometheus:9090", "/prometheus/url", "does not match pattern"),
    ("api.podAnnotations.team=7", "/api/podAnnotations/team", "want string"),
    ("retentionDays=0", "/retentionDays", "exclusiveMinimum"),
    ("imagepullSecrets[0].name=registry", "", "'imagepullSecrets' not allowed"),
]


@pytest.mark.parametrize(("expression", "path", "complaint"), BAD_VALUES, ids=lambda x: x)
def test_values_breaking_the_schema_are_rejected_with_a_message(
    expression: str, path: str, complaint: str
) -> None:
    values = helm.parse_set_string(expression)
    with pytest.raises(helm.HelmValuesError) as rejected:
        chart().render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    message = str(rejected.value)
    assert f"at '{path}'" in message
    assert complaint in message


def test_lint_reports_values_breaking_the_schema_as_errors() -> None:
    report = helm.lint(CHART_DIR, {"operator": {"replicas": "two"}})
    assert any("/operator/replicas" in error for error in report["errors"])


def test_the_default_values_pass_their_own_schema() -> None:
    chart().validate_schema(chart().values)
    assert chart().values == yaml.safe_load(VALUES_TEXT)


def _objects(schema: dict[str, Any], where: str = "") -> list[tuple[str, dict[str, Any]]]:
    """(path, schema) of every object schema, paths like /operator/resources or /definitions/x."""
    found = []
    if schema.get("type") == "object" or "properties" in schema:
        found.append((where or "/", schema))
    for name, child in schema.get("properties", {}).items():
        found.extend(_objects(child, f"{where}/{name}"))
    for key in ("definitions", "patternProperties"):
        for name, child in schema.get(key, {}).items():
            found.extend(_objects(child, f"{where}/{key}/{name}"))
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            found.extend(_objects(schema[key], f"{where}/{key}"))
    return found


# Kubernetes' own free-form types, passed through to the pod spec as they are.
KUBERNETES_PASSTHROUGH = {
    "/definitions/affinity",
    "/definitions/tolerations/items",
    "/definitions/peers/items",
    "/definitions/stringMap",
    "/global",
}


def test_every_object_of_the_schema_closes_its_keys() -> None:
    for where, schema in _objects(SCHEMA):
        if where in KUBERNETES_PASSTHROUGH:
            continue
        assert schema.get("additionalProperties") is False, f"{where} allows any key"
    assert SCHEMA["definitions"]["stringMap"]["additionalProperties"] == {"type": "string"}


def _is_resource_list(value: object) -> bool:
    return isinstance(value, dict) and all(
        key in {"cpu", "memory", "ephemeral-storage"} or "/" in key for key in value
    )


def _value_paths(values: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of every value; a resource list (cpu, memory) counts as one value."""
    paths = []
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and value and not _is_resource_list(value):
            paths.extend(_value_paths(value, path))
        else:
            paths.append(path)
    return paths


def _schema_at(path: str) -> dict[str, Any]:
    node: dict[str, Any] = SCHEMA
    for part in path.split("."):
        node = node["properties"][part]
        while "$ref" in node:
            node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _key_lines(lines: list[str]) -> dict[str, int]:
    """Dotted path → line number of every key in values.yaml (two-space indentation)."""
    found: dict[str, int] = {}
    stack: list[str] = []
    for number, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][\w./-]*):", line)
        if not match:
            continue
        depth = len(match.group(1)) // 2
        stack = [*stack[:depth], match.group(2)]
        found[".".join(stack)] = number
    return found


def test_every_value_has_a_comment_and_a_schema() -> None:
    lines = VALUES_TEXT.splitlines()
    key_lines = _key_lines(lines)
    for path in _value_paths(yaml.safe_load(VALUES_TEXT)):
        above = lines[key_lines[path] - 1].strip()
        assert above.startswith("#"), f"values.yaml: {path} has no comment above it"
        assert _schema_at(path), f"values.schema.json has no schema for {path}"
