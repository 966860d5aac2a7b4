"""report.html: the headline, the deployable table, the figures, notes and definitions."""

from __future__ import annotations

import html
from typing import Any

from controller.backtest.protocol import MET_FACTOR
from controller.backtest.report.charts import bars_figure, curves_figure, timeline_figure
from controller.backtest.report.columns import COLUMNS


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
    bars = bars_figure(document).to_html(full_html=False, include_plotlyjs=True)
    timeline = timeline_figure(document).to_html(full_html=False, include_plotlyjs=False)
    swept = any(item["frontier"] for item in document["case"]["policies"].values())
    curves = (
        curves_figure(document).to_html(full_html=False, include_plotlyjs=False) if swept else ""
    )
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
