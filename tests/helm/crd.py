"""What the API server does with a PoolAutoscaler before storing it, for tests without one.

From the CRD the chart ships (as Helm loads it from `crds/`): apply the schema's defaults,
validate against the structural `openAPIV3Schema` (OpenAPI 3.0 keywords, so JSON Schema
draft 4 semantics; unknown fields rejected as `kubectl apply --validate=strict` does), keep
`x-kubernetes-list-type: map` keys unique, and evaluate every `x-kubernetes-validations` CEL
rule with a real CEL interpreter (cel-python).
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import celpy
import jsonschema
import yaml

from tests.helm.chart import chart

Schema = dict[str, Any]


@functools.cache
def crd() -> dict[str, Any]:
    (crd_file,) = chart().crds
    loaded: dict[str, Any] = yaml.safe_load(crd_file["data"])
    return loaded


def version_schema(version: str = "v1alpha1") -> Schema:
    (served,) = [item for item in crd()["spec"]["versions"] if item["name"] == version]
    schema: Schema = served["schema"]["openAPIV3Schema"]
    return schema


def _strict(schema: Schema) -> Schema:
    """A copy where objects with declared properties refuse undeclared ones."""
    schema = copy.deepcopy(schema)

    def close(node: Schema) -> None:
        if (
            node.get("type") == "object"
            and "properties" in node
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for child in node.get("properties", {}).values():
            close(child)
        if isinstance(node.get("items"), dict):
            close(node["items"])
        if isinstance(node.get("additionalProperties"), dict):
            close(node["additionalProperties"])

    close(schema)
    return schema


def _apply_defaults(schema: Schema, value: Any) -> None:
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                _apply_defaults(child, value[name])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _apply_defaults(schema["items"], item)


@functools.cache
def _program(rule: str) -> celpy.Runner:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def rule_errors(schema: Schema, value: Any, path: str = "") -> list[str]:
    """Messages of the CEL rules (and map-list keys) `value` breaks, each after its field."""
    errors = []
    for validation in schema.get("x-kubernetes-validations", []):
        verdict = _program(validation["rule"]).evaluate({"self": celpy.json_to_cel(value)})
        if not (isinstance(verdict, celpy.celtypes.BoolType) and bool(verdict)):
            field = path + validation.get("fieldPath", "")
            errors.append(f"{field}: {validation.get('message', validation['rule'])}")
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            if name in value:
                errors.extend(rule_errors(child, value[name], f"{path}.{name}".lstrip(".")))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        keys = schema.get("x-kubernetes-list-map-keys", [])
        if schema.get("x-kubernetes-list-type") == "map":
            seen = [tuple(item.get(key) for key in keys) for item in value]
            if len(seen) != len(set(seen)):
                errors.append(f"{path}: duplicate entries for key {keys}")
        for index, item in enumerate(value):
            errors.extend(rule_errors(schema["items"], item, f"{path}[{index}]"))
    return errors


def admission_errors(manifest: dict[str, Any]) -> list[str]:
    """Why the API server would refuse `manifest` (empty: it would store it)."""
    return schema_admission_errors(
        version_schema(manifest["apiVersion"].rsplit("/", 1)[-1]), manifest
    )


def schema_admission_errors(schema: Schema, manifest: dict[str, Any]) -> list[str]:
    """Why the API server would refuse `manifest` under the structural `schema` of any CRD."""
    defaulted = copy.deepcopy(manifest)
    _apply_defaults(schema, defaulted)
    validator = jsonschema.Draft4Validator(_strict(schema))
    errors = [
        f"{'.'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(defaulted)
    ]
    if errors:  # as in the API server, CEL rules run only on schema-valid objects
        return errors
    return rule_errors(schema, defaulted)
