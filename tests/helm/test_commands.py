"""The commands the chart's containers run are real `harmony` commands: their arguments
parse with the CLI itself, and the migration Job and the worker, run exactly as the chart
runs them, work against the real PostgreSQL and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import typer
from sqlalchemy import inspect

from controller.cli.main import app, main
from controller.settings import get_settings
from controller.state.db import create_engine_for
from tests.conftest import PostgresServer
from tests.helm.chart import VALUE_SETS, find, pod_specs, render

HARMONY = Path(sys.executable).parent / "harmony"
POD_NAME = "harmony-operator-5d8f7c9b6-x2k4q"


def _argv(container: dict[str, Any]) -> list[str]:
    assert container["command"] == ["harmony"], container["name"]
    # Kubernetes expands $(VAR) in args from the container's env
    return [arg.replace("$(POD_NAME)", POD_NAME) for arg in container["args"]]


def _parse(argv: list[str]) -> list[str]:
    """Parse argv with the harmony CLI without running it; the chosen command path."""
    command: Any = typer.main.get_command(app)
    context = command.make_context("harmony", list(argv))
    path = []
    while hasattr(command, "resolve_command"):
        # click keeps a group's subcommand name apart from the rest (protected args)
        protected = getattr(context, "protected_args", None)
        if protected is None:
            protected = context._protected_args
        name, command, rest = command.resolve_command(context, [*protected, *context.args])
        path.append(name)
        context = command.make_context(name, rest, parent=context)
    return path


def test_every_container_runs_a_harmony_command_with_arguments_it_accepts() -> None:
    commands = {}
    for _, spec in pod_specs(render(VALUE_SETS["everything-on"])):
        for container in spec["containers"]:
            commands[container["name"]] = _parse(_argv(container))
    assert commands == {
        "operator": ["operator"],
        "api": ["api"],
        "worker": ["worker"],
        "migrate": ["db", "upgrade"],
    }


def test_a_misspelt_argument_would_be_caught() -> None:
    with pytest.raises(Exception, match="--helth-port"):
        _parse(["operator", "--helth-port=8080"])


def test_operator_elects_its_leader_with_a_lease_in_the_release_namespace() -> None:
    (operator,) = find(render({}), "Deployment", "operator")
    (container,) = operator["spec"]["template"]["spec"]["containers"]
    args = _argv(container)
    assert "--leader-election" in args
    assert "--lease-namespace=harmony-system" in args
    assert f"--identity={POD_NAME}" in args
    assert "--health-port=8080" in args
    env = {variable["name"]: variable for variable in container["env"]}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def _environment(container: dict[str, Any], secrets: dict[str, str], tmp: Path) -> dict[str, str]:
    """The container's environment, Secret references resolved to what the Secrets hold."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp)}
    for variable in container["env"]:
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        elif "secretKeyRef" in variable.get("valueFrom", {}):
            env[variable["name"]] = secrets[variable["valueFrom"]["secretKeyRef"]["name"]]
    # the pod's emptyDir mounts, here in a temporary folder
    env["HARMONY_DATA_DIR"] = str(tmp / "data")
    env["HARMONY_MODEL_DIR"] = str(tmp / "models")
    env["XDG_CACHE_HOME"] = str(tmp / "cache")
    return env


def _run_in_process(argv: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> int:
    """`harmony ARGV` in this process with exactly the container's HARMONY_* environment."""
    for name in [name for name in os.environ if name.startswith("HARMONY_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return main(argv)


@pytest.mark.postgres
def test_the_migration_job_upgrades_a_real_postgres(
    postgres: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = postgres.create()
    url = postgres.url_for(database)
    (job,) = find(render(VALUE_SETS["postgres-secret"]), "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    env = _environment(container, {"prod-postgres": url}, tmp_path)
    assert _run_in_process(_argv(container), env, monkeypatch) == 0
    engine = create_engine_for(url)
    try:
        assert {"pools", "decisions", "alembic_version"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
        postgres.drop(database)


@pytest.mark.redis
@pytest.mark.slow
def test_the_worker_deployment_serves_celery_on_a_real_redis(
    redis_url: str, tmp_path: Path
) -> None:
    from controller.tasks import make_celery

    (worker,) = find(render(VALUE_SETS["redis-worker"]), "Deployment", "worker")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    secrets = {"harmony-database": "sqlite://", "prod-redis": redis_url}
    env = _environment(container, secrets, tmp_path)
    argv = _argv(container)
    argv[argv.index("--concurrency") + 1] = "1"  # one process is enough to answer
    process = subprocess.Popen(
        [str(HARMONY), *argv], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        client = make_celery(redis_url)
        replies: list[Any] = []
        deadline = time.monotonic() + 60
        while not replies and time.monotonic() < deadline and process.poll() is None:
            replies = client.control.ping(timeout=1.0)
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        assert replies and next(iter(replies[0].values())) == {"ok": "pong"}
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_worker_refuses_to_start_without_a_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (worker,) = find(render(VALUE_SETS["redis-worker"]), "Deployment", "worker")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    env = _environment(container, {"harmony-database": "sqlite://", "prod-redis": ""}, tmp_path)
    assert _run_in_process(_argv(container), env, monkeypatch) == 1
    assert "set HARMONY_REDIS_URL" in capsys.readouterr().err
