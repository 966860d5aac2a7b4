"""A real Celery worker process on Redis, on a queue of its own, for the fan-out tests."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.tasks import make_celery

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def celery_worker(redis_url: str, **environment: str) -> Iterator[str]:
    """Starts `celery -A controller.tasks worker` with HARMONY_REDIS_URL and `environment`
    set, waits for it to answer a ping, and yields the name of the queue it consumes."""
    queue = f"harmony-test-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "HARMONY_REDIS_URL": redis_url, **environment}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "controller.tasks",
            "worker",
            "--pool=solo",
            "-Q",
            queue,
            "--loglevel=WARNING",
            "-n",
            f"{queue}@%h",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    app = make_celery(redis_url)
    deadline = time.monotonic() + 90
    try:
        while not any(queue in name for reply in app.control.ping(timeout=1.0) for name in reply):
            if process.poll() is not None:
                error = process.stderr.read().decode() if process.stderr else ""
                pytest.fail(f"the Celery worker exited: {error[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("the Celery worker did not answer a ping within 90 s")
        yield queue
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
