"""report.html: the results in sentences, what was compared, the table with its units,
the figures, the run's notes and the definitions."""

from __future__ import annotations

import html
from typing import Any

from controller.backtest.protocol import MET_FACTOR
from controller.backtest.report.charts import bars_figure, capacity_figure, curves_figure
from controller.backtest.report.columns import COLUMNS, QUEUE_COLUMNS, Column, columns_for
from controller.backtest.report.headline import (
    duration,
    max_delay_of,
    percent,
    result_sentences,
    test_period_days,
    utc,
)

SHORTFALL = next(column for column in COLUMNS if column.key == "shortfall_rate")
LATE_WORK = next(column for column in QUEUE_COLUMNS if column.key == "late_work_share")
STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1400px;padding:0 1.5em;
color:#1d2330}
h1{margin-bottom:.3em}
.results p{font-size:1.2em;margin:.35em 0;max-width:62em}
.setup{display:grid;grid-template-columns:max-content 1fr;gap:.3em 1.2em;margin:1.2em 0;
padding:.8em 1em;background:#f6f7f9;border:1px solid #dde1e7;border-radius:4px}
.setup dt{font-weight:600}.setup dd{margin:0}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
.wide{overflow-x:auto}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{vertical-align:bottom}
th small,td small{display:block;font-weight:normal;color:#667;white-space:nowrap}
td:first-child,th:first-child,td.text,th.text{text-align:left}td:first-child{white-space:nowrap}
td.held{color:#00a36c;font-weight:600}td.missed{color:#d62728;font-weight:600}
.definitions dt{font-weight:600;margin-top:.4em}.definitions dd{margin-left:1.5em}
"""


def _escape(text: object) -> str:
    return html.escape(str(text))


def _header(label: str, unit: str = "", text: bool = False) -> str:
    units = f"<small>{_escape(unit)}</small>" if unit else ""
    return f"<th{' class=text' if text else ''}>{_escape(label)}{units}</th>"


def _setup(document: dict[str, Any]) -> str:
    """What was compared, before any figure: the decided period, the rescaling, the pool
    and the SLA."""
    pool, case = document["pool"], document["case"]
    step = duration(pool["step_seconds"])
    delay = pool["provisioning_delay_steps"]
    capacity = pool["capacity_per_replica"][0]
    indicators = document.get("demand_indicators") or []
    demand = ", ".join(
        f"{item['name']}" + (f", {item['unit']}" if item["unit"] else "") for item in indicators
    )
    which = f" ({demand})" if demand else ""
    items = {
        "Decided (test) period": (
            f"{utc(document['test_from'])} – {utc(document['test_until'])}: "
            f"{test_period_days(document):.1f} days, {document['test_steps']:,} decisions, "
            f"one every {step}. Every figure below is measured on it."
        ),
        "Tune period": (
            f"{utc(document['tune_from'])} – {utc(document['test_from'])}: each baseline's "
            "knob was set here, before the test period, as a user would."
        ),
        "Demand rescaled": (
            f"× {document['demand_scale']:.3g}: the trace's demand{which} was multiplied so "
            "that the train part's 99.9th percentile needs "
            f"{pool['peak_replicas']} replicas of capacity {capacity:g}. Demand and capacity "
            "below are on this scale (demand units)."
        ),
        "Pool": (
            f"a replica is usable {duration(delay * pool['step_seconds'])} ({delay} steps) after "
            f"it is asked for; {pool['min_replicas']} to {pool['max_replicas']} replicas; "
            f"price {pool['price_per_replica_hour']:g} per replica-hour."
        ),
        "SLA": _sla_text(case["sla"], max_delay_of(document)),
    }
    rows = "".join(
        f"<dt>{_escape(key)}</dt><dd>{_escape(text)}</dd>" for key, text in items.items()
    )
    return f"<dl class='setup'>{rows}</dl>"


def _sla_text(sla: float, max_delay_seconds: float | None) -> str:
    held = f"{percent(MET_FACTOR * sla)} ({MET_FACTOR:g} × the SLA, for chance)"
    if max_delay_seconds is not None:
        return (
            f"queue: demand is work arriving per step, served first in, first out by the "
            f"usable replicas; at most {percent(sla)} of the work may wait longer than "
            f"{duration(max_delay_seconds)}; a policy held it when its test late work was "
            f"at most {held}."
        )
    return (
        f"at most {percent(sla)} of test steps may have demand above usable capacity; a "
        f"policy held it when its test shortfall was at most {held}."
    )


def _knob(item: dict[str, Any]) -> str:
    """The deployed knob, and under it how it was chosen when that needs saying."""
    knob, tuned = item["deployed_knob"], item["tuned"]
    if item["policy"] == "oracle":
        return "perfect foresight"
    if knob is None:
        return "–"
    value = _escape(f"{item['knob_name']} = {knob:.4g}")
    if tuned is None:
        return f"{value}<small>ε = SLA, not tuned</small>"
    return value if tuned["met"] else f"{value}<small>closest: none held the SLA on tune</small>"


def _row(item: dict[str, Any], columns: tuple[Column, ...], queue: bool) -> str:
    violation = LATE_WORK if queue else SHORTFALL
    tune = item["tune"].get(violation.key) if item["tune"] else None
    cells = "".join(f"<td>{column.format(item['test'].get(column.key))}</td>" for column in columns)
    verdict = "held" if item["met_on_test"] else "missed"
    return (
        f"<tr><td>{_escape(item['policy'])}</td><td class=text>{_escape(item['role'])}</td>"
        f"<td class=text>{_knob(item)}</td><td>{violation.format(tune)}</td>{cells}"
        f"<td class='text {verdict}'>{verdict}</td></tr>"
    )


def _table(document: dict[str, Any]) -> str:
    case = document["case"]
    queue = max_delay_of(document) is not None
    columns = columns_for("queue" if queue else "shortfall")
    held = f"held: ≤ {percent(MET_FACTOR * case['sla'])} {'late' if queue else 'short'}"
    headers = [
        _header("policy", text=True),
        _header("role", text=True),
        _header("knob", "set on the tune period", text=True),
        _header("tune late work", "% of tune work")
        if queue
        else _header("tune shortfall", "% of tune steps"),
        *(_header(column.label, column.unit) for column in columns),
        _header("SLA on test", held, text=True),
    ]
    rows = "".join(_row(item, columns, queue) for item in case["policies"].values())
    table = f"<table id='deployed'><thead><tr>{''.join(headers)}</tr></thead>{rows}</table>"
    # The queue SLA's waits widen the table beyond a laptop's screen: it scrolls alone.
    return f"<div class=wide>{table}</div>"


def _definitions(document: dict[str, Any]) -> str:
    terms = document["definitions"]
    rows = "".join(
        f"<dt>{_escape(key)}</dt><dd>{_escape(text)}</dd>" for key, text in terms.items()
    )
    return f"<dl class='definitions'>{rows}</dl>"


def render_html(document: dict[str, Any]) -> str:
    bars = bars_figure(document).to_html(full_html=False, include_plotlyjs=True)
    panels = capacity_figure(document).to_html(full_html=False, include_plotlyjs=False)
    swept = any(item["frontier"] for item in document["case"]["policies"].values())
    curves = ""
    if swept:
        figure = curves_figure(document).to_html(full_html=False, include_plotlyjs=False)
        curves = f"<h2>Cost against shortfall, every knob value run (hindsight)</h2>{figure}"
    results = "".join(f"<p>{_escape(sentence)}</p>" for sentence in result_sentences(document))
    notes = "".join(f"<li>{_escape(note)}</li>" for note in document["notes"])
    title = f"Harmony backtest: {document['trace']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_escape(title)}</title>
<style>{STYLE}</style></head>
<body><h1>{_escape(title)}</h1>
<section class="results" id="results">{results}</section>
{_setup(document)}
<h2>Each policy on the test period</h2>{_table(document)}
{bars}
<h2>Demand and each policy's usable capacity over the test period</h2>{panels}
{curves}
<h2>Notes from the run</h2><ul>{notes}</ul>
<h2>Definitions</h2>{_definitions(document)}
</body></html>
"""
