"""`harmony backtest` end to end on a real trace, with a tiny saved model (seconds, not minutes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from controller.cli.main import main
from controller.settings import get_settings
from controller.state import BacktestResult, BacktestRun, RunStatus, make_session_factory, migrate
from controller.state.db import create_engine_for
from controller.traces import TraceOptions, load_trace
from forecaster.training import train_forecaster
from tests.backtest.test_no_lookahead import TINY


@pytest.fixture
def state_store() -> str:
    url = get_settings().database_url
    engine = create_engine_for(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def tiny_model(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    series = load_trace("fisher:container1", TraceOptions())
    rows = len(series) // 2
    model = train_forecaster(
        series.values[:rows],
        series.timestamps()[:rows],
        series.levels,
        TINY.replace(horizon=2),
        names=series.names,
    )
    return model.save(tmp_path_factory.mktemp("model"))


def test_backtest_sweep_prints_table_writes_report_and_records_the_run(
    tiny_model: Path, state_store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report"
    code = main(
        [
            "backtest",
            "fisher:container1",
            "--model",
            str(tiny_model),
            "--policy",
            "harmony,static,oracle",
            "--sweep",
            "--samples",
            "40",
            "--peak-replicas",
            "20",
            "--report",
            str(report),
            "--train-fraction",
            "0.8",
        ]
    )
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, captured.err
    assert "harmony" in out and "oracle" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("deployable sla=0.01 harmony_met=")
    for key in ("harmony_rh=", "best_baseline=", "deployable_vs_best=", "gap_capture="):
        assert key in last
    assert f"report: {report / 'report.html'}" in out
    document = json.loads((report / "report.json").read_text())
    case = document["case"]
    assert case["line"] == last
    assert list(case["policies"]) == ["harmony", "static", "oracle"]
    # Static's knob was searched on tune, then again on test for the frontier.
    static = case["policies"]["static"]
    assert static["tuned"]["evaluations"] >= 2 and static["frontier"] is not None
    assert case["policies"]["harmony"]["deployed_knob"] == 0.01
    assert document["pool"]["provisioning_delay_steps"] == 1
    assert set(document["series"]["capacity"]) == {"harmony", "static", "oracle"}
    assert document["series"]["harmony_forecast"]["lead_steps"] == 1
    assert len(document["series"]["demand"]) == document["test_steps"]
    page = (report / "report.html").read_text()
    assert "Plotly.newPlot" in page and "every knob value run" in page
    assert "At a 1% SLA, Harmony would have used" in page and "perfect foresight" in page
    assert "deployable sla=" not in page  # the machine line stays in report.json
    sessions = make_session_factory(create_engine_for(state_store))
    with sessions() as session:
        run = session.scalars(select(BacktestRun)).one()
        assert run.status is RunStatus.succeeded
        assert run.trace == "fisher:container1"
        assert run.report_path == str(report)
        assert run.summary["line"] == last
        results = session.scalars(select(BacktestResult)).all()
        assert len(results) == len(document["runs"])
        assert {result.policy for result in results} == {"harmony", "static", "oracle"}
        assert sum(result.details["deployed"] for result in results) == 3


def test_unknown_policy_is_bad_usage(state_store: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "fisher:container1", "--policy", "harmony,magic"])
    error = capsys.readouterr().err.strip()
    assert code == 2
    assert "--policy: unknown magic" in error
    assert len(error.splitlines()) == 1


def test_an_unmigrated_state_store_is_refused_before_any_work(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["backtest", "fisher:container1", "--policy", "hpa"])
    error = capsys.readouterr().err
    assert code == 1
    assert "harmony db upgrade" in error


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--max-replicas", "-1", "--max-replicas -1 is out of range; give a number from 1"),
        ("--price", "-1", "--price -1 is out of range; give a number from 0 to 1e+06"),
        ("--price", "nan", "--price nan is out of range"),
        ("--step", "inf", "--step 'inf' is out of range; give a duration above 0s to 1d"),
        ("--provisioning-delay", "1e20", "--provisioning-delay '1e20' is out of range"),
        ("--provisioning-delay", "banana", "--provisioning-delay 'banana' is not a duration"),
        ("--capacity-per-replica", "inf", "--capacity-per-replica inf is out of range"),
        ("--seed", "-1", "--seed -1 is out of range; give a number from 0 to 2147483647"),
        ("--scale", "inf", "--scale inf is out of range"),
        ("--fill-gaps", str(2**70), "--fill-gaps 1180591620717411303424 is out of range"),
        ("--policy", "[/x]", "--policy: unknown [/x]"),
        ("--model", "nowhere\n", "--model nowhere\\n: no such file or folder"),
    ],
)
def test_a_bad_option_value_is_one_line_naming_it_before_any_work(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The state store is not even migrated: the options are judged first.
    code = main(["backtest", "fisher:container1", option, value])
    error = capsys.readouterr().err.strip()
    assert code == 2, error
    assert error.startswith(f"error: {message}")
    assert len(error.splitlines()) == 1 and "Traceback" not in error


def test_a_zero_provisioning_delay_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["backtest", "fisher:container1", "--provisioning-delay", "0"])
    assert code == 1  # past the options, refused for the unmigrated state store
    assert "harmony db upgrade" in capsys.readouterr().err


def test_a_report_folder_that_is_a_file_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "report"
    taken.write_text("")
    assert main(["backtest", "fisher:container1", "--report", str(taken)]) == 2
    assert "is a file; give a folder" in capsys.readouterr().err
