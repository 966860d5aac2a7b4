from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from controller.errors import HarmonyError
from controller.settings import default_data_dir
from controller.traces import TraceOptions, load_trace, paths, trace_data_root


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("fisherman:container1", r"unknown trace 'fisherman:container1' \(did you mean fisher"),
        ("nothing", r"unknown trace 'nothing'; name one of: .*gentd26:requests"),
        ("gentd26:nodes", r"gentd26:requests or gentd26:pods"),
    ],
)
def test_unknown_traces_list_the_known_ones(spec: str, message: str) -> None:
    with pytest.raises(HarmonyError, match=message):
        load_trace(spec)


def test_demand_override_scale_and_gap_filling(shared_data: Path) -> None:
    base = load_trace("fisher:container1")
    options = TraceOptions(demand_column="cpu.busy", scale=2.0, max_fill_steps=1)
    series = load_trace("fisher:container1", options)
    assert [series.names[i] for i in series.demand_index] == ["cpu.busy"]
    np.testing.assert_allclose(series.column("cpu.busy"), 2 * base.column("cpu.busy"))
    np.testing.assert_array_equal(series.column("load"), base.column("load"))
    rate_name = "container_cpu_usage_seconds_total:rate"
    rate = series.column(rate_name)
    assert np.isnan(rate[0])  # an edge gap is never filled
    assert np.isnan(rate).sum() < np.isnan(base.column(rate_name)).sum()
    assert any("linear interpolation" in note for note in series.notes)
    with pytest.raises(HarmonyError, match="no indicator 'qps' for --demand-column"):
        load_trace("fisher:container1", TraceOptions(demand_column="qps"))


def test_a_step_that_is_no_multiple_is_refused(shared_data: Path) -> None:
    with pytest.raises(HarmonyError, match="whole multiple of 10 min"):
        load_trace("fisher:container1", TraceOptions(step=dt.timedelta(minutes=15)))


@pytest.fixture
def beside_shared_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A checkout at tmp_path/repo with an (empty) shared data folder beside it."""
    shared = tmp_path / "shared" / "data"
    shared.mkdir(parents=True)
    monkeypatch.setattr(paths, "_REPO_ROOT", tmp_path / "repo")
    return shared


def test_an_explicit_data_dir_wins_over_shared_data_beside_the_checkout(
    beside_shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    monkeypatch.setenv("HARMONY_DATA_DIR", str(mine))
    assert trace_data_root() == mine / "traces"
    with pytest.raises(HarmonyError, match=f"not found under {mine / 'traces'}"):
        load_trace("fisher:container1")


def test_shared_data_beside_the_checkout_is_used_when_no_data_dir_is_set(
    beside_shared_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HARMONY_DATA_DIR")
    assert trace_data_root() == beside_shared_data


def test_data_root_falls_back_to_the_default_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HARMONY_DATA_DIR")
    monkeypatch.setattr(paths, "_REPO_ROOT", tmp_path / "repo")
    assert trace_data_root() == default_data_dir() / "traces"
