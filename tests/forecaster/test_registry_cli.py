"""Model versions in the state store, and `harmony train` / `harmony evaluate` end to end."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from controller.cli.main import main
from controller.clock import ManualClock
from controller.errors import HarmonyError
from controller.model_registry import latest_model_version, load_model, register_model
from controller.state.db import make_session_factory
from forecaster import Forecaster
from forecaster.windows import Scaler
from tests.forecaster.helpers import tiny_config

CONFIG = tiny_config(8, 2)


def _model() -> Forecaster:
    scaler = Scaler(mean=np.array([10.0, 1.0]), scale=np.array([2.0, 0.5]))
    return Forecaster(
        CONFIG,
        [1, 2],
        scaler,
        60.0,
        names=["demand", "cpu"],
        metadata={"data_start": 1.7e9, "data_end": 1.7e9 + 6000, "val_crps": 0.3},
    )


def test_registered_model_loads_back_with_identical_samples(migrated_engine: Engine) -> None:
    model = _model()
    clock = ManualClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    sessions = make_session_factory(migrated_engine)
    with sessions.begin() as session:
        version = register_model(session, model, name="pool-a", clock=clock)
        assert version.id is not None
    with sessions.begin() as session:
        stored = latest_model_version(session, name="pool-a")
        assert stored is not None
        assert stored.indicators["names"] == ["demand", "cpu"]
        assert stored.metrics["val_crps"] == 0.3
        expected_start = dt.datetime.fromtimestamp(1.7e9, tz=dt.UTC)
        assert stored.data_start is not None
        assert stored.data_start.replace(tzinfo=dt.UTC) == expected_start
        loaded = load_model(stored, ["demand", "cpu"])
        window = np.full((1, 8, 2), [10.0, 1.0])
        np.testing.assert_array_equal(
            loaded.sample(window, [1.7e9], 20, seed=4), model.sample(window, [1.7e9], 20, seed=4)
        )
        with pytest.raises(HarmonyError, match="retrain"):
            load_model(stored, ["demand", "gpu"])
        stored.artifact = stored.artifact[:-1] + b"x" if stored.artifact else None
        with pytest.raises(HarmonyError, match="checksum"):
            load_model(stored)
        session.rollback()


def test_train_then_evaluate_from_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    minutes = np.arange(1500)
    demand = 50 + 20 * np.sin(2 * np.pi * minutes / 1440) + rng.normal(0, 2, len(minutes))
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    lines = ["timestamp,demand,cpu"] + [
        f"{(start + dt.timedelta(minutes=int(m))).isoformat()},{d:.3f},{d / 100:.4f}"
        for m, d in zip(minutes, demand, strict=True)
    ]
    trace = tmp_path / "pool.csv"
    trace.write_text("\n".join(lines) + "\n")
    folder = tmp_path / "model"
    common = [f"csv:{trace}", "--demand-column", "demand"]
    code = main(
        [
            "train",
            *common,
            "--context",
            "30",
            "--horizon",
            "3",
            "--max-seconds",
            "8",
            "--out",
            str(folder),
            "--no-register",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert (folder / "forecaster.pt").is_file()
    code = main(
        [
            "evaluate",
            *common,
            "--model",
            str(folder),
            "--baselines",
            "last-value,ets",
            "--stride",
            "10",
            "--samples",
            "50",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    for row in ("harmony", "last-value", "ets", "CRPS", "coverage90"):
        assert row in out
    code = main(["evaluate", *common, "--model", str(folder), "--baselines", "prophet"])
    assert code == 2 and "unknown ['prophet']" in capsys.readouterr().err
    code = main(["evaluate", *common, "--model", str(tmp_path / "none")])
    assert code == 1 and "no model at" in capsys.readouterr().err
