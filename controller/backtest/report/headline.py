"""The report's opening: one plain sentence per result, and the small formatters the page
shares (percentages, durations, UTC times)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def percent(value: float | None) -> str:
    """0.01 → "1%", 0.0125 → "1.25%", 0.00333 → "0.33%": two decimals at most."""
    if value is None:
        return "n/a"
    return f"{value * 100:.2f}".rstrip("0").rstrip(".") + "%"


def duration(seconds: float) -> str:
    """300 → "5 min", 5400 → "1.5 h", 45 → "45 s"."""
    if seconds < 60:
        return f"{seconds:g} s"
    if seconds < 3600:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:.3g} h"


def violation_text(
    metrics: dict[str, Any], max_delay_seconds: float | None = None, *, compact: bool = False
) -> str:
    """What the SLA bounds, as a phrase: "1.2% of steps short", or under the queue SLA
    "0.4% of work waited over 10 min"; `compact`: "1.2% short", "0.4% late"."""
    share = metrics.get("late_work_share")
    if metrics.get("sla_kind") == "queue" and share is not None:
        if compact:
            return f"{percent(share)} late"
        late = "late" if max_delay_seconds is None else f"waited over {duration(max_delay_seconds)}"
        return f"{percent(share)} of work {late}"
    if compact:
        return f"{percent(metrics['shortfall_rate'])} short"
    return f"{percent(metrics['shortfall_rate'])} of steps short"


def max_delay_of(document: dict[str, Any]) -> float | None:
    """The queue SLA's max delay in seconds (None under the shortfall SLA)."""
    value = document.get("parameters", {}).get("max_delay")
    return None if value is None else float(value)


def utc(iso: str) -> str:
    """An ISO time as "2024-12-02 06:00 UTC"."""
    moment = dt.datetime.fromisoformat(iso).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def test_period_days(document: dict[str, Any]) -> float:
    return float(document["test_steps"]) * document["pool"]["step_seconds"] / 86_400.0


def result_sentences(document: dict[str, Any]) -> list[str]:
    """The results in the order a reader asks for them: as deployed, how busy, in hindsight."""
    case = document["case"]
    sentences = [deployed_sentence(case, test_period_days(document), max_delay_of(document))]
    actions = actions_sentence(case)
    if actions:
        sentences.append(actions)
    hindsight = hindsight_sentence(case)
    if hindsight:
        sentences.append(hindsight)
    return sentences


def _hours(item: dict[str, Any]) -> str:
    return f"{item['test']['replica_hours']:,.0f}"


def deployed_sentence(
    case: dict[str, Any], days: float, max_delay_seconds: float | None = None
) -> str:
    policies = case["policies"]
    harmony, oracle = policies.get("harmony"), policies.get("oracle")
    best = case["best_baseline"]
    period = f"the {days:.1f}-day test period"
    if harmony is None:
        opening = f"At a {percent(case['sla'])} SLA over {period} (Harmony was not run)"
    else:
        verdict = "held" if harmony["met_on_test"] else "missed"
        opening = (
            f"At a {percent(case['sla'])} SLA, Harmony would have used {_hours(harmony)} "
            f"replica-hours over {period} and {verdict} the SLA "
            f"({violation_text(harmony['test'], max_delay_seconds)})"
        )
    parts = [opening]
    if best is None:
        parts.append("no baseline held the SLA")
    else:
        parts.append(f"the cheapest baseline that held it used {_hours(policies[best])} ({best})")
    if oracle is not None:
        parts.append(f"perfect foresight needs {_hours(oracle)}")
    return "; ".join(parts) + "."


def actions_sentence(case: dict[str, Any]) -> str | None:
    policies = case["policies"]
    harmony, best = policies.get("harmony"), case["best_baseline"]
    if harmony is None or best is None:
        return None
    return (
        f"Harmony resized the pool {harmony['test']['actions_per_day']:.1f} times a day, "
        f"{best} {policies[best]['test']['actions_per_day']:.1f} times."
    )


def hindsight_sentence(case: dict[str, Any]) -> str | None:
    """With --sweep: every policy at the cheapest knob that held the SLA on test itself."""
    policies = case["policies"]
    if not any(item["frontier"] for item in policies.values()):
        return None
    opening = "With hindsight (each knob set on the test period itself), "
    harmony = policies.get("harmony")
    best = case["frontier_best_baseline"]
    if harmony is None or harmony["frontier_replica_hours"] is None:
        return opening + "Harmony held the SLA at no knob value."
    if best is None:
        return opening + "no baseline held the SLA at any knob value."
    sentence = (
        f"{opening}Harmony needs {harmony['frontier_replica_hours']:,.0f} replica-hours "
        f"and the best baseline ({best}) {policies[best]['frontier_replica_hours']:,.0f}"
    )
    gap = case["gap_capture"]
    if gap is None:
        return sentence + "."
    if gap < 0:
        return sentence + (
            ": Harmony is no cheaper, so it closes none of that baseline's gap to perfect "
            "foresight."
        )
    return sentence + f": Harmony closes {gap:.0%} of that baseline's gap to perfect foresight."
