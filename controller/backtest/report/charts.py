"""The report's plotly figures: replica-hours per policy, demand and capacity over the
test period, and the cost–SLA curves."""

from __future__ import annotations

import datetime as dt
from typing import Any

import plotly.graph_objects as go

from controller.backtest.protocol import MET_FACTOR


def _time_axis(seconds: list[float]) -> list[dt.datetime]:
    return [dt.datetime.fromtimestamp(s, dt.UTC) for s in seconds]


def timeline_figure(document: dict[str, Any]) -> go.Figure:
    series = document["series"]
    times = _time_axis(series["timestamps"])
    figure = go.Figure()
    bands = series.get("harmony_forecast")
    if bands:
        low, _median, high = bands["values"]
        figure.add_trace(
            go.Scatter(x=times, y=high, line={"width": 0}, showlegend=False, hoverinfo="skip")
        )
        figure.add_trace(
            go.Scatter(
                x=times,
                y=low,
                fill="tonexty",
                line={"width": 0},
                fillcolor="rgba(99,110,250,0.18)",
                name=f"Harmony forecast 5–95% (lead {bands['lead_steps']} steps)",
            )
        )
    figure.add_trace(
        go.Scatter(x=times, y=series["demand"], name="demand", line={"color": "black", "width": 1})
    )
    colours = {"harmony": "#636efa", "oracle": "#999999"}
    for name, capacity in series["capacity"].items():
        knob = capacity["knob_value"]
        label = f"{name} capacity" + (f" (knob {knob:g})" if knob is not None else "")
        figure.add_trace(
            go.Scatter(
                x=times,
                y=capacity["usable_capacity"],
                name=label,
                line={
                    "shape": "hv",
                    "width": 1.5,
                    "color": colours.get(name, "#ef553b"),
                    "dash": "dot" if name == "oracle" else "solid",
                },
            )
        )
    figure.update_layout(
        title="Test period: demand and usable capacity (Harmony, the best baseline, the oracle)",
        yaxis_title="demand units",
        hovermode="x unified",
        height=520,
        legend={"orientation": "h", "y": -0.15},
    )
    return figure


def bars_figure(document: dict[str, Any]) -> go.Figure:
    case = document["case"]
    items = [item for item in case["policies"].values() if item["role"] != "oracle"]
    oracle = case["policies"].get("oracle")
    colour = {True: "#00a36c", False: "#d62728"}
    figure = go.Figure(
        go.Bar(
            x=[item["policy"] for item in items],
            y=[item["test"]["replica_hours"] for item in items],
            marker_color=[colour[item["met_on_test"]] for item in items],
            # Ablations (parts of Harmony, never a baseline) are hatched.
            marker_pattern_shape=["/" if item["role"] == "ablation" else "" for item in items],
            text=[f"{item['test']['shortfall_rate']:.2%}" for item in items],
            textposition="outside",
            hovertemplate="%{x}: %{y:,.0f} replica-h, shortfall %{text}<extra></extra>",
        )
    )
    if oracle is not None:
        figure.add_hline(
            y=oracle["test"]["replica_hours"],
            line_dash="dot",
            annotation_text="oracle (perfect foresight): the floor",
        )
    figure.update_layout(
        title=f"Test replica-hours as deployed; green met the SLA (shortfall ≤ "
        f"{MET_FACTOR:g} × {case['sla']:g}), red missed it; hatched: ablations; labels: "
        "test shortfall rate",
        yaxis_title="replica-hours on test",
        height=460,
    )
    return figure


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
                hovertemplate="%{text}<br>shortfall %{x:.4f}<br>%{y:,.1f} replica-h",
            )
        )
    oracle = case["policies"].get("oracle")
    if oracle is not None:
        figure.add_hline(
            y=oracle["test"]["replica_hours"], line_dash="dot", annotation_text="oracle floor"
        )
    figure.add_vline(x=case["sla"], line_dash="dash", annotation_text=f"SLA {case['sla']:g}")
    figure.update_layout(
        title="Cost–SLA on the test period, every knob value run (hindsight frontier)",
        xaxis_title="shortfall rate on test (share of steps)",
        xaxis_type="log",
        yaxis_title="replica-hours on test",
        height=480,
    )
    return figure
