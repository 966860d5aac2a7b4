"""report.html in Debian's headless Chromium: what a reader sees first, the table's headers
and units, and one capacity panel per policy once plotly has drawn.

The screenshot is kept at tests/artifacts/backtest-report.png for people to look at.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pytest

from controller.backtest.report import COLUMNS, write_report
from tests.backtest.helpers import small_outcome
from tests.browser import chromium, run_chromium, screenshot

POLICIES = ("harmony", "static", "reactive", "window-buffer", "oracle")
WINDOW = (1400, 3200)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outcome, config = small_outcome(POLICIES, demand_scale=0.015)
    return write_report(outcome, config, "synthetic", tmp_path_factory.mktemp("report"))


def _expected_headline(case: dict[str, Any]) -> str:
    policies = case["policies"]
    harmony, best = policies["harmony"], case["best_baseline"]

    def hours(name: str) -> str:
        return f"{policies[name]['test']['replica_hours']:,.0f}"

    verdict = "held" if harmony["met_on_test"] else "missed"
    short = f"{harmony['test']['shortfall_rate'] * 100:.2f}".rstrip("0").rstrip(".")
    cheapest = (
        f"the cheapest baseline that held it used {hours(best)} ({best})"
        if best
        else "no baseline held the SLA"
    )
    return (
        f"At a 1% SLA, Harmony would have used {hours('harmony')} replica-hours over the "
        f"1.0-day test period and {verdict} the SLA ({short}% of steps short); {cheapest}; "
        f"perfect foresight needs {hours('oracle')}."
    )


def test_the_report_reads_as_sentences_with_labelled_columns_and_a_panel_per_policy(
    report: Path, tmp_path: Path
) -> None:
    binary = chromium()
    url = report.as_uri()
    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url, window=WINDOW)
    case = json.loads((report.parent / "report.json").read_text())["case"]

    results = dom.split('<section class="results" id="results">')[1].split("</section>")[0]
    assert results.startswith(f"<p>{html.escape(_expected_headline(case))}</p>")
    assert "Harmony resized the pool" in results
    # What was compared comes before any figure: the decided period and the rescaling.
    setup = dom.split('<dl class="setup">')[1].split("</dl>")[0]
    assert "2024-11-17 02:00 UTC – 2024-11-18 03:00 UTC: 1.0 days, 300 decisions" in setup
    assert "× 0.015: the trace's demand (load, requests/s) was multiplied" in setup
    assert dom.index('class="setup"') < dom.index("plotly-graph-div")

    for column in COLUMNS:
        assert f"{column.label}<small>{html.escape(column.unit)}</small></th>" in dom, column
    assert "SLA on test<small>held: ≤ 1.25% short</small></th>" in dom
    assert '<td class="text held">held</td>' in dom or '<td class="text missed">' in dom
    # No machine line and no module docstring on the page (report.json keeps the line).
    assert "deployable sla=" not in dom and "What a replay cost" not in dom

    # plotly drew one titled panel per policy, each with its own capacity line.
    for name in POLICIES:
        assert dom.count(f'<tspan style="font-weight:bold">{name}</tspan>: ') == 1, name
    assert 'class="subplot x5y5"' in dom

    screenshot(binary, tmp_path / "profile-shot", url, "backtest-report.png", window=WINDOW)
