"""`harmony trace inspect` and `harmony trace list`, run through the real entry point."""

from __future__ import annotations

import datetime as dt
import tracemalloc
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from controller.cli.main import main
from controller.cli.trace_options import parse_step, with_trace_options
from controller.errors import BadUsage
from controller.traces import TraceOptions
from controller.traces.frames import MAX_GRID_STEPS, check_grid_size


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_inspect_prints_indicators_levels_span_and_gaps(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(["trace", "inspect", "fisher:container1"], capsys)
    assert code == 0
    assert "fisher:container1: 4464 rows × 11 indicators, step 10 min" in out
    assert "2018-07-24 00:00 → 2018-08-23 23:50 UTC (31.0 days)" in out
    assert "container_cpu_usage_seconds_total:rate" in out
    load_row = next(line for line in out.splitlines() if "│ load " in line)
    assert "│ 1 " in load_row and "yes" in load_row


def test_inspect_with_trace_options_writes_a_plot(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "requests.html"
    argv = ["trace", "inspect", "gentd26:requests", "--step", "1h", "--scale", "2"]
    code, out, _ = run([*argv, "--plot", str(plot)], capsys)
    assert code == 0
    assert "step 1 h" in out and "demand (gpu_seconds) multiplied by 2" in out
    html = plot.read_text()
    assert "plotly" in html.lower() and "gpu_seconds" in html


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["trace", "inspect", "nothing:1"], 1, "error: unknown trace 'nothing:1'"),
        (["trace", "inspect", "[/x]"], 1, "error: unknown trace '[/x]'"),  # not rich markup
        (["trace", "inspect", "fisher:container1", "--step", "soon"], 2, "not a duration"),
        (["trace", "inspect", "csv:/no/such.csv", "--demand-column", "x"], 1, "no such file"),
    ],
)
def test_bad_input_is_one_line_and_the_right_exit_code(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, _, err = run(argv, capsys)
    assert got == code
    assert message in err and err.strip().count("\n") == 0


def test_list_names_every_trace_family(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["trace", "list"], capsys)
    assert code == 0
    for usage in ("fisher:containerN", "gentd26:requests", "alibaba2018:machines", "csv:PATH"):
        assert usage in out


def test_with_trace_options_hands_one_trace_options_to_any_command() -> None:
    app = typer.Typer()
    seen: list[TraceOptions] = []

    @app.command()
    @with_trace_options
    def train(trace: str, trace_options: TraceOptions, epochs: int = 1) -> None:
        seen.append(trace_options)

    result = CliRunner().invoke(
        app, ["csv:x.csv", "--demand-column", "qps", "--step", "30s", "--fill-gaps", "3"]
    )
    assert result.exit_code == 0, result.output
    assert seen == [
        TraceOptions(step=dt.timedelta(seconds=30), demand_column="qps", max_fill_steps=3)
    ]


def test_parse_step() -> None:
    assert parse_step("10min") == dt.timedelta(minutes=10)
    assert parse_step("90") == dt.timedelta(seconds=90)
    with pytest.raises(BadUsage, match=r"--step '0s' is out of range; give a duration above 0s"):
        parse_step("0s")


@pytest.mark.parametrize("trace", ["gentd26:requests", "alibaba2018:machines"])
def test_a_step_grid_over_the_maximum_is_refused_before_it_is_allocated(
    trace: str, shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tracemalloc.start()
    try:
        code, _, err = run(["trace", "inspect", trace, "--step", "0.001"], capsys)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 2
    assert f"more than MAX_GRID_STEPS = {MAX_GRID_STEPS:,}; pass a --step of" in err
    assert err.strip().count("\n") == 0
    assert peak < 512 * 2**20  # a 1 ms grid over these traces would be gigabytes


def test_check_grid_size_states_the_finest_step() -> None:
    check_grid_size(span_seconds=(MAX_GRID_STEPS - 2) * 60.0, step_seconds=60.0)
    with pytest.raises(BadUsage, match=r"1,000,001 grid steps .* pass a --step of 61s or more"):
        check_grid_size(span_seconds=MAX_GRID_STEPS * 60.0, step_seconds=60.0)
    with pytest.raises(BadUsage, match="MAX_GRID_STEPS"):
        check_grid_size(span_seconds=86_400.0, step_seconds=1e-300)
