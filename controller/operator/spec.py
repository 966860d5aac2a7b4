"""A `PoolAutoscaler` spec turned into typed settings, or an `InvalidSpec` naming the field.

The CRD's schema already rejects wrong types, ranges and enums (and min > max through its
CEL rule). What it cannot express is checked here and reported as the condition
`Invalid=True` with the field named: no demand indicator or several, a target kind the
operator has no permission to scale, a fallback outside the bounds, a duration that does
not parse, an interval too short, no Prometheus at all. The parser is also the defence
when the schema is bypassed (older CRD, a test server without validation), so it repeats
the schema's CEL rules of the queue SLA: `kind: queue` needs a `maxDelay` above zero, and
an indicator marked `backlog: true` (at most one, never the demand) needs `kind: queue`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.errors import HarmonyError
from controller.operator.permissions import BUFFER_TARGETS, TARGET_KINDS
from controller.series import Indicator

MODES = ("Recommend", "Enforce")
SLA_KINDS = ("shortfall", "queue")
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
# Below this, one cycle's Prometheus queries and API calls cannot reliably fit.
MIN_INTERVAL = dt.timedelta(seconds=1)


class InvalidSpec(HarmonyError):
    """A spec the operator cannot act on; `field` is its JSON path, e.g. `spec.indicators`."""

    def __init__(self, field_path: str, problem: str) -> None:
        super().__init__(f"{field_path}: {problem}")
        self.field = field_path
        self.problem = problem


def parse_duration(text: object, field_path: str) -> dt.timedelta:
    """`90s`, `10m`, `1h30m`, `7d` → timedelta; anything else is an InvalidSpec."""
    if not isinstance(text, str) or not text:
        raise InvalidSpec(field_path, f"expected a duration such as 90s or 10m, got {text!r}")
    position, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if position != len(text):
        raise InvalidSpec(field_path, f"expected a duration such as 90s or 10m, got {text!r}")
    return dt.timedelta(seconds=seconds)


@dataclass(frozen=True)
class TargetRef:
    """The object the pool drives: its `/scale` subresource, or for a `CapacityBuffer` its
    `spec.replicas`; `pod_selector` labels the workload's pods (CapacityBuffer only)."""

    api_version: str
    kind: str
    name: str
    namespace: str
    group: str
    resource: str
    pod_selector: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.api_version.rsplit("/", 1)[-1]

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class IndicatorSpec:
    indicator: Indicator
    query: str
    # Queued work in demand units (queue SLA): read as the backlog, never forecast.
    backlog: bool = False


@dataclass(frozen=True)
class PoolConfig:
    """Everything one pool's control cycle needs from its custom resource."""

    namespace: str
    name: str
    target: TargetRef
    capacity_per_replica: float
    min_replicas: int
    max_replicas: int
    provisioning_delay: dt.timedelta
    interval: dt.timedelta
    mode: str
    max_shortfall_probability: float
    target_utilization: float
    price_per_replica_hour: float
    shortfall_penalty_per_unit_hour: float
    indicators: tuple[IndicatorSpec, ...]
    max_step_up: int | None
    max_step_down: int | None
    stabilization_window: dt.timedelta
    fallback_replicas: int | None
    fallback_after_failed_cycles: int
    prometheus_url: str | None
    prometheus_timeout: dt.timedelta
    node_selector: dict[str, str] = field(default_factory=dict)
    gpus_per_replica: int = 1
    model_history: dt.timedelta = dt.timedelta(days=7)
    retrain_every: dt.timedelta = dt.timedelta(hours=24)
    context_steps: int = 48
    horizon_steps: int = 4
    max_train_seconds: float = 85.0
    sla_kind: str = "shortfall"
    max_delay: dt.timedelta | None = None
    # The indicator marked `backlog: true`; not in `indicators` (those the model reads).
    backlog_indicator: IndicatorSpec | None = None
    min_node_lifetime: dt.timedelta = dt.timedelta(0)
    max_scale_downs_per_hour: int | None = None
    readiness_min_days: float = 7.0

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def enforce(self) -> bool:
        return self.mode == "Enforce"

    @property
    def queue_sla(self) -> bool:
        return self.sla_kind == "queue"

    @property
    def observed_indicators(self) -> tuple[IndicatorSpec, ...]:
        """What a cycle queries: the model's indicators, then the backlog indicator if any."""
        extra = () if self.backlog_indicator is None else (self.backlog_indicator,)
        return (*self.indicators, *extra)

    @property
    def demand_column(self) -> int:
        return next(i for i, spec in enumerate(self.indicators) if spec.indicator.demand)

    @property
    def demand_name(self) -> str:
        return self.indicators[self.demand_column].indicator.name

    @property
    def provisioning_delay_steps(self) -> int:
        return math.ceil(self.provisioning_delay / self.interval - 1e-9)

    @property
    def stabilization_steps(self) -> int:
        return max(1, math.ceil(self.stabilization_window / self.interval - 1e-9))


def _get(mapping: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = mapping.get(key, default)
    return default if value is None else value


def _mapping(value: object, field_path: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidSpec(field_path, f"expected an object, got {type(value).__name__}")
    return value


def _number(value: object, field_path: str, *, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidSpec(field_path, f"expected a number, got {value!r}")
    if not low <= float(value) <= high:
        raise InvalidSpec(field_path, f"must be within [{low:g}, {high:g}], got {value!r}")
    return float(value)


def _integer(value: object, field_path: str, *, low: int, high: int = 10**9) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSpec(field_path, f"expected an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidSpec(field_path, f"must be within [{low}, {high}], got {value}")
    return value


def _positive_days(value: object) -> float:
    days = _number(value, "spec.readiness.minDays", low=0.0, high=90.0)
    if days <= 0:
        raise InvalidSpec("spec.readiness.minDays", "must be greater than 0 days, e.g. 7")
    return days


def _target(spec: Mapping[str, Any], namespace: str) -> TargetRef:
    raw = _mapping(spec.get("target"), "spec.target")
    for key in ("apiVersion", "kind", "name"):
        if not isinstance(raw.get(key), str) or not raw.get(key):
            raise InvalidSpec(f"spec.target.{key}", "is required")
    kind = str(raw["kind"])
    if kind not in TARGET_KINDS:
        raise InvalidSpec(
            "spec.target.kind",
            f"{kind} is not a kind this operator may scale; use one of "
            f"{', '.join(sorted(TARGET_KINDS))}. A pool without a replica count (a dynamic "
            "Karpenter NodePool, cluster-autoscaler node groups) is driven through a "
            "CapacityBuffer (autoscaling.x-k8s.io) that its autoscaler honours",
        )
    group, resource = TARGET_KINDS[kind]
    api_version = str(raw["apiVersion"])
    given_group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    if given_group != group:
        raise InvalidSpec(
            "spec.target.apiVersion",
            f"{kind} belongs to API group {group or 'core'}, got {api_version!r}",
        )
    selector = _mapping(raw.get("podSelector"), "spec.target.podSelector")
    if kind in BUFFER_TARGETS and not selector:
        raise InvalidSpec(
            "spec.target.podSelector",
            "a CapacityBuffer target needs the labels of the workload's pods (e.g. "
            "app: llm-serving): the buffer holds only the capacity beyond what they request",
        )
    return TargetRef(
        api_version=api_version,
        kind=kind,
        name=str(raw["name"]),
        namespace=str(raw.get("namespace") or namespace),
        group=group,
        resource=resource,
        pod_selector={str(key): str(value) for key, value in selector.items()},
    )


def _indicators(spec: Mapping[str, Any]) -> tuple[IndicatorSpec, ...]:
    """Every indicator of the spec, in its order, the backlog indicator included."""
    raw = spec.get("indicators")
    if not isinstance(raw, list) or not raw:
        raise InvalidSpec("spec.indicators", "needs at least one indicator")
    result: list[IndicatorSpec] = []
    seen: set[str] = set()
    for position, item in enumerate(raw):
        where = f"spec.indicators[{position}]"
        entry = _mapping(item, where)
        name, query = entry.get("name"), entry.get("query")
        if not isinstance(name, str) or not name:
            raise InvalidSpec(f"{where}.name", "is required")
        if name in seen:
            raise InvalidSpec(f"{where}.name", f"{name!r} appears twice; names must be unique")
        seen.add(name)
        if not isinstance(query, str) or not query.strip():
            raise InvalidSpec(f"{where}.query", "needs a PromQL expression")
        level = _integer(_get(entry, "level", 1), f"{where}.level", low=1, high=8)
        demand = bool(_get(entry, "demand", False))
        backlog = bool(_get(entry, "backlog", False))
        if backlog and demand:
            raise InvalidSpec(
                f"{where}.backlog",
                "an indicator is either the demand (work arriving) or the backlog (work "
                "queued), not both; mark the queued work's query alone backlog: true",
            )
        result.append(
            IndicatorSpec(Indicator(name=name, level=level, demand=demand), query, backlog)
        )
    demands = [spec.indicator.name for spec in result if spec.indicator.demand]
    if len(demands) != 1:
        found = "none is" if not demands else f"{len(demands)} are ({', '.join(demands)})"
        raise InvalidSpec(
            "spec.indicators",
            f"exactly one indicator must be marked demand: true; {found}",
        )
    return tuple(result)


def _backlog_indicator(
    indicators: tuple[IndicatorSpec, ...], sla_kind: str
) -> IndicatorSpec | None:
    """The one indicator marked `backlog: true`, allowed only with the queue SLA."""
    marked = [(position, spec) for position, spec in enumerate(indicators) if spec.backlog]
    if not marked:
        return None
    position, found = marked[0]
    if sla_kind != "queue":
        raise InvalidSpec(
            f"spec.indicators[{position}].backlog",
            "a backlog indicator needs demand that is work, i.e. spec.sla.kind: queue; set "
            "the kind or drop backlog: true",
        )
    if len(marked) > 1:
        names = ", ".join(spec.indicator.name for _, spec in marked)
        raise InvalidSpec(
            f"spec.indicators[{marked[1][0]}].backlog",
            f"at most one indicator may be marked backlog: true; {len(marked)} are ({names})",
        )
    return found


def _sla_kind_and_delay(sla: Mapping[str, Any]) -> tuple[str, dt.timedelta | None]:
    kind = _get(sla, "kind", "shortfall")
    if kind not in SLA_KINDS:
        raise InvalidSpec("spec.sla.kind", f"must be shortfall or queue, got {kind!r}")
    raw_delay = sla.get("maxDelay")
    if kind == "shortfall":
        if raw_delay is not None:
            raise InvalidSpec(
                "spec.sla.maxDelay",
                "applies to spec.sla.kind: queue only; set the kind to queue or drop maxDelay",
            )
        return "shortfall", None
    if raw_delay is None:
        raise InvalidSpec(
            "spec.sla.maxDelay",
            "is required with spec.sla.kind: queue (the longest work may wait, e.g. 10m)",
        )
    delay = parse_duration(raw_delay, "spec.sla.maxDelay")
    if delay <= dt.timedelta(0):
        raise InvalidSpec(
            "spec.sla.maxDelay", f"must be greater than 0 (e.g. 10m), got {raw_delay!r}"
        )
    return "queue", delay


def parse_spec(
    namespace: str, name: str, spec: Mapping[str, Any], default_prometheus_url: str | None
) -> PoolConfig:
    """The pool's settings from its CR spec; `InvalidSpec` names the first bad field."""
    target = _target(spec, namespace)
    capacity = _number(spec.get("capacityPerReplica"), "spec.capacityPerReplica", low=0.0)
    if capacity <= 0:
        raise InvalidSpec("spec.capacityPerReplica", "must be greater than 0")
    min_replicas = _integer(_get(spec, "minReplicas", 0), "spec.minReplicas", low=0)
    max_replicas = _integer(spec.get("maxReplicas"), "spec.maxReplicas", low=1)
    if min_replicas > max_replicas:
        raise InvalidSpec("spec.minReplicas", f"{min_replicas} is above maxReplicas {max_replicas}")
    interval = parse_duration(_get(spec, "interval", "1m"), "spec.interval")
    if interval < MIN_INTERVAL:
        raise InvalidSpec("spec.interval", f"must be at least {MIN_INTERVAL.total_seconds():g}s")
    delay = parse_duration(_get(spec, "provisioningDelay", "0s"), "spec.provisioningDelay")
    mode = _get(spec, "mode", "Recommend")
    if mode not in MODES:
        raise InvalidSpec("spec.mode", f"must be Recommend or Enforce, got {mode!r}")
    sla = _mapping(spec.get("sla"), "spec.sla")
    epsilon = _number(
        _get(sla, "maxShortfallProbability", 0.01), "spec.sla.maxShortfallProbability", low=0.0
    )
    if not 0 < epsilon <= 0.5:
        raise InvalidSpec("spec.sla.maxShortfallProbability", f"must be in (0, 0.5], got {epsilon}")
    utilization = _number(
        _get(sla, "targetUtilization", 1.0), "spec.sla.targetUtilization", low=0.0, high=1.0
    )
    if utilization <= 0:
        raise InvalidSpec("spec.sla.targetUtilization", "must be greater than 0")
    sla_kind, max_delay = _sla_kind_and_delay(sla)
    every_indicator = _indicators(spec)
    backlog_indicator = _backlog_indicator(every_indicator, sla_kind)
    costs = _mapping(spec.get("costs"), "spec.costs")
    behavior = _mapping(spec.get("behavior"), "spec.behavior")
    up = _mapping(behavior.get("scaleUp"), "spec.behavior.scaleUp")
    down = _mapping(behavior.get("scaleDown"), "spec.behavior.scaleDown")
    max_up = up.get("maxStep")
    max_down = down.get("maxStep")
    max_down_actions = down.get("maxActionsPerHour")
    fallback = spec.get("fallbackReplicas")
    if fallback is not None:
        fallback = _integer(fallback, "spec.fallbackReplicas", low=0)
        if not min_replicas <= fallback <= max_replicas:
            raise InvalidSpec(
                "spec.fallbackReplicas",
                f"{fallback} lies outside [minReplicas {min_replicas}, maxReplicas {max_replicas}]",
            )
    prometheus = _mapping(spec.get("prometheus"), "spec.prometheus")
    url = prometheus.get("url") or default_prometheus_url
    if not url:
        raise InvalidSpec(
            "spec.prometheus.url",
            "no Prometheus given and the operator has no default; set spec.prometheus.url "
            "or HARMONY_PROMETHEUS_URL",
        )
    model = _mapping(spec.get("model"), "spec.model")
    readiness = _mapping(spec.get("readiness"), "spec.readiness")
    node_selector = _mapping(spec.get("nodeSelector"), "spec.nodeSelector")
    delay_steps = math.ceil(delay / interval - 1e-9)
    horizon = model.get("horizonSteps")
    return PoolConfig(
        namespace=namespace,
        name=name,
        target=target,
        capacity_per_replica=capacity,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        provisioning_delay=delay,
        interval=interval,
        mode=str(mode),
        max_shortfall_probability=epsilon,
        target_utilization=utilization,
        price_per_replica_hour=_number(
            _get(costs, "pricePerReplicaHour", 1.0), "spec.costs.pricePerReplicaHour", low=0.0
        ),
        shortfall_penalty_per_unit_hour=_number(
            _get(costs, "shortfallPenaltyPerUnitHour", 10.0),
            "spec.costs.shortfallPenaltyPerUnitHour",
            low=0.0,
        ),
        indicators=tuple(item for item in every_indicator if not item.backlog),
        max_step_up=None
        if max_up is None
        else _integer(max_up, "spec.behavior.scaleUp.maxStep", low=1),
        max_step_down=(
            None
            if max_down is None
            else _integer(max_down, "spec.behavior.scaleDown.maxStep", low=1)
        ),
        stabilization_window=parse_duration(
            _get(down, "stabilizationWindow", "5m"), "spec.behavior.scaleDown.stabilizationWindow"
        ),
        fallback_replicas=fallback,
        fallback_after_failed_cycles=_integer(
            _get(spec, "fallbackAfterFailedCycles", 3), "spec.fallbackAfterFailedCycles", low=1
        ),
        prometheus_url=str(url),
        prometheus_timeout=parse_duration(
            _get(prometheus, "timeout", "10s"), "spec.prometheus.timeout"
        ),
        node_selector={str(k): str(v) for k, v in node_selector.items()},
        gpus_per_replica=_integer(_get(spec, "gpusPerReplica", 1), "spec.gpusPerReplica", low=1),
        model_history=parse_duration(_get(model, "history", "7d"), "spec.model.history"),
        retrain_every=parse_duration(_get(model, "retrainEvery", "24h"), "spec.model.retrainEvery"),
        context_steps=_integer(
            _get(model, "contextSteps", 48), "spec.model.contextSteps", low=4, high=2016
        ),
        horizon_steps=(
            max(delay_steps + 1, 4)
            if horizon is None
            else _integer(horizon, "spec.model.horizonSteps", low=delay_steps + 1, high=288)
        ),
        max_train_seconds=_number(
            _get(model, "maxTrainSeconds", 85), "spec.model.maxTrainSeconds", low=5, high=3600
        ),
        sla_kind=sla_kind,
        max_delay=max_delay,
        backlog_indicator=backlog_indicator,
        min_node_lifetime=parse_duration(
            _get(down, "minNodeLifetime", "0s"), "spec.behavior.scaleDown.minNodeLifetime"
        ),
        max_scale_downs_per_hour=(
            None
            if max_down_actions is None
            else _integer(
                max_down_actions, "spec.behavior.scaleDown.maxActionsPerHour", low=1, high=3600
            )
        ),
        readiness_min_days=_positive_days(_get(readiness, "minDays", 7)),
    )
