"""What must hold after a soak, judged from the state store and the API's request log.

- doubled: an action applied twice for one (pool, cycle) key: two rows under one key, or
  two changes of the target's replicas matching one recorded action;
- lost: a recorded applied action with no matching change in the API's history, or a
  change of a target's replicas with no recorded action;
- unsafe scale-downs: an applied scale-down in a cycle whose metrics Prometheus (through
  the proxy) did not answer in full, or whose decision recorded them incomplete;
- below floor: a target set below `minReplicas` (Deployments pin no replicas);
- split brain: a lease term in which a process other than the holder patched a target;
- invisible / uncleared: a fault that no condition or Event showed within two of the
  affected pool's cycles from its start, or whose condition was not good again within two
  cycles from its end.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import create_engine, select

from bench.soak.faults import Window, pool_name
from bench.soak.kube import ApiRecord
from bench.soak.prometheus import QueryRecord
from bench.soak.schedule import FaultKind, Schedule
from controller.clock import ScaledClock
from controller.state.models import Action, ActionResult, DecisionRecord, Pool

# How long after its intent an applied action's patch may land (retries, hung requests).
PATCH_LAG_SECONDS = 90.0
# A kill is seen once the lease expires (4 s) and the standby renews; a spec edit once
# kopf's watch delivers it: both on top of the two cycles.
LEASE_SECONDS = 4.0
WATCH_SECONDS = 3.0
BAD_METRICS = frozenset(
    kind.value
    for kind in (
        FaultKind.prometheus_stopped,
        FaultKind.prometheus_5xx,
        FaultKind.prometheus_slow,
        FaultKind.prometheus_stale,
        FaultKind.prometheus_partial,
    )
)
# The condition each kind must show: (type, status or None, reason or None).
SHOWS: dict[FaultKind, tuple[str, str | None, str | None]] = {
    FaultKind.prometheus_stopped: ("MetricsAvailable", "False", None),
    FaultKind.prometheus_5xx: ("MetricsAvailable", "False", None),
    FaultKind.prometheus_slow: ("MetricsAvailable", "False", None),
    FaultKind.prometheus_stale: ("MetricsAvailable", None, "MetricsPartial"),
    FaultKind.prometheus_partial: ("MetricsAvailable", None, "MetricsPartial"),
    FaultKind.api_conflict: ("Ready", "False", "ScaleFailed"),
    FaultKind.api_timeout: ("Ready", "False", "ScaleFailed"),
    FaultKind.api_throttled: ("Ready", "False", "TargetUnavailable"),
    FaultKind.api_error: ("Ready", "False", "TargetUnavailable"),
    FaultKind.api_forbidden: ("Ready", "False", "Forbidden"),
    FaultKind.postgres_restarted: ("Ready", "False", "StateStoreUnavailable"),
    FaultKind.postgres_refusing: ("Ready", "False", "StateStoreUnavailable"),
    FaultKind.spec_invalid: ("Invalid", "True", None),
}
GOOD = {"MetricsAvailable": "True", "Ready": "True", "Invalid": "False"}
# Faults the operator may absorb without failing anything (retries, pre-ping): only the
# pools where something failed must show them.
ABSORBABLE = frozenset(
    {FaultKind.api_conflict, FaultKind.api_timeout, FaultKind.postgres_restarted}
)


@dataclass
class Evidence:
    schedule: Schedule
    windows: list[Window]
    api: list[ApiRecord]
    queries: list[QueryRecord]
    database_url: str
    clock: ScaledClock
    first_cycle: dt.datetime
    interval: dt.timedelta
    min_replicas: int
    pools: list[str]


@dataclass
class Verdict:
    cycles: int = 0
    actions: int = 0
    doubled: int = 0
    lost: int = 0
    unsafe_scale_downs: int = 0
    below_floor: int = 0
    split_brain: int = 0
    invisible: int = 0
    uncleared: int = 0
    problems: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # one line per fault: how it was seen


@dataclass(frozen=True)
class Applied:
    pool: str
    key: str
    created: float  # wall time of the intent
    before: int
    after: int
    metrics_complete: bool | None


def check(evidence: Evidence) -> Verdict:
    verdict = Verdict()
    applied, keys_twice = _applied_actions(evidence)
    verdict.actions = len(applied)
    verdict.doubled += keys_twice
    changes = [r for r in evidence.api if _is_scale_write(r) and r.before != r.after]
    _match(applied, changes, verdict)
    _unsafe(applied, evidence, verdict)
    for change in changes:
        if change.after is not None and change.after < evidence.min_replicas:
            verdict.below_floor += 1
            verdict.problems.append(f"below floor: {change.name} set to {change.after}")
    _split_brain(evidence.api, verdict)
    statuses = _status_writes(evidence)
    verdict.cycles = len({cycle for writes in statuses.values() for _, cycle, _ in writes})
    for window in evidence.windows:
        _visibility(window, evidence, statuses, applied, verdict)
    return verdict


def _applied_actions(evidence: Evidence) -> tuple[list[Applied], int]:
    engine = create_engine(evidence.database_url)
    with engine.connect() as connection:
        rows = connection.execute(
            select(Action, Pool.name, DecisionRecord.inputs)
            .join(Pool, Pool.id == Action.pool_id)
            .outerjoin(DecisionRecord, DecisionRecord.id == Action.decision_id)
            .order_by(Action.id)
        ).all()
    engine.dispose()
    seen: dict[tuple[str, str], int] = defaultdict(int)
    applied: list[Applied] = []
    for row in rows:
        values = row._mapping
        key, pool = values["idempotency_key"], values["name"]
        seen[(pool, key)] += 1
        if values["result"] != ActionResult.succeeded:
            continue
        if values["from_replicas"] == values["to_replicas"]:
            continue
        inputs = values["inputs"] or {}
        created = values["created_at"]
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        applied.append(
            Applied(
                pool=pool,
                key=key,
                created=evidence.clock.wall(created),
                before=values["from_replicas"],
                after=values["to_replicas"],
                metrics_complete=inputs.get("metrics_complete"),
            )
        )
    return applied, sum(count - 1 for count in seen.values() if count > 1)


def _is_scale_write(record: ApiRecord) -> bool:
    return (
        record.resource == "deployments"
        and record.subresource == "scale"
        and record.method == "PATCH"
        and 200 <= record.status < 300
    )


def _match(applied: list[Applied], changes: list[ApiRecord], verdict: Verdict) -> None:
    """Each change of a target's replicas to the recorded action it carried out."""
    open_actions: dict[str, list[Applied]] = defaultdict(list)
    for action in applied:
        open_actions[action.pool].append(action)
    done: dict[str, list[Applied]] = defaultdict(list)
    for change in sorted(changes, key=lambda r: r.at):
        candidates = open_actions[change.name]
        found = next((a for a in candidates if _carries(change, a)), None)
        if found is not None:
            candidates.remove(found)
            done[change.name].append(found)
            continue
        if any(_carries(change, a) for a in done[change.name]):
            verdict.doubled += 1
            verdict.problems.append(f"doubled: {change.name} {change.before}→{change.after}")
        else:
            verdict.lost += 1
            verdict.problems.append(
                f"unrecorded patch: {change.name} {change.before}→{change.after} "
                f"by {change.identity} at {change.at:.1f}"
            )
    for pool, left in open_actions.items():
        for action in left:
            verdict.lost += 1
            verdict.problems.append(f"recorded but not in the API: {pool} {action.key}")


def _carries(change: ApiRecord, action: Applied) -> bool:
    return (
        change.before == action.before
        and change.after == action.after
        and action.created - 1.0 <= change.at <= action.created + PATCH_LAG_SECONDS
    )


def _unsafe(applied: list[Applied], evidence: Evidence, verdict: Verdict) -> None:
    answers: dict[tuple[str, float], list[QueryRecord]] = defaultdict(list)
    for query in evidence.queries:
        answers[(query.pool, round(query.end))].append(query)
    step = evidence.interval.total_seconds()
    for action in applied:
        if action.after >= action.before:
            continue
        cycle_at = dt.datetime.fromisoformat(action.key.rsplit("@", 1)[1])
        seen = [q for q in answers[(action.pool, round(cycle_at.timestamp() - step))]]
        seen = [q for q in seen if q.at <= action.created + PATCH_LAG_SECONDS]
        last = max(seen, key=lambda q: q.at) if seen else None
        bad = last is None or last.fault in BAD_METRICS or action.metrics_complete is False
        if bad:
            verdict.unsafe_scale_downs += 1
            verdict.problems.append(
                f"unsafe scale-down: {action.key} {action.before}→{action.after} "
                f"(metrics: {'none' if last is None else last.fault or 'ok'}, "
                f"complete={action.metrics_complete})"
            )


def _split_brain(api: list[ApiRecord], verdict: Verdict) -> None:
    terms: list[tuple[float, str]] = []
    for record in sorted(api, key=lambda r: r.at):
        if record.resource == "leases" and 200 <= record.status < 300:
            holder = str(((record.data or {}).get("spec") or {}).get("holderIdentity") or "")
            if not terms or terms[-1][1] != holder:
                terms.append((record.at, holder))
    split: set[int] = set()
    for record in api:
        if not _is_scale_write(record):
            continue
        term = max((i for i, (at, _) in enumerate(terms) if at <= record.at), default=-1)
        holder = terms[term][1] if term >= 0 else ""
        if record.identity != holder and term not in split:
            split.add(term)
            verdict.problems.append(
                f"split brain: {record.identity} patched {record.name} in {holder!r}'s term"
            )
    verdict.split_brain = len(split)


StatusWrite = tuple[float, float, dict[str, dict[str, Any]]]  # at, cycle (wall), conditions


def _status_writes(evidence: Evidence) -> dict[str, list[StatusWrite]]:
    writes: dict[str, list[StatusWrite]] = defaultdict(list)
    for record in evidence.api:
        if record.resource != "poolautoscalers" or record.subresource != "status":
            continue
        if not 200 <= record.status < 300:
            continue
        status = (record.data or {}).get("status") or {}
        stamp = status.get("lastCycleTime")
        cycle = (
            evidence.clock.wall(dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")))
            if stamp
            else record.at
        )
        conditions = {c["type"]: c for c in status.get("conditions") or [] if "type" in c}
        writes[record.name].append((record.at, cycle, conditions))
    for items in writes.values():
        items.sort(key=lambda item: item[0])
    return writes


def _events(evidence: Evidence) -> list[tuple[float, str, str]]:
    found = []
    for record in evidence.api:
        if record.resource == "events" and isinstance(record.data, dict):
            involved = record.data.get("involvedObject") or {}
            found.append((record.at, str(involved.get("name")), str(record.data.get("reason"))))
    return found


def _shows(condition: dict[str, Any] | None, kind: FaultKind) -> bool:
    _, status, reason = SHOWS[kind]
    if condition is None:
        return False
    return (status is None or condition.get("status") == status) and (
        reason is None or condition.get("reason") == reason
    )


def cleared(condition: dict[str, Any] | None, kind: FaultKind) -> bool:
    """Good again, and no longer showing the fault: a MetricsPartial condition is `True`
    (the metrics are usable), so for stale and partial metrics the status alone would
    count a fault that never cleared as cleared."""
    good = GOOD[SHOWS[kind][0]]
    return condition is not None and condition.get("status") == good and not _shows(condition, kind)


def _visibility(
    window: Window,
    evidence: Evidence,
    statuses: dict[str, list[StatusWrite]],
    applied: list[Applied],
    verdict: Verdict,
) -> None:
    fault = window.fault
    kind = fault.kind
    events = _events(evidence)
    if kind == FaultKind.leader_killed:
        deadline = _two_cycles_after(statuses, window.began + LEASE_SECONDS) + WATCH_SECONDS
        seen = any(
            window.began <= at <= deadline and reason == "LeaderElection"
            for at, _, reason in events
        )
        verdict.invisible += 0 if seen else 1
        verdict.faults.append(f"{fault.describe()}: {'seen' if seen else 'NOT SEEN'} (Event)")
        return
    pools = _expected_pools(window, evidence, statuses)
    condition_type = SHOWS[kind][0]
    missed, uncleared = [], []
    for pool in pools:
        writes = statuses.get(pool, [])
        if kind == FaultKind.spec_invalid:
            deadline = _two_cycles_after(statuses, window.began, skip=pool) + WATCH_SECONDS
            shown_in = [w for w in writes if window.began <= w[0] <= deadline]
        else:
            shown_in = [w for w in writes if window.began <= w[1] < window.ended][:2]
            deadline = shown_in[-1][0] if shown_in else window.began
        shown = any(_shows(w[2].get(condition_type), kind) for w in shown_in) or any(
            window.began <= at <= deadline and name == pool and reason == SHOWS[kind][2]
            for at, name, reason in events
        )
        if not shown:
            missed.append(pool)
        later = [w for w in writes if w[1] >= window.ended][:2]
        if not any(cleared(w[2].get(condition_type), kind) for w in later):
            uncleared.append(pool)
    if kind in ABSORBABLE and not pools:
        verdict.faults.append(f"{fault.describe()}: absorbed (nothing failed)")
        return
    verdict.invisible += len(missed)
    verdict.uncleared += len(uncleared)
    verdict.faults.append(
        f"{fault.describe()}: shown on {len(pools) - len(missed)}/{len(pools)} pools, "
        f"cleared on {len(pools) - len(uncleared)}/{len(pools)}"
    )
    for pool in missed[:3]:
        verdict.problems.append(f"invisible: {fault.describe()} on {pool}")
    for pool in uncleared[:3]:
        verdict.problems.append(f"uncleared: {fault.describe()} on {pool}")


def _two_cycles_after(
    statuses: dict[str, list[StatusWrite]], since: float, skip: str = ""
) -> float:
    """When every pool (but `skip`) had written the status of two cycles begun since."""
    ends = []
    for pool, writes in statuses.items():
        later = [w[0] for w in writes if w[1] >= since]
        if pool != skip and len(later) >= 2:
            ends.append(later[1])
    return max(ends, default=since)


def _expected_pools(
    window: Window, evidence: Evidence, statuses: dict[str, list[StatusWrite]]
) -> list[str]:
    kind = window.fault.kind
    if window.fault.pool is not None:
        return [pool_name(window.fault.pool)]
    if kind not in ABSORBABLE:
        return list(evidence.pools)
    # Absorbable: the pools whose cycles under the fault failed (as their status says).
    return [
        pool
        for pool, writes in statuses.items()
        if any(
            _shows(conditions.get(SHOWS[kind][0]), kind)
            for _, cycle, conditions in writes
            if window.began <= cycle < window.ended
        )
    ]
