"""Every pod the chart runs: hardened, probed, sized, and configured only through Secrets
for anything secret, with settings the application actually reads."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from api.deps import Scope, parse_tokens
from controller.settings import Settings
from tests.helm.chart import VALUE_SETS, find, pod_specs, render

SECRET_SETTINGS = {"HARMONY_DATABASE_URL", "HARMONY_REDIS_URL", "HARMONY_API_TOKENS"}


def _containers(values: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(object name, pod spec, container) of every container the chart runs."""
    return [
        (name, spec, container)
        for name, spec in pod_specs(render(values))
        for container in [*spec.get("initContainers", []), *spec["containers"]]
    ]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_pods_run_as_non_root_with_a_read_only_root_and_no_capabilities(name: str) -> None:
    for owner, spec, container in _containers(VALUE_SETS[name]):
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, owner
        assert pod_security["runAsUser"] > 0, owner
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, owner
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True, owner
        assert security["readOnlyRootFilesystem"] is True, owner
        assert security["allowPrivilegeEscalation"] is False, owner
        assert security["capabilities"] == {"drop": ["ALL"]}, owner
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, owner
        assert not security.get("privileged", False), owner
        assert spec.get("hostNetwork") is None and spec.get("hostPID") is None, owner


@pytest.mark.parametrize("name", VALUE_SETS)
def test_tmp_and_the_model_cache_are_the_only_writable_places(name: str) -> None:
    for owner, spec, container in _containers(VALUE_SETS[name]):
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        assert set(mounts) == {"/tmp", "/var/cache/harmony/models"}, owner
        for volume_name in mounts.values():
            assert set(volumes[volume_name]) == {"name", "emptyDir"}, owner
            assert volumes[volume_name]["emptyDir"]["sizeLimit"], owner
        env = {variable["name"]: variable.get("value") for variable in container["env"]}
        assert env["HARMONY_MODEL_DIR"] == "/var/cache/harmony/models"
        assert env["HARMONY_DATA_DIR"].startswith("/tmp/")


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_container_has_requests_and_a_memory_limit(name: str) -> None:
    for owner, _, container in _containers(VALUE_SETS[name]):
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), owner
        assert "memory" in container["resources"]["limits"], owner


def test_operator_and_api_are_probed_on_healthz_and_readyz() -> None:
    manifests = render({})
    for component, port_name in (("operator", "http-metrics"), ("api", "http")):
        (deployment,) = find(manifests, "Deployment", component)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert port_name in {port["name"] for port in container["ports"]}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port_name}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port_name}


def test_operator_replicas_spread_over_nodes() -> None:
    (operator,) = find(render({}), "Deployment", "operator")
    affinity = operator["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (term,) = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"] == operator["spec"]["selector"]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_secret_settings_come_only_from_secrets(name: str) -> None:
    values = VALUE_SETS[name]
    for owner, _, container in _containers(values):
        for variable in container["env"]:
            if variable["name"] in SECRET_SETTINGS:
                assert "value" not in variable, f"{owner}: {variable['name']} in plain text"
                assert set(variable["valueFrom"]) == {"secretKeyRef"}, owner
    database = {"existingSecret": "harmony-database", "urlKey": "url", **values.get("database", {})}
    for owner, _, container in _containers(values):
        references = {
            variable["name"]: variable["valueFrom"]["secretKeyRef"]
            for variable in container["env"]
            if "valueFrom" in variable and "secretKeyRef" in variable["valueFrom"]
        }
        assert references["HARMONY_DATABASE_URL"] == {
            "name": database["existingSecret"],
            "key": database["urlKey"],
        }, owner
        assert ("HARMONY_REDIS_URL" in references) == ("redis" in values), owner


def test_only_the_api_reads_the_tokens() -> None:
    for owner, _, container in _containers(VALUE_SETS["redis-worker"]):
        names = {variable["name"] for variable in container["env"]}
        assert ("HARMONY_API_TOKENS" in names) == (container["name"] == "api"), owner


def test_a_generated_token_secret_holds_an_admin_and_a_read_token() -> None:

    manifests = render({})
    (secret,) = find(manifests, "Secret")
    data = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    tokens = parse_tokens([SecretStr(entry) for entry in data["tokens"].split(",")])
    assert tokens == [(data["admin-token"], Scope.admin), (data["read-token"], Scope.read)]
    assert all(len(token) >= 40 and token.isalnum() for token, _ in tokens)
    (api,) = find(manifests, "Deployment", "api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    (variable,) = [item for item in container["env"] if item["name"] == "HARMONY_API_TOKENS"]
    reference = {"name": secret["metadata"]["name"], "key": "tokens"}
    assert variable["valueFrom"]["secretKeyRef"] == reference


@pytest.mark.parametrize("name", VALUE_SETS)
def test_the_environment_is_settings_the_application_accepts(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fields = {f"HARMONY_{field.upper()}" for field in Settings.model_fields}
    for owner, _, container in _containers(VALUE_SETS[name]):
        env = {}
        for variable in container["env"]:
            if variable["name"].startswith("HARMONY_"):
                assert variable["name"] in fields, f"{owner}: {variable['name']} is no setting"
            # what a Secret would hold, in the shape the application expects
            placeholder = {
                "HARMONY_DATABASE_URL": "postgresql+psycopg://harmony:pw@db:5432/harmony",
                "HARMONY_REDIS_URL": "redis://:pw@redis:6379/0",
                "HARMONY_API_TOKENS": "admin:abc,read:def",
            }
            env[variable["name"]] = variable.get("value", placeholder.get(variable["name"], "x"))
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        try:
            settings = Settings()
        except ValidationError as error:
            pytest.fail(f"{owner}: the chart's environment is rejected: {error}", pytrace=False)
        assert settings.log_format.value == "json"
        assert str(settings.model_dir) == "/var/cache/harmony/models"
        if name == "everything-on":
            assert settings.prometheus_url == "http://prometheus-operated.monitoring.svc:9090"
            if container["name"] == "api":
                assert settings.api_cors_origins == ["https://dashboard.example.com"]
