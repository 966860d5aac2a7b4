"""An upgrade keeps the API tokens the chart generated on install.

The token Secret template asks the cluster (`lookup`) for the Secret of an earlier install.
Here Helm's engine renders against kmock's Kubernetes API on loopback, as `helm upgrade`
would against a cluster, so the lookup really goes over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from typing import Any

import helm_python as helm
import kmock
import pytest_asyncio
import yaml

from tests.helm.chart import NAMESPACE, RELEASE, chart, render_files

SECRET_TEMPLATE = "harmony/templates/api-tokens-secret.yaml"
SECRETS = "v1/secrets"


@pytest_asyncio.fixture
async def cluster() -> AsyncIterator[tuple[Any, helm.Config]]:
    async with kmock.KubernetesEmulator() as mock, kmock.Server(mock) as server:
        mock.resources[SECRETS] = kmock.ResourceInfo(
            kind="Secret", namespaced=True, verbs={"get", "list"}
        )
        with helm.Config(kube_apiserver=str(server.url).rstrip("/"), namespace=NAMESPACE) as config:
            yield mock, config


async def _rendered_secret(config: helm.Config, *, upgrade: bool) -> dict[str, Any]:
    files = await asyncio.to_thread(
        config.render,
        chart(),
        {},
        name=RELEASE,
        namespace=NAMESPACE,
        is_install=not upgrade,
        is_upgrade=upgrade,
    )
    secret: dict[str, Any] = yaml.safe_load(files[SECRET_TEMPLATE])
    return secret


def _decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


async def test_an_upgrade_renders_the_tokens_the_install_generated(
    cluster: tuple[Any, helm.Config],
) -> None:
    mock, config = cluster
    installed = await _rendered_secret(config, upgrade=False)
    name = installed["metadata"]["name"]
    mock.objects[SECRETS, NAMESPACE, name] = installed
    upgraded = await _rendered_secret(config, upgrade=True)
    assert upgraded["data"] == installed["data"]
    lookups = [request for request in mock if request.url.path.endswith(f"/secrets/{name}")]
    assert len(lookups) == 2


async def test_tokens_an_admin_rotated_in_the_secret_survive_an_upgrade(
    cluster: tuple[Any, helm.Config],
) -> None:
    mock, config = cluster
    installed = await _rendered_secret(config, upgrade=False)
    rotated = {"admin-token": "rotatedAdmin0123456789", "read-token": "rotatedRead0123456789"}
    edited = {
        **installed,
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in rotated.items()},
    }
    mock.objects[SECRETS, NAMESPACE, installed["metadata"]["name"]] = edited
    tokens = _decoded(await _rendered_secret(config, upgrade=True))
    assert tokens["tokens"] == "admin:rotatedAdmin0123456789,read:rotatedRead0123456789"


def test_without_a_cluster_each_render_generates_new_tokens() -> None:
    # what the lookup guards against: offline, every render draws new random tokens
    first = yaml.safe_load(chart().render({}, name=RELEASE, namespace=NAMESPACE)[SECRET_TEMPLATE])
    second = yaml.safe_load(render_files({})[SECRET_TEMPLATE])
    assert first["data"]["admin-token"] != second["data"]["admin-token"]
