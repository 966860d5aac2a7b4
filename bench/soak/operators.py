"""`harmony operator` processes for the soak: each with a kubeconfig of its own (its bearer
token is its identity, so the API's log tells which process made each request), all on
the same accelerated clock and Lease."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from controller.clock import ScaledClock

REPO = Path(__file__).resolve().parents[2]


@dataclass
class OperatorProcess:
    identity: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def write_kubeconfig(path: Path, server: str, token: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "kmock", "cluster": {"server": server}}],
                "users": [{"name": token, "user": {"token": token}}],
                "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": token}}],
                "current-context": "kmock",
            }
        )
    )
    return path


@dataclass
class OperatorLauncher:
    folder: Path
    api_url: str
    database_url: str
    clock: ScaledClock
    tick_seconds: float
    gather_seconds: float
    started: int = 0

    def launch(self) -> OperatorProcess:
        identity = f"operator-{self.started}"
        self.started += 1
        kubeconfig = write_kubeconfig(
            self.folder / f"{identity}.kubeconfig", self.api_url, identity
        )
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "HARMONY_DATABASE_URL": self.database_url,
            "HARMONY_LOG_LEVEL": os.environ.get("HARMONY_SOAK_LOG_LEVEL", "WARNING"),
            "PYTHONPATH": str(REPO),
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)
        command = [
            sys.executable,
            "-m",
            "bench.soak.operator_main",
            "--tick",
            str(self.tick_seconds),
            "--lease-seconds",
            "4",
            "--renew-seconds",
            "1",
            "--health-port",
            "0",
            "--no-train",
            "--samples",
            "50",
            "--gather",
            str(self.gather_seconds),
            "--identity",
            identity,
            "--clock-speed",
            str(self.clock.speed),
            "--clock-start",
            self.clock.start.isoformat(),
            "--clock-since",
            repr(self.clock.since),
        ]
        log_path = self.folder / f"{identity}.log"
        process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=log_path.open("wb"), stderr=subprocess.STDOUT
        )
        return OperatorProcess(identity=identity, process=process, log_path=log_path)
