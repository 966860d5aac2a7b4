"""The backtest's report: `report.json` (everything, machine-readable) and `report.html`
(the results in plain sentences, what was compared, the deployable table with its units,
test replica-hours per policy against the oracle's floor, one demand-and-capacity panel
per policy over the test period, and with --sweep the cost–SLA curves on test)."""

from __future__ import annotations

import json
from pathlib import Path

from controller.backtest.report.columns import COLUMNS
from controller.backtest.report.document import build_document
from controller.backtest.report.page import render_html
from controller.backtest.runner import BacktestConfig, BacktestOutcome

__all__ = ["COLUMNS", "build_document", "render_html", "write_report"]


def write_report(
    outcome: BacktestOutcome, config: BacktestConfig, trace: str, directory: Path
) -> Path:
    """Write report.json and report.html into `directory`; returns the HTML path."""
    directory.mkdir(parents=True, exist_ok=True)
    document = build_document(outcome, config, trace)
    (directory / "report.json").write_text(json.dumps(document, indent=1))
    page = directory / "report.html"
    page.write_text(render_html(document))
    return page
