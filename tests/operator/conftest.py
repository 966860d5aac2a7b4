"""Real parts for the operator's end-to-end tests.

- `kube`: kmock's Kubernetes emulator on loopback serving the PoolAutoscaler CRD, a
  Deployment with `/scale`, Leases, Events and Nodes, plus a kubeconfig pointing at it;
  a small "deployment controller" copies `spec.replicas` to `status.replicas`.
- `demand_prometheus`: Debian's Prometheus over a TSDB built with `promtool` holding a
  square wave of demand on a 2-second grid from 30 minutes ago to 10 minutes ahead, so the
  operator reads "live" data with the real clock.
- `operator_db`: a fresh PostgreSQL database at the newest schema (the lead's fixtures),
  holding a tiny real forecaster trained on that square wave.
- `start_operator`: runs `harmony operator` as a process; killed at teardown.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import kmock
import pytest
import pytest_asyncio
import yaml

from bench.soak.kube import CRD, DEPLOYMENTS, declare_resources
from tests.conftest import PostgresServer
from tests.operator.helpers import PERIOD, square_wave
from tests.prometheus import RunningPrometheus, free_port, start_prometheus

E2E_STEP = dt.timedelta(seconds=2)
NAMESPACE = "fleet"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Kube:
    mock: Any
    url: str
    kubeconfig: Path
    history: list[tuple[float, int]] = field(default_factory=list)

    def add_deployment(self, name: str, replicas: int) -> None:
        self.mock.objects[DEPLOYMENTS, NAMESPACE, name] = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": NAMESPACE, "resourceVersion": "1"},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas},
        }

    def replicas(self, name: str) -> int:
        return int(self.mock.objects[DEPLOYMENTS, NAMESPACE, name].raw["spec"]["replicas"])

    def pool(self, name: str) -> dict[str, Any]:
        return dict(self.mock.objects[CRD, NAMESPACE, name].raw)

    def scale_patches(self, name: str) -> list[Any]:
        suffix = f"/deployments/{name}/scale"
        return [r for r in self.mock if r.method == "PATCH" and r.url.path.endswith(suffix)]

    async def create_pool(self, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": "autoscaling.harmony.dev/v1alpha1",
            "kind": "PoolAutoscaler",
            # kopf's JSON patches test the resourceVersion they saw; kmock keeps it as given.
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "generation": 1,
                "resourceVersion": "1",
            },
            "spec": spec,
        }
        path = f"/apis/autoscaling.harmony.dev/v1alpha1/namespaces/{NAMESPACE}/poolautoscalers"
        async with httpx.AsyncClient(base_url=self.url) as client:
            response = await client.post(path, json=body)
            assert response.status_code < 300, response.text


class VersionedEmulator(kmock.KubernetesEmulator):  # type: ignore[misc]
    """kmock's emulator plus what a real API server does on writes: a new
    `resourceVersion` on every write (kopf waits to see its own writes come back with one),
    and a `uid` and `creationTimestamp` on create (kopf keys its per-object memory, and so
    each object's timer, by uid: without one, every object would share one timer)."""

    _versions = itertools.count(100)

    async def _handle(self, request: Any) -> Any:
        if request.resource is not None and request.action in (
            kmock.action.CREATE,
            kmock.action.UPDATE,
        ):
            version = str(next(self._versions))
            data = request.data
            if isinstance(data, dict):
                metadata = {**(data.get("metadata") or {}), "resourceVersion": version}
                if request.action == kmock.action.CREATE:
                    metadata.setdefault("uid", str(uuid.uuid4()))
                    metadata.setdefault(
                        "creationTimestamp",
                        dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    )
                data = {**data, "metadata": metadata}
            elif isinstance(data, list):
                # Optimistic-concurrency tests are the API server's job; kmock answers a
                # failed one with a 500 that kopf retries forever, so they are left out.
                data = [op for op in data if op.get("path") != "/metadata/resourceVersion"]
                data.append({"op": "add", "path": "/metadata/resourceVersion", "value": version})
            object.__setattr__(request, "data", data)  # the parsed request is frozen
        return await super()._handle(request)


async def _mirror_replicas(mock: Any) -> None:
    """What the Deployment controller would do: report every desired replica as present."""
    while True:
        for (resource, namespace, name), obj in list(mock.objects.items()):
            if str(resource).startswith("apps/v1") or "deployments" in str(resource):
                raw = obj.raw
                desired = raw.get("spec", {}).get("replicas")
                if raw.get("status", {}).get("replicas") != desired:
                    mock.objects[DEPLOYMENTS, namespace, name] = {
                        **raw,
                        "status": {"replicas": desired},
                    }
        await asyncio.sleep(0.2)


async def _nudge_pools(mock: Any, url: str) -> None:
    """kmock's watch can miss writes made while it streams the initial listing (a real API
    server resumes from a resourceVersion); touching every PoolAutoscaler now and then gives
    kopf a fresh event, as an informer's resync would."""
    async with httpx.AsyncClient(base_url=url) as client:
        for round_number in itertools.count():
            # Often while operators start, rarely after: each touch is work for kopf.
            await asyncio.sleep(1.0 if round_number < 10 else 10.0)
            for (resource, namespace, name), obj in list(mock.objects.items()):
                if "poolautoscalers" not in str(resource) or obj.deleted:
                    continue
                path = (
                    f"/apis/autoscaling.harmony.dev/v1alpha1/namespaces/{namespace}"
                    f"/poolautoscalers/{name}"
                )
                await client.patch(
                    path,
                    json={
                        "metadata": {
                            "annotations": {"test.harmony.dev/resync": str(time.monotonic())}
                        }
                    },
                    headers={"Content-Type": "application/merge-patch+json"},
                )


@pytest_asyncio.fixture
async def kube(tmp_path: Path) -> AsyncIterator[Kube]:
    async with VersionedEmulator() as mock, kmock.Server(mock) as server:
        declare_resources(mock)
        mock.resources["v1/events"] = kmock.ResourceInfo(
            kind="Event", namespaced=True, verbs={"create"}
        )
        mock.resources["v1/nodes"] = kmock.ResourceInfo(
            kind="Node", namespaced=False, verbs={"get", "list"}
        )
        # kopf discovers resources and watches CRDs and namespaces for changes.
        mock.resources["apiextensions.k8s.io/v1/customresourcedefinitions"] = kmock.ResourceInfo(
            kind="CustomResourceDefinition", namespaced=False, verbs={"list", "watch"}
        )
        mock.resources["v1/namespaces"] = kmock.ResourceInfo(
            kind="Namespace", namespaced=False, verbs={"list", "watch"}
        )
        url = str(server.url).rstrip("/")
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "kmock", "cluster": {"server": url}}],
                    "users": [{"name": "tester", "user": {"token": "kmock"}}],
                    "contexts": [
                        {"name": "kmock", "context": {"cluster": "kmock", "user": "tester"}}
                    ],
                    "current-context": "kmock",
                }
            )
        )
        helpers = [
            asyncio.create_task(_mirror_replicas(mock)),
            asyncio.create_task(_nudge_pools(mock, url)),
        ]
        try:
            yield Kube(mock=mock, url=url, kubeconfig=kubeconfig)
        finally:
            for helper in helpers:
                helper.cancel()


@pytest.fixture
def demand_prometheus(tmp_path: Path) -> Iterator[RunningPrometheus]:
    step = E2E_STEP.total_seconds()
    first = (time.time() // step) * step - 30 * 60
    rows = int(40 * 60 / step)
    wave = square_wave(dt.datetime.fromtimestamp(first, tz=dt.UTC), rows, E2E_STEP)
    lines = ["# TYPE harmony_e2e_demand gauge"]
    for stamp, value in zip(wave.timestamps(), wave.values[:, 0], strict=True):
        lines.append(f'harmony_e2e_demand{{pool="p1"}} {float(value)!r} {stamp:.0f}')
    lines.append("# EOF")
    (tmp_path / "demand.om").write_text("\n".join(lines) + "\n")
    server = start_prometheus(tmp_path / "demand.om", tmp_path)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_model_artifact() -> bytes:
    """A real forecaster (a few thousand parameters) trained on the square wave (~10 s)."""
    import torch

    from forecaster import ForecasterConfig, train_forecaster

    torch.set_num_threads(1)
    wave = square_wave(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 1500, E2E_STEP)
    config = ForecasterConfig(
        context_length=PERIOD,
        horizon=4,
        d_model=16,
        num_heads=2,
        feedforward=32,
        context_features=16,
        flow_layers=1,
        flow_hidden=16,
        max_epochs=15,
        patience=3,
        windows_per_epoch=1024,
        num_threads=1,
        accelerator="cpu",
        calendar=False,
        max_train_seconds=60,
    )
    model = train_forecaster(wave.values, wave.timestamps(), [1], config, names=["demand"])
    return model.to_bytes()


@pytest.fixture
def operator_db(postgres: PostgresServer, _migrated_postgres_template: str) -> Iterator[str]:
    name = postgres.create(template=_migrated_postgres_template)
    yield postgres.url_for(name)
    postgres.drop(name)


def store_model(database_url: str, pool_name: str, artifact: bytes) -> None:
    """Put the model in the state store as the operator's trainer would have."""
    from controller.state.db import create_engine_for, make_session_factory
    from controller.state.models import ModelVersion, Pool

    engine = create_engine_for(database_url)
    now = dt.datetime.now(dt.UTC)
    with make_session_factory(engine).begin() as session:
        pool = Pool(
            namespace=NAMESPACE, name=pool_name, created_at=now, updated_at=now, spec={}, status={}
        )
        session.add(pool)
        session.flush()
        session.add(
            ModelVersion(
                pool_id=pool.id,
                name=f"{pool_name}-tiny",
                kind="harmony-flow",
                created_at=now,
                artifact=artifact,
                artifact_sha256=hashlib.sha256(artifact).hexdigest(),
            )
        )
    engine.dispose()


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes]
    log_path: Path
    health_port: int

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_operator(kube: Kube, tmp_path: Path) -> Iterator[Callable[..., OperatorProcess]]:
    started: list[OperatorProcess] = []

    def start(database_url: str, *extra: str, prometheus_url: str = "") -> OperatorProcess:
        number = len(started)
        log_path = tmp_path / f"operator-{number}.log"
        port = free_port()
        env = {
            **os.environ,
            "KUBECONFIG": str(kube.kubeconfig),
            "HARMONY_DATABASE_URL": database_url,
            "HARMONY_PROMETHEUS_URL": prometheus_url,
            "HARMONY_LOG_LEVEL": os.environ.get("HARMONY_TEST_OPERATOR_LOG_LEVEL", "INFO"),
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        command = [
            sys.executable,
            "-m",
            "controller.cli.main",
            "operator",
            "--tick",
            "0.5",
            "--lease-seconds",
            "4",
            "--renew-seconds",
            "1",
            "--health-port",
            str(port),
            "--no-train",
            "--samples",
            "100",
            "--gather",
            "0.05",
            "--identity",
            f"operator-{number}",
            *extra,
        ]
        process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=log_path.open("wb"), stderr=subprocess.STDOUT
        )
        handle = OperatorProcess(process=process, log_path=log_path, health_port=port)
        started.append(handle)
        return handle

    yield start
    for handle in started:
        handle.kill()
