"""The queue SLA's fields: parsed by the operator, refused by the CRD and by the parser at
the field to fix (the parser is the defence when the schema is bypassed)."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from controller.operator.spec import InvalidSpec, parse_spec
from tests.helm.crd import admission_errors
from tests.operator.helpers import pool_spec_document

WORK = {"name": "work", "query": "sum(work)", "level": 1, "demand": True}
QUEUED = {"name": "queued", "query": "sum(queued)", "backlog": True}
GPU = {"name": "gpu", "query": "avg(gpu)", "level": 2}


def queue_document(**sla: Any) -> dict[str, Any]:
    return pool_spec_document(
        sla={"maxShortfallProbability": 0.05, "kind": "queue", "maxDelay": "10m", **sla},
        indicators=[copy.deepcopy(WORK), copy.deepcopy(QUEUED), copy.deepcopy(GPU)],
    )


def manifest(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling.harmony.dev/v1alpha1",
        "kind": "PoolAutoscaler",
        "metadata": {"name": "batch", "namespace": "fleet"},
        "spec": spec,
    }


def test_a_queue_pool_reads_its_backlog_indicator_and_forecasts_the_others() -> None:
    config = parse_spec("fleet", "batch", queue_document(), None)
    assert config.queue_sla and config.max_delay == dt.timedelta(minutes=10)
    assert [spec.indicator.name for spec in config.indicators] == ["work", "gpu"]
    assert config.backlog_indicator is not None
    assert config.backlog_indicator.query == "sum(queued)"
    assert [spec.indicator.name for spec in config.observed_indicators] == [
        "work",
        "gpu",
        "queued",
    ]
    assert config.demand_name == "work"


def test_without_a_kind_the_sla_is_shortfall() -> None:
    config = parse_spec("fleet", "web", pool_spec_document(), None)
    assert config.sla_kind == "shortfall" and config.max_delay is None
    assert config.backlog_indicator is None


def _without_max_delay() -> dict[str, Any]:
    document = queue_document()
    del document["sla"]["maxDelay"]
    return document


def _backlog_on_shortfall() -> dict[str, Any]:
    document = queue_document()
    document["sla"] = {"maxShortfallProbability": 0.05}
    return document


def _max_delay_on_shortfall() -> dict[str, Any]:
    return pool_spec_document(sla={"maxShortfallProbability": 0.05, "maxDelay": "10m"})


def _two_backlogs() -> dict[str, Any]:
    document = queue_document()
    document["indicators"].append({"name": "queued2", "query": "sum(q2)", "backlog": True})
    return document


def _backlog_is_demand() -> dict[str, Any]:
    document = queue_document()
    document["indicators"][1]["demand"] = True
    return document


def _two_demands() -> dict[str, Any]:
    document = queue_document()
    document["indicators"][2]["demand"] = True
    return document


# (bad document, field the parser names, the field the CRD's refusal names)
BAD_INPUTS: dict[str, tuple[Any, str, str]] = {
    "queue-without-max-delay": (_without_max_delay, "spec.sla.maxDelay", "spec.sla.maxDelay"),
    "zero-max-delay": (
        lambda: queue_document(maxDelay="0s"),
        "spec.sla.maxDelay",
        "spec.sla.maxDelay",
    ),
    "zero-max-delay-ms": (
        lambda: queue_document(maxDelay="0.0ms"),
        "spec.sla.maxDelay",
        "spec.sla.maxDelay",
    ),
    "negative-max-delay": (
        lambda: queue_document(maxDelay="-5m"),
        "spec.sla.maxDelay",
        "spec.sla.maxDelay",
    ),
    "max-delay-on-shortfall": (
        _max_delay_on_shortfall,
        "spec.sla.maxDelay",
        "spec.sla.maxDelay",
    ),
    "unknown-kind": (lambda: queue_document(kind="latency"), "spec.sla.kind", "spec.sla.kind"),
    "backlog-on-shortfall": (
        _backlog_on_shortfall,
        "spec.indicators[1].backlog",
        "spec.indicators",
    ),
    "two-backlogs": (_two_backlogs, "spec.indicators[3].backlog", "spec.indicators"),
    "backlog-is-demand": (
        _backlog_is_demand,
        "spec.indicators[1].backlog",
        "spec.indicators[1].backlog",
    ),
    "two-demands": (_two_demands, "spec.indicators", ""),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_the_parser_refuses_each_bad_queue_sla_at_its_field(case: str) -> None:
    build, field, _ = BAD_INPUTS[case]
    with pytest.raises(InvalidSpec) as refused:
        parse_spec("fleet", "batch", build(), None)
    assert refused.value.field == field, refused.value


@pytest.mark.parametrize("case", [case for case, item in BAD_INPUTS.items() if item[2]])
def test_the_crd_refuses_each_bad_queue_sla_at_its_field(case: str) -> None:
    build, _, field = BAD_INPUTS[case]
    errors = admission_errors(manifest(build()))
    assert errors, f"{case} would be accepted"
    assert all(error.split(":", 1)[0].startswith(field) for error in errors), errors


def test_the_crd_accepts_a_queue_pool_and_defaults_the_kind_to_shortfall() -> None:
    assert admission_errors(manifest(queue_document())) == []
    assert admission_errors(manifest(pool_spec_document())) == []
    document = queue_document(maxDelay="1h30m")
    assert admission_errors(manifest(document)) == []
