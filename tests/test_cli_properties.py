"""`harmony backtest` and `harmony trace inspect` under hostile option values: exit 0, 1
or 2 with one `error:` line (naming the option for bad usage), never a traceback.

Driven through the typer app with CliRunner, as a shell reaches it. Cheap by design: the
state store is left unmigrated, so a backtest whose options all pass stops at the schema
check (exit 1) before it loads a trace or trains anything; `trace inspect` reads a
six-row CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from controller.cli.main import app
from tests.hostile import CANONICAL_ARGUMENTS, arguments

BACKTEST_OPTIONS = (
    "--policy",
    "--capacity-per-replica",
    "--peak-replicas",
    "--provisioning-delay",
    "--sla",
    "--train-fraction",
    "--report",
    "--model",
    "--samples",
    "--price",
    "--max-replicas",
    "--seed",
    "--step",
    "--scale",
    "--fill-gaps",
)
# --demand-column and --time-column are used only once a trace loads: fuzzed here.
INSPECT_OPTIONS = ("--step", "--demand-column", "--scale", "--time-column", "--fill-gaps")
Test = Callable[..., Any]
SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def tiny_csv(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.csv"
    rows = [f"2024-05-01T00:0{i}:00Z,{10 + i},{i % 3}" for i in range(6)]
    path.write_text("time,qps,errors\n" + "\n".join(rows) + "\n")
    return path


def _check(result: Result, options: list[str], codes: set[int]) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    assert result.exit_code in codes, result.output
    if result.exit_code == 0:
        return
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    if result.exit_code == 2:
        assert any(option in lines[0] for option in options), lines[0]


def _argv(pairs: list[tuple[str, str]]) -> list[str]:
    return [part for option, value in pairs for part in (option, value)]


def _pairs(options: tuple[str, ...]) -> st.SearchStrategy[list[tuple[str, str]]]:
    pair = st.tuples(st.sampled_from(options), arguments())
    return st.lists(pair, min_size=1, max_size=2, unique_by=lambda p: p[0])


def _with_canonical(options: tuple[str, ...]) -> Callable[[Test], Test]:
    """Every canonical value in every option, before the random examples."""

    def decorate(test: Test) -> Test:
        for option in options:
            for value in CANONICAL_ARGUMENTS:
                test = example(pairs=[(option, value)])(test)
        return test

    return decorate


@pytest.mark.slow
@_with_canonical(BACKTEST_OPTIONS)
@given(pairs=_pairs(BACKTEST_OPTIONS))
@SETTINGS
def test_backtest_options_never_end_in_a_traceback(pairs: list[tuple[str, str]]) -> None:
    argv = ["backtest", "fisher:container1", *_argv(pairs)]
    result = CliRunner().invoke(app, argv)
    _check(result, [option for option, _ in pairs], {1, 2})


@pytest.mark.slow
@_with_canonical(INSPECT_OPTIONS)
@given(pairs=_pairs(INSPECT_OPTIONS))
@SETTINGS
def test_trace_inspect_options_never_end_in_a_traceback(
    tiny_csv: Path, pairs: list[tuple[str, str]]
) -> None:
    argv = ["trace", "inspect", f"csv:{tiny_csv}", "--demand-column", "qps", *_argv(pairs)]
    result = CliRunner().invoke(app, argv)
    _check(result, [option for option, _ in pairs], {0, 1, 2})


@pytest.mark.slow
@given(
    trace=st.sampled_from(["", "csv:", "fisher:", "gentd26:"]).flatmap(
        lambda prefix: arguments().map(lambda value: prefix + value)
    )
)
@SETTINGS
def test_a_trace_argument_never_ends_in_a_traceback(trace: str) -> None:
    result = CliRunner().invoke(app, ["trace", "inspect", trace])
    _check(result, ["trace"], {0, 1, 2})  # `fisher:1` is container1
