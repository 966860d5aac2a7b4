"""Every benchmark's `--smoke` run: tiny data and a tiny model, the same code path end to end.

A schema or API change that breaks a benchmark fails here instead of in the hands of the
next person who runs it. A smoke run's figures mean nothing: only the summary line's
shape is checked. The runs are in-process, so torch is imported once for all of them.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, PostgresServer

REPO = Path(__file__).resolve().parents[2]
# `label key=value key=value ...`, the shape of every benchmark's summary line.
SUMMARY_LINE = re.compile(r"[a-z_]+(?: [\w.]+=\S+)+")


def run_smoke(module: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    importlib.import_module(f"bench.{module}").main([*argv, "--smoke"])
    return capsys.readouterr().out


def figures(output: str, label: str) -> dict[str, str]:
    """The figures of the last `label key=value ...` line, after checking that the output
    ends with a summary line."""
    lines = output.splitlines()
    assert lines and SUMMARY_LINE.fullmatch(lines[-1]), f"no summary line last in:\n{output}"
    summaries = [line for line in lines if line.startswith(f"{label} ")]
    assert summaries, f"no `{label} ...` line in:\n{output}"
    assert SUMMARY_LINE.fullmatch(summaries[-1]), summaries[-1]
    return dict(token.split("=", 1) for token in summaries[-1].split()[1:])


def assert_numbers(found: dict[str, str], keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if key not in found]
    assert not missing, f"{missing} missing from {found}"
    for key in keys:
        float(found[key])  # nan is a number here: tiny data may leave a ratio undefined


@pytest.mark.slow
@pytest.mark.usefixtures("shared_data")
@pytest.mark.parametrize(
    ("module", "argv", "label", "keys"),
    [
        (
            "fisher",
            [],
            "fisher",
            ("mse", "crps", "params", "train_s_median", "coverage80", "coverage95"),
        ),
        ("multistep", [], "tail", ("level", "pinball_ratio_vs_best", "coverage")),
        (
            "backtest",
            ["--speed"],
            "backtest_speed",
            ("days", "samples", "steps", "forecast_s", "harmony_total_s", "all_policies_total_s"),
        ),
        ("speed_operator", [], "operator", ("pools", "cycle_s", "rss_mib")),
        ("fallback", [], "fallback", ("shortfall_worst", "rh_vs_oracle_median")),
    ],
    ids=["fisher", "multistep", "backtest-speed", "speed_operator", "fallback"],
)
def test_smoke_run_on_real_traces(
    module: str,
    argv: list[str],
    label: str,
    keys: tuple[str, ...],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The backtest's policies run in this process, never on whatever Celery is configured.
    monkeypatch.delenv("HARMONY_REDIS_URL", raising=False)
    assert_numbers(figures(run_smoke(module, argv, capsys), label), keys)


@pytest.mark.slow
def test_backtest_smoke_with_drift(
    shared_data: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("HARMONY_REDIS_URL", raising=False)
    output = run_smoke("backtest", ["--drift"], capsys)
    found = figures(output, "headline")
    assert found["cases"] == "1"
    assert re.fullmatch(r"[01]/1", found["harmony_met"])
    assert_numbers(
        found,
        (
            "deployable_vs_best",
            "deployable_worst",
            "frontier_vs_best",
            "gap_capture_median",
            "gap_capture_min",
        ),
    )
    assert_numbers(figures(output, "drift"), ("shortfall_test",))


@pytest.mark.slow
def test_queue_check_smoke_writes_its_figures_and_plot(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "queue_check.png"
    found = figures(run_smoke("queue_check", ["--plot", str(plot)], capsys), "queue_check")
    assert found["step"] == "57"
    assert_numbers(
        found,
        (
            "pods_rate",
            "backlog_corr",
            "backlog_mae_rel",
            "nonempty_agreement",
            "wait_p95_sim_s",
            "wait_p95_rec_s",
            "fit_rate",
            "match_rate",
            "little_qps_scale",
        ),
    )
    assert plot.read_bytes().startswith(b"\x89PNG")


def test_speed_decide_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    found = figures(run_smoke("speed_decide", [], capsys), "decide")
    assert_numbers(found, ("S", "H", "R", "ms"))


def test_speed_forecast_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    found = figures(run_smoke("speed_forecast", [], capsys), "forecast")
    assert_numbers(found, ("one_pool_ms", "pools4_s"))


@pytest.mark.postgres
def test_api_load_smoke_answers_every_request(
    postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Seeds (through the state store's models), serves and drives a database of its own.
    monkeypatch.setenv("HARMONY_BENCH_POSTGRES_URL", POSTGRES_URL)
    found = figures(run_smoke("api_load", [], capsys), "api")
    assert_numbers(found, ("rps", "p50_ms", "p99_ms"))
    assert found["errors"] == "0"


def test_speed_command_forwards_smoke() -> None:
    # The way people run B4: `python -m bench.speed`, which hands --smoke to each part.
    result = subprocess.run(
        [sys.executable, "-m", "bench.speed", "--decide", "--smoke"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "--smoke" in result.stdout
    assert_numbers(figures(result.stdout, "decide"), ("ms",))
