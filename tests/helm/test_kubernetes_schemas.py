"""Every rendered object validates against the Kubernetes schemas (kubernetes-validate).

Strict mode: an unknown field anywhere is an error, as with `kubectl apply --validate=strict`.
Checked against the oldest Kubernetes the chart declares and the newest with schemas.
"""

from __future__ import annotations

import functools
import json

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

from tests.helm.chart import KUBE_VERSIONS, NAMESPACE, VALUE_SETS, Manifest, chart, find, render

# Kinds from CRDs of other projects: kubernetes-validate ships no schema for them; each is
# checked below by hand instead.
CRD_KINDS = {"ServiceMonitor"}


@functools.cache
def _problem(manifest_json: str, kube_version: str) -> str | None:
    """The validation error of one object, or None; cached, as value sets share most objects."""
    try:
        kubernetes_validate.validate(json.loads(manifest_json), kube_version, strict=True)
    except kubernetes_validate.ValidationError as error:
        return f"at {'.'.join(str(part) for part in error.path)}: {error.message}"
    return None


def _validate(manifest: Manifest, kube_version: str) -> str | None:
    return _problem(json.dumps(manifest, sort_keys=True), kube_version)


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_rendered_object_validates(name: str, kube_version: str) -> None:
    checked = 0
    for manifest in render(VALUE_SETS[name]):
        where = f"{manifest['kind']}/{manifest['metadata']['name']}"
        if manifest["kind"] in CRD_KINDS:
            with pytest.raises(SchemaNotFoundError):
                kubernetes_validate.validate(manifest, kube_version, strict=True)
            continue
        problem = _validate(manifest, kube_version)
        assert problem is None, f"{where} {problem}"
        checked += 1
    assert checked >= 12


def test_a_broken_object_is_caught() -> None:
    (deployment,) = find(render({}), "Deployment", "operator")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonRot"] = True
    assert "runAsNonRot" in str(_validate(broken, KUBE_VERSIONS[-1]))
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["replicas"] = "2"
    assert _validate(broken, KUBE_VERSIONS[-1]) is not None


def test_the_crd_the_chart_ships_validates() -> None:
    (crd_file,) = chart().crds
    crd = yaml.safe_load(crd_file["data"])
    for kube_version in KUBE_VERSIONS:
        kubernetes_validate.validate(crd, kube_version, strict=True)


def test_service_monitor_scrapes_the_operators_metrics_service() -> None:
    manifests = render(VALUE_SETS["servicemonitor"])
    (monitor,) = find(manifests, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    assert set(spec) == {"namespaceSelector", "selector", "endpoints"}
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    selected = [
        service
        for service in find(manifests, "Service")
        if spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    ]
    assert [service["metadata"]["name"] for service in selected] == ["harmony-operator-metrics"]
    (endpoint,) = spec["endpoints"]
    assert set(endpoint) == {"port", "path", "interval"}
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {port["name"] for port in selected[0]["spec"]["ports"]}
    assert endpoint["interval"] == "30s"
