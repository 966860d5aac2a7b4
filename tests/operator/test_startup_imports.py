"""The operator starts without torch: it needs a forecaster only once a pool has a model,
and importing torch and pytorch_lightning costs over a minute of CPU on a loaded node
(the soak's operators took longer to start than to run every fault)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "pytorch_lightning", "lightning")


def test_the_operator_imports_no_deep_learning_framework() -> None:
    probe = (
        "import sys\n"
        "import controller.cli.operator, controller.wiring, controller.operator.handlers\n"
        "from controller.operator import cycle_steps\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported at startup: {done.stdout.strip()}"


def test_the_package_still_offers_its_names() -> None:
    import forecaster

    assert forecaster.ForecasterConfig.__name__ == "ForecasterConfig"
    assert "train_forecaster" in dir(forecaster)
    with pytest.raises(AttributeError):
        forecaster.no_such_name  # noqa: B018
