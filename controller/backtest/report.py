"""The backtest's report: `report.json` (everything, machine-readable) and `report.html`
(the deployable table, test replica-hours per policy against the oracle's floor, demand
and capacity over the test period with Harmony's forecast bands, and with --sweep the
cost–SLA curves on test)."""

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
from controller.backtest.protocol import MET_FACTOR
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
    scenario, case = outcome.scenario, outcome.case
    times = scenario.timestamps()[scenario.decide_from :]
    test = scenario.periods()["test"]
    capacities = scenario.spec.capacities
    best = case.best_baseline()
    shown = [name for name in ("harmony", best.policy if best else None, "oracle") if name]
    capacity = {
        name: {
            "knob_value": case.policies[name].deployed.knob_value,
            "usable_capacity": [u * capacities[0] for u in case.policies[name].deployed.usable],
        }
        for name in shown
        if name in case.policies
    }
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
                "peak_replicas": case.peak_replicas,
            },
            "demand_scale": outcome.demand_scale,
            "tune_from": _iso(times[0]),
            "test_from": _iso(times[test.start]),
            "test_steps": test.stop - test.start,
            "definitions": METRIC_DEFINITIONS,
            "notes": outcome.notes,
            "forecaster": outcome.forecaster.metadata if outcome.forecaster else None,
            "case": case.to_dict(),
            "runs": [
                {k: v for k, v in run.to_dict().items() if k not in ("usable", "requested")}
                for run in outcome.results
            ],
            "series": {
                "timestamps": [float(t) for t in times[test]],
                "demand": scenario.decided_demand()[test, 0].tolist(),
                "capacity": {
                    name: {**item, "usable_capacity": item["usable_capacity"][test]}
                    for name, item in capacity.items()
                },
                "harmony_forecast": _test_part(forecast_bands(outcome), test),
            },
        }
    )
    return document


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(float(seconds), dt.UTC).isoformat()


def _test_part(bands: dict[str, Any] | None, test: slice) -> dict[str, Any] | None:
    if bands is None:
        return None
    return {**bands, "values": [row[test] for row in bands["values"]]}


def headline_sentence(case: dict[str, Any]) -> str:
    """The report's first sentence: both results in plain words."""
    policies = case["policies"]
    harmony = policies.get("harmony")
    sla = case["sla"]
    if harmony is None:
        return "Harmony was not among the policies run (--policy); the table compares the rest."
    met = "held" if harmony["met_on_test"] else "missed"
    first = (
        f"Deployed as a user would (knobs fit on the tune period), Harmony at ε = {sla:g} "
        f"{met} the SLA on the test period with {harmony['test']['replica_hours']:,.0f} "
        f"replica-hours at a {harmony['test']['shortfall_rate']:.2%} shortfall rate"
    )
    best = case["best_baseline"]
    if best is None:
        first += ", and no baseline met the SLA on test."
    else:
        ratio = case["deployable_vs_best"]
        first += (
            f", {ratio:.2f}× the {policies[best]['test']['replica_hours']:,.0f} of the "
            f"cheapest baseline that met it ({best})."
        )
    frontier = case["frontier_vs_best"]
    if frontier is None:
        second = " In hindsight (each knob fit on test itself, --sweep) it was not compared."
    else:
        second = (
            f" In hindsight, each policy at its cheapest knob meeting the SLA on test, Harmony "
            f"needs {frontier:.2f}× the best baseline's ({case['frontier_best_baseline']}) "
            f"replica-hours and captures {_pct(case['gap_capture'])} of its gap to the oracle"
            + (" (negative: more than that baseline)." if (case["gap_capture"] or 0.0) < 0 else ".")
        )
    return first + second


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def _time_axis(seconds: list[float]) -> list[dt.datetime]:
    return [dt.datetime.fromtimestamp(s, dt.UTC) for s in seconds]


def _timeline(document: dict[str, Any]) -> go.Figure:
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


def _bars(document: dict[str, Any]) -> go.Figure:
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


def _curves(document: dict[str, Any]) -> go.Figure:
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


def _table(document: dict[str, Any]) -> str:
    case = document["case"]
    header = "".join(f"<th>{html.escape(label)}</th>" for _, label, _ in COLUMNS)
    rows = []
    for item in case["policies"].values():
        knob = item["deployed_knob"]
        tuned = item["tuned"]
        if item["policy"] == "oracle":
            how = "perfect foresight"
        elif tuned is None:
            how = f"ε = SLA, untuned: {item['knob_name']}={knob:g}"
        else:
            how = f"{item['knob_name']}={knob:g}" + (
                "" if tuned["met"] else " (no value met the SLA on tune; closest)"
            )
        tune = item["tune"]["shortfall_rate"] if item["tune"] else float("nan")
        cells = "".join(f"<td>{fmt.format(item['test'][key])}</td>" for key, _, fmt in COLUMNS)
        verdict = "met" if item["met_on_test"] else "missed"
        rows.append(
            f"<tr><td>{html.escape(item['policy'])}</td><td>{html.escape(item['role'])}</td>"
            f"<td>{html.escape(how)}</td><td>{tune:.4f}</td>{cells}"
            f"<td class='{verdict}'>{verdict}</td></tr>"
        )
    return (
        "<table><tr><th>policy</th><th>role</th><th>knob (fit on tune)</th>"
        f"<th>tune shortfall</th>{header}<th>SLA on test</th></tr>{''.join(rows)}</table>"
        f"<p><code>{html.escape(case['line'])}</code></p>"
    )


def render_html(document: dict[str, Any]) -> str:
    bars = _bars(document).to_html(full_html=False, include_plotlyjs=True)
    timeline = _timeline(document).to_html(full_html=False, include_plotlyjs=False)
    swept = any(item["frontier"] for item in document["case"]["policies"].values())
    curves = _curves(document).to_html(full_html=False, include_plotlyjs=False) if swept else ""
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in document["notes"])
    title = f"Harmony backtest: {document['trace']}"
    pool = document["pool"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1400px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
td:first-child{{text-align:left}}td.met{{color:#00a36c}}td.missed{{color:#d62728}}
.lead{{font-size:1.15em;max-width:70em}}pre{{white-space:pre-wrap;color:#444}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p class="lead">{html.escape(headline_sentence(document["case"]))}</p>
<p>Pool: the train part's 99.9th percentile of demand needs {pool["peak_replicas"]} replicas
(demand × {document["demand_scale"]:.4g}); provisioning delay
{pool["provisioning_delay_steps"]} steps of {pool["step_seconds"]:g} s; tune from
{html.escape(document["tune_from"])}, test from {html.escape(document["test_from"])}
({document["test_steps"]} steps). SLA: shortfall rate &le; {document["case"]["sla"]:g};
met on test means &le; {MET_FACTOR:g} × SLA.</p>
<h2>Deployed: knob fit on tune, judged on test</h2>{_table(document)}
{bars}{timeline}{curves}
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
