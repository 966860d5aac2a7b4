"""The backtest's report: `report.json` (everything, machine-readable) and `report.html`
(plotly charts: demand, usable capacity per policy, Harmony's forecast bands, the
cost–SLA curves, and the metrics table)."""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from controller.backtest.metrics import __doc__ as METRIC_DEFINITIONS
from controller.backtest.runner import BacktestConfig, BacktestOutcome

BAND_LEVELS = (0.05, 0.5, 0.95)
COLUMNS = (
    ("replica_hours", "replica-hours", "{:,.1f}"),
    ("cost", "cost", "{:,.1f}"),
    ("shortfall_rate", "shortfall rate", "{:.4f}"),
    ("shortfall_unit_hours", "shortfall unit-h", "{:,.2f}"),
    ("actions_per_day", "actions/day", "{:.1f}"),
    ("mean_utilization", "mean utilisation", "{:.3f}"),
)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _clean(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(item) for item in value]
    return value


def forecast_bands(outcome: BacktestOutcome) -> dict[str, Any] | None:
    """Quantiles of Harmony's forecast of each decided step's demand, made when the
    decision that controls that step was taken (lead = the provisioning delay)."""
    scenario = outcome.scenario
    if scenario.samples is None:
        return None
    lead = min(scenario.spec.provisioning_delay_steps, scenario.samples.shape[2] - 1)
    quantiles = np.quantile(scenario.samples[:, :, lead, 0], BAND_LEVELS, axis=1)
    # The origin at decided step i forecasts step i + lead.
    shift = np.full((len(BAND_LEVELS), lead), np.nan)
    aligned = np.concatenate([shift, quantiles[:, : quantiles.shape[1] - lead]], axis=1)
    return {
        "lead_steps": lead,
        "levels": list(BAND_LEVELS),
        "values": [[None if np.isnan(v) else float(v) for v in row] for row in aligned],
    }


def build_document(outcome: BacktestOutcome, config: BacktestConfig, trace: str) -> dict[str, Any]:
    scenario = outcome.scenario
    times = scenario.timestamps()[scenario.decide_from :]
    capacities = scenario.spec.capacities
    shown = {name: item.shown for name, item in outcome.summary.policies.items()}
    document: dict[str, Any] = _clean(
        {
            "trace": trace,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "parameters": config.to_dict(),
            "pool": {
                "capacity_per_replica": list(capacities),
                "provisioning_delay_steps": scenario.spec.provisioning_delay_steps,
                "step_seconds": scenario.step.total_seconds(),
                "min_replicas": scenario.spec.min_replicas,
                "max_replicas": scenario.spec.max_replicas,
                "price_per_replica_hour": scenario.spec.price_per_replica_hour,
            },
            "demand_scale": outcome.demand_scale,
            "decided_from": dt.datetime.fromtimestamp(float(times[0]), dt.UTC).isoformat(),
            "decided_steps": scenario.decided_steps,
            "definitions": METRIC_DEFINITIONS,
            "notes": outcome.notes,
            "forecaster": outcome.forecaster.metadata if outcome.forecaster else None,
            "summary": outcome.summary.to_dict(),
            "cases": [
                {
                    key: value
                    for key, value in case.to_dict().items()
                    if key not in ("usable", "requested")
                }
                for case in outcome.results
            ],
            "series": {
                "timestamps": [float(t) for t in times],
                "demand": scenario.decided_demand()[:, 0].tolist(),
                "capacity": {
                    name: {
                        "knob_value": case.knob_value,
                        "usable_capacity": [u * capacities[0] for u in case.usable],
                    }
                    for name, case in shown.items()
                },
                "harmony_forecast": forecast_bands(outcome),
            },
        }
    )
    return document


def _time_axis(seconds: list[float]) -> list[dt.datetime]:
    return [dt.datetime.fromtimestamp(s, dt.UTC) for s in seconds]


def _timeline(document: dict[str, Any]) -> go.Figure:
    series = document["series"]
    times = _time_axis(series["timestamps"])
    figure = go.Figure()
    bands = series.get("harmony_forecast")
    if bands:
        low, median, high = bands["values"]
        figure.add_trace(
            go.Scatter(x=times, y=high, line={"width": 0}, showlegend=False, hoverinfo="skip")
        )
        figure.add_trace(
            go.Scatter(
                x=times,
                y=low,
                fill="tonexty",
                line={"width": 0},
                fillcolor="rgba(99,110,250,0.2)",
                name=f"Harmony forecast 5–95% (lead {bands['lead_steps']} steps)",
            )
        )
        figure.add_trace(
            go.Scatter(
                x=times, y=median, line={"dash": "dot", "width": 1}, name="Harmony forecast median"
            )
        )
    figure.add_trace(
        go.Scatter(x=times, y=series["demand"], name="demand", line={"color": "black", "width": 1})
    )
    for name, capacity in series["capacity"].items():
        knob = capacity["knob_value"]
        label = f"{name} capacity" + (f" (knob {knob:g})" if knob is not None else "")
        figure.add_trace(
            go.Scatter(
                x=times,
                y=capacity["usable_capacity"],
                name=label,
                line={"shape": "hv", "width": 1.5},
            )
        )
    figure.update_layout(
        title="Demand and usable capacity per policy",
        yaxis_title="demand units",
        hovermode="x unified",
        height=560,
    )
    return figure


def _curves(document: dict[str, Any]) -> go.Figure:
    summary = document["summary"]
    figure = go.Figure()
    for name, item in summary["policies"].items():
        curve = item["curve"]
        figure.add_trace(
            go.Scatter(
                x=[point["shortfall_rate"] for point in curve],
                y=[point["replica_hours"] for point in curve],
                mode="lines+markers",
                name=name,
                text=[f"{item['knob_name']}={point['knob_value']}" for point in curve],
                hovertemplate="%{text}<br>shortfall %{x:.4f}<br>%{y:,.1f} replica-h",
            )
        )
    figure.add_vline(x=summary["sla"], line_dash="dash", annotation_text=f"SLA {summary['sla']:g}")
    figure.update_layout(
        title="Cost–SLA curves (each point one knob value)",
        xaxis_title="shortfall rate (share of steps)",
        yaxis_title="replica-hours",
        height=480,
    )
    return figure


def _table(document: dict[str, Any]) -> str:
    summary = document["summary"]
    header = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in COLUMNS)
    rows = []
    for name, item in summary["policies"].items():
        point = item["at_sla"]
        status = "meets the SLA"
        if point is None:
            shown = item["shown_knob_value"]
            point = next(p for p in item["curve"] if p["knob_value"] == shown)
            status = "misses the SLA at every knob value run (lowest shortfall shown)"
        cells = f"<td>{item['knob_name']}={point['knob_value']}</td>" + "".join(
            f"<td>{fmt.format(point[key])}</td>" for key, _, fmt in COLUMNS
        )
        rows.append(f"<tr><td>{html.escape(name)}</td>{cells}<td>{status}</td></tr>")
    return (
        f"<table><tr><th>policy</th><th>knob</th>{header}<th></th></tr>{''.join(rows)}</table>"
        f"<p>{html.escape(summary['headline'])}; best baseline: {summary['best_baseline']}; "
        f"rule: {html.escape(summary['rule'])}</p>"
    )


def render_html(document: dict[str, Any]) -> str:
    timeline = _timeline(document).to_html(full_html=False, include_plotlyjs=True)
    curves = _curves(document).to_html(full_html=False, include_plotlyjs=False)
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in document["notes"])
    title = f"Harmony backtest: {document['trace']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child{{text-align:left}}pre{{white-space:pre-wrap;color:#444}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>{document["decided_steps"]} decided steps of {document["pool"]["step_seconds"]:g} s from
{html.escape(document["decided_from"])}; provisioning delay
{document["pool"]["provisioning_delay_steps"]} steps;
SLA: shortfall rate &le; {document["summary"]["sla"]:g}.</p>
<h2>At the SLA</h2>{_table(document)}
{timeline}{curves}
<h2>Notes</h2><ul>{notes}</ul>
<h2>Definitions</h2><pre>{html.escape(document["definitions"] or "")}</pre>
</body></html>
"""


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
