"""The report's plotly figures: replica-hours per policy, each policy's capacity against
demand over the test period (one small panel each), and the cost–SLA curves."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from controller.backtest.report.headline import percent, violation_text

HELD, MISSED = "#00a36c", "#d62728"
DEMAND = "#1d2330"
BAND = "rgba(99,110,250,0.25)"
PANEL_COLUMNS = 2
PANEL_HEIGHT = 150  # pixels of one panel's plot
PANEL_GAP = 80  # between rows: a panel's time labels and the next panel's title
FONT = {"family": "system-ui, sans-serif", "size": 13}


def _time_axis(seconds: list[float]) -> list[dt.datetime]:
    return [dt.datetime.fromtimestamp(s, dt.UTC) for s in seconds]


def _verdict(item: dict[str, Any]) -> str:
    return "held the SLA" if item["met_on_test"] else "missed the SLA"


def bars_figure(document: dict[str, Any]) -> go.Figure:
    """Test replica-hours of every policy but the oracle, whose figure is the floor line."""
    policies = document["case"]["policies"]
    items = [item for item in policies.values() if item["role"] != "oracle"]
    figure = go.Figure()
    for held, colour in ((True, HELD), (False, MISSED)):
        chosen = [item for item in items if item["met_on_test"] is held]
        figure.add_trace(
            go.Bar(
                x=[item["policy"] for item in chosen],
                y=[item["test"]["replica_hours"] for item in chosen],
                name="held the SLA" if held else "missed the SLA",
                marker_color=colour,
                # Ablations (parts of Harmony, never a baseline) are hatched.
                marker_pattern_shape=["/" if item["role"] == "ablation" else "" for item in chosen],
                text=[violation_text(item["test"], compact=True) for item in chosen],
                textposition="outside",
                customdata=[item["test"]["actions_per_day"] for item in chosen],
                hovertemplate="%{x}: %{y:,.0f} replica-h, %{text}, "
                "%{customdata:.1f} actions/day<extra></extra>",
            )
        )
    names = [item["policy"] for item in items]
    oracle = policies.get("oracle")
    if oracle is not None and names:
        # A legend entry, not an annotation: a label on the line would sit over a bar.
        hours = oracle["test"]["replica_hours"]
        figure.add_trace(
            go.Scatter(
                x=names,
                y=[hours] * len(names),
                mode="lines",
                line={"dash": "dot", "color": DEMAND},
                name=f"perfect foresight (oracle): {hours:,.0f}",
                hoverinfo="skip",
            )
        )
    figure.update_layout(
        title="Replica-hours each policy used on the test period (hatched: ablations)",
        xaxis={"categoryorder": "array", "categoryarray": names},
        yaxis_title="replica-hours",
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        height=440,
        font=FONT,
        barmode="overlay",
        uniformtext={"minsize": 11, "mode": "show"},
    )
    return figure


def _panel_title(item: dict[str, Any]) -> str:
    test = item["test"]
    return (
        f"<b>{item['policy']}</b>: {test['replica_hours']:,.0f} replica-h, "
        f"{violation_text(test, compact=True)}, {test['actions_per_day']:.1f} actions/day"
    )


def capacity_figure(document: dict[str, Any]) -> go.Figure:
    """Small multiples: one panel per policy with the demand and that policy's usable
    capacity (green: it held the SLA, red: it missed), all on the same axes."""
    series = document["series"]
    policies = document["case"]["policies"]
    names = [name for name in policies if name in series["capacity"]]
    rows = max(1, math.ceil(len(names) / PANEL_COLUMNS))
    plots = rows * (PANEL_HEIGHT + PANEL_GAP) - PANEL_GAP
    figure = make_subplots(
        rows=rows,
        cols=PANEL_COLUMNS,
        shared_xaxes="all",
        shared_yaxes="all",
        subplot_titles=[_panel_title(policies[name]) for name in names],
        vertical_spacing=PANEL_GAP / plots,
        horizontal_spacing=0.04,
    )
    times = _time_axis(series["timestamps"])
    shown: set[str] = set()
    for index, name in enumerate(names):
        row, col = index // PANEL_COLUMNS + 1, index % PANEL_COLUMNS + 1
        if name == "harmony" and series.get("harmony_forecast"):
            for trace in _band_traces(times, series["harmony_forecast"]):
                figure.add_trace(trace, row=row, col=col)
        capacity_trace = _capacity_trace(times, series["capacity"][name], policies[name], shown)
        figure.add_trace(capacity_trace, row=row, col=col)
        figure.add_trace(_demand_trace(times, series["demand"], shown), row=row, col=col)
    for annotation in figure.layout.annotations:
        annotation.font = {"size": 12}
    figure.update_yaxes(rangemode="tozero")
    figure.update_xaxes(showticklabels=True)  # each panel readable on its own
    figure.update_xaxes(title_text="time (UTC)", row=rows)
    figure.update_yaxes(title_text="demand units", col=1)
    figure.update_layout(
        height=plots + 120,
        font=FONT,
        margin={"t": 70, "b": 50},
        legend={"orientation": "h", "x": 0, "y": 1, "yref": "container", "yanchor": "top"},
        hovermode="x unified",
    )
    return figure


def _demand_trace(times: list[dt.datetime], demand: list[float], shown: set[str]) -> go.Scatter:
    first = "demand" not in shown
    shown.add("demand")
    return go.Scatter(
        x=times,
        y=demand,
        name="demand",
        legendgroup="demand",
        showlegend=first,
        line={"color": DEMAND, "width": 1},
    )


def _capacity_trace(
    times: list[dt.datetime], capacity: dict[str, Any], item: dict[str, Any], shown: set[str]
) -> go.Scatter:
    label = f"usable capacity (policy {_verdict(item)})"
    first = label not in shown
    shown.add(label)
    return go.Scatter(
        x=times,
        y=capacity["usable_capacity"],
        name=label,
        legendgroup=label,
        showlegend=first,
        line={"shape": "hv", "width": 1.5, "color": HELD if item["met_on_test"] else MISSED},
        hovertemplate=f"{item['policy']}: %{{y:,.1f}}<extra></extra>",
    )


def _band_traces(times: list[dt.datetime], bands: dict[str, Any]) -> list[go.Scatter]:
    low, _median, high = bands["values"]
    lead = bands["lead_steps"]
    return [
        go.Scatter(x=times, y=high, line={"width": 0}, showlegend=False, hoverinfo="skip"),
        go.Scatter(
            x=times,
            y=low,
            fill="tonexty",
            line={"width": 0},
            fillcolor=BAND,
            name=f"Harmony's forecast, 5–95% ({lead} step{'s' if lead != 1 else ''} ahead)",
            hoverinfo="skip",
        ),
    ]


def curves_figure(document: dict[str, Any]) -> go.Figure:
    case = document["case"]
    figure = go.Figure()
    by_policy: dict[str, list[dict[str, Any]]] = {}
    for run in document["runs"]:
        by_policy.setdefault(run["policy"], []).append(run)
    for name, runs in by_policy.items():
        if name == "oracle":
            continue
        runs = sorted(runs, key=lambda run: run["metrics"]["shortfall_rate"])
        figure.add_trace(
            go.Scatter(
                x=[run["metrics"]["shortfall_rate"] for run in runs],
                y=[run["metrics"]["replica_hours"] for run in runs],
                mode="lines+markers",
                name=name,
                text=[f"{run['knob_name']}={run['knob_value']}" for run in runs],
                hovertemplate="%{text}<br>%{x:.2%} of steps short<br>%{y:,.1f} replica-h",
            )
        )
    oracle = case["policies"].get("oracle")
    if oracle is not None:
        figure.add_hline(
            y=oracle["test"]["replica_hours"],
            line_dash="dot",
            annotation_text="perfect foresight (oracle)",
        )
    figure.add_vline(x=case["sla"], line_dash="dash", annotation_text=f"SLA {percent(case['sla'])}")
    figure.update_layout(
        title="Replica-hours against shortfall on the test period, every knob value run",
        xaxis_title="shortfall (% of test steps, log scale)",
        xaxis={"type": "log", "tickformat": ".1%", "dtick": "D2"},
        yaxis_title="replica-hours",
        height=480,
        font=FONT,
    )
    return figure
