"""report.json's document: everything a backtest produced, JSON-ready."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np

from controller.backtest.report.columns import TERMS, columns_for
from controller.backtest.runner import BacktestConfig, BacktestOutcome
from controller.series import Series

BAND_LEVELS = (0.05, 0.5, 0.95)


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
    step_seconds = scenario.step.total_seconds()
    document: dict[str, Any] = _clean(
        {
            "trace": trace,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "parameters": config.to_dict(),
            "pool": {
                "capacity_per_replica": list(capacities),
                "provisioning_delay_steps": scenario.spec.provisioning_delay_steps,
                "step_seconds": step_seconds,
                "min_replicas": scenario.spec.min_replicas,
                "max_replicas": scenario.spec.max_replicas,
                "price_per_replica_hour": scenario.spec.price_per_replica_hour,
                "peak_replicas": case.peak_replicas,
            },
            "demand_scale": outcome.demand_scale,
            "demand_indicators": _demand_indicators(outcome.series),
            "tune_from": _iso(times[0]),
            "test_from": _iso(times[test.start]),
            "test_until": _iso(times[test.stop - 1] + step_seconds),
            "test_steps": test.stop - test.start,
            "definitions": definitions(config.sla_kind.value),
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
                # Every policy as deployed: the page draws one panel each.
                "capacity": {
                    name: {
                        "knob_value": item.deployed.knob_value,
                        "usable_capacity": [u * capacities[0] for u in item.deployed.usable[test]],
                    }
                    for name, item in case.policies.items()
                },
                "harmony_forecast": _test_part(forecast_bands(outcome), test),
            },
        }
    )
    return document


def definitions(sla_kind: str = "shortfall") -> dict[str, str]:
    """Every column of the table and every term of the page, in words."""
    columns = {
        f"{column.label} ({column.unit})": column.definition for column in columns_for(sla_kind)
    }
    return {**columns, **TERMS}


def _demand_indicators(series: Series) -> list[dict[str, str]]:
    return [
        {"name": series.indicators[index].name, "unit": series.indicators[index].unit}
        for index in series.demand_index
    ]


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(float(seconds), dt.UTC).isoformat()


def _test_part(bands: dict[str, Any] | None, test: slice) -> dict[str, Any] | None:
    if bands is None:
        return None
    return {**bands, "values": [row[test] for row in bands["values"]]}
