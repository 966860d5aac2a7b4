"""Render the Harmony chart with Helm's own engine (helm-python-sdk), offline.

Every test of the chart goes through `render`, which caches each value set's output so
that the whole area renders each set once.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm" / "harmony"
RELEASE = "harmony"
NAMESPACE = "harmony-system"
# The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the newest with schemas.
KUBE_VERSIONS = ("1.30.0", "1.37.0")

Manifest = dict[str, Any]

# The value sets every render-level test runs over.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "postgres-secret": {
        "database": {"existingSecret": "prod-postgres", "urlKey": "DATABASE_URL"},
    },
    "redis-worker": {
        "redis": {"existingSecret": "prod-redis", "urlKey": "REDIS_URL"},
        "worker": {
            "replicas": 3,
            "concurrency": 4,
            "resources": {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"memory": "8Gi"}},
        },
    },
    "servicemonitor": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
    },
    "everything-on": {
        "redis": {"existingSecret": "prod-redis"},
        "prometheus": {"url": "http://prometheus-operated.monitoring.svc:9090"},
        "rbac": {"scaleTargets": {"Deployment": True, "StatefulSet": True}},
        "api": {
            "auth": {"existingSecret": "harmony-tokens"},
            "corsOrigins": ["https://dashboard.example.com"],
            "service": {"type": "LoadBalancer"},
        },
        "serviceMonitor": {"enabled": True},
        "networkPolicy": {
            "enabled": True,
            "apiFrom": [{"namespaceSelector": {"matchLabels": {"team": "ml-platform"}}}],
            "metricsFrom": [{"namespaceSelector": {"matchLabels": {"monitoring": "true"}}}],
        },
        "imagePullSecrets": [{"name": "registry"}],
        "operator": {"tolerations": [{"key": "dedicated", "operator": "Exists"}]},
    },
}


@functools.cache
def _chart() -> helm.Chart:
    return helm.Chart.load(CHART_DIR)


def chart() -> helm.Chart:
    """The chart as Helm loads it (templates, CRDs, schema)."""
    return _chart()


@functools.cache
def _render_json(values_json: str) -> dict[str, str]:
    return chart().render(
        json.loads(values_json), name=RELEASE, namespace=NAMESPACE, is_install=True
    )


def render_files(values: dict[str, Any]) -> dict[str, str]:
    """Template path → rendered text, as `helm template` produces them."""
    return dict(_render_json(json.dumps(values, sort_keys=True)))


def render(values: dict[str, Any]) -> list[Manifest]:
    """Every Kubernetes object the chart renders for `values` (hooks included, NOTES not)."""
    manifests: list[Manifest] = []
    for path, text in sorted(render_files(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        manifests.extend(document for document in yaml.safe_load_all(text) if document)
    return manifests


def find(manifests: list[Manifest], kind: str, component: str | None = None) -> list[Manifest]:
    """Objects of `kind` (and of the chart component, when given)."""
    return [
        manifest
        for manifest in manifests
        if manifest["kind"] == kind
        and (
            component is None
            or manifest["metadata"]["labels"].get("app.kubernetes.io/component") == component
        )
    ]


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    """(object name, pod spec) of every Deployment and Job."""
    for manifest in manifests:
        if manifest["kind"] in {"Deployment", "Job"}:
            yield manifest["metadata"]["name"], manifest["spec"]["template"]["spec"]


def kinds(manifests: list[Manifest]) -> list[str]:
    return sorted({manifest["kind"] for manifest in manifests})
