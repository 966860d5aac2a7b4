"""The operator's in-memory state between kopf handler calls, and cycle batching.

Every pool's timer asks `run_if_due`; pools whose slot has come are gathered for
`gather_seconds` and run as one `run_cycle` batch in a worker thread, so pools sharing a
model are forecast in one forward pass. Only the lease holder runs cycles.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from controller.actuators.kubernetes import ScaleBinding
from controller.actuators.targets import TargetActuator
from controller.cycle import CycleDeps, PoolOutcome, run_cycle
from controller.operator import backlog
from controller.operator.cycle_steps import PoolRuntime, condition, slot_start
from controller.operator.leader import LeaseElector
from controller.operator.metrics import OperatorMetrics
from controller.operator.spec import InvalidSpec, PoolConfig, parse_spec
from controller.operator.status import StatusWriter

log = logging.getLogger(__name__)
GOOD = {"Ready": "True", "MetricsAvailable": "True", "ModelReady": "True", "Invalid": "False"}


@dataclass
class OperatorRuntime:
    deps: CycleDeps
    actuator: TargetActuator
    elector: LeaseElector | None
    metrics: OperatorMetrics
    default_prometheus_url: str | None
    writer: StatusWriter | None = None
    gather_seconds: float = 0.3
    health_host: str = "0.0.0.0"
    health_port: int | None = None
    pools: dict[str, PoolRuntime] = field(default_factory=dict)
    invalid: dict[str, InvalidSpec] = field(default_factory=dict)
    started: bool = False
    closers: list[Any] = field(default_factory=list)
    _last_slot: dict[str, dt.datetime] = field(default_factory=dict)
    _pending: dict[str, asyncio.Future[PoolOutcome]] = field(default_factory=dict)
    _flusher: asyncio.Task[None] | None = None
    _leading: bool = False

    def is_leader(self) -> bool:
        return self.elector is None or self.elector.is_leader()

    def apply_spec(self, namespace: str, name: str, spec: dict[str, Any]) -> PoolConfig | None:
        """Parse and register a pool's spec; None (and the error kept) when it is invalid."""
        key = f"{namespace}/{name}"
        try:
            config = parse_spec(namespace, name, spec, self.default_prometheus_url)
        except InvalidSpec as error:
            self.invalid[key] = error
            self.pools.pop(key, None)
            self.actuator.unregister(key)
            return None
        self.invalid.pop(key, None)
        current = self.pools.get(key)
        if current is None or current.config != config:
            self.pools[key] = PoolRuntime.create(config, spec)
            self._last_slot.pop(key, None)
        self.actuator.register(
            key,
            ScaleBinding(
                target=config.target,
                provisioning_delay=config.provisioning_delay,
                node_selector=config.node_selector,
                gpus_per_replica=config.gpus_per_replica,
            ),
        )
        return config

    def forget(self, namespace: str, name: str) -> None:
        key = f"{namespace}/{name}"
        self.pools.pop(key, None)
        self.invalid.pop(key, None)
        self._last_slot.pop(key, None)
        self.actuator.unregister(key)
        self.metrics.forget(namespace, name)

    async def run_if_due(self, key: str) -> PoolOutcome | None:
        runtime = self.pools.get(key)
        leading = self.is_leader()
        self.metrics.leader.set(1 if leading else 0)
        if leading and not self._leading:
            # What this process remembers from an earlier term is stale: the leader since
            # then saved newer state, which each pool's next cycle restores.
            for pool in self.pools.values():
                pool.states_restored = False
        self._leading = leading
        if runtime is None or not leading:
            log.debug("%s: not run (%s)", key, "unknown" if runtime is None else "standby")
            return None
        slot = slot_start(self.deps.clock.now(), runtime.config.interval)
        if self._last_slot.get(key) == slot or key in self._pending:
            log.debug("%s: not due (slot %s, pending %s)", key, slot, key in self._pending)
            return None
        self._last_slot[key] = slot
        future: asyncio.Future[PoolOutcome] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        await asyncio.sleep(self.gather_seconds)
        batch, self._pending, self._flusher = self._pending, {}, None
        keys = [key for key in batch if key in self.pools]
        runtimes = [self.pools[key] for key in keys]
        started = time.monotonic()
        try:
            outcomes = await asyncio.to_thread(run_cycle, runtimes, self.deps)
        except Exception as error:  # a bug must not kill the batch's handlers silently
            log.exception("control cycle failed for %d pools", len(runtimes))
            for key, future in batch.items():
                if not future.done():
                    pool = self.pools.get(key)
                    failed = PoolOutcome(
                        key=key,
                        cycle_at=self.deps.clock.now(),
                        queue_sla=pool is not None and pool.config.queue_sla,
                    )
                    failed.conditions["Ready"] = condition(False, "CycleError", str(error)[:500])
                    future.set_result(failed)
            return
        seconds = time.monotonic() - started
        log.info("cycle of %d pools took %.3f s", len(runtimes), seconds)
        for key, outcome in zip(keys, outcomes, strict=True):
            namespace, name = key.split("/", 1)
            self.metrics.observe(namespace, name, outcome, seconds)
            batch.pop(key).set_result(outcome)
        for key, future in batch.items():  # deleted while waiting
            if not future.done():
                future.set_result(PoolOutcome(key=key, cycle_at=self.deps.clock.now(), ran=False))


def merge_conditions(
    previous: list[dict[str, Any]] | None,
    current: dict[str, tuple[str, str, str]],
    now: dt.datetime,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The status's conditions updated with `current`; also those whose status or reason
    changed (each gets an Event). `lastTransitionTime` moves only when the status does."""
    stamp = now.isoformat().replace("+00:00", "Z")
    by_type = {item["type"]: dict(item) for item in previous or [] if "type" in item}
    changed: list[dict[str, Any]] = []
    for kind, (status, reason, message) in current.items():
        before = by_type.get(kind)
        entry = {"type": kind, "status": status, "reason": reason, "message": message[:1000]}
        if before is not None and before.get("status") == status:
            entry["lastTransitionTime"] = before.get("lastTransitionTime", stamp)
        else:
            entry["lastTransitionTime"] = stamp
        if before is None or before.get("status") != status or before.get("reason") != reason:
            changed.append(entry)
        by_type[kind] = entry
    order = ["Ready", "MetricsAvailable", "ModelReady", "Invalid"]
    merged = sorted(by_type.values(), key=lambda c: ([*order, c["type"]]).index(c["type"]))
    return merged, changed


def status_update(
    outcome: PoolOutcome,
    previous: dict[str, Any],
    mode: str | None,
    generation: int | None,
    now: dt.datetime,
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """The status fields a cycle's outcome writes over `previous` (the status as read), and
    the Events (type, reason, message) it posts: one per scale, replica change seen, or
    condition whose status or reason changed."""
    conditions = dict(outcome.conditions)
    # A cycle may find the target itself unusable (e.g. a dynamic NodePool): its Invalid stays.
    conditions.setdefault("Invalid", ("False", "SpecValid", "the spec passed every check"))
    merged, changed = merge_conditions(list(previous.get("conditions") or []), conditions, now)
    if not outcome.queue_sla:  # no longer a queue pool: its backlog condition goes too
        merged = [entry for entry in merged if entry["type"] != backlog.CONDITION]
    fields = outcome.status_fields()
    fields["mode"] = mode
    fields["observedGeneration"] = generation
    fields["conditions"] = merged
    events: list[tuple[str, str, str]] = []
    action = outcome.action
    if action is not None and action.applied:
        fields["lastScaleTime"] = now.isoformat().replace("+00:00", "Z")
        events.append(("Normal", "Scaled", action.message))
    elif outcome.replicas is not None and previous.get("replicas") not in (
        None,
        outcome.replicas,
    ):
        events.append(
            (
                "Normal",
                "ReplicasChanged",
                f"the target now has {outcome.replicas} replicas (was {previous.get('replicas')})",
            )
        )
    events += [(event_type(entry), entry["reason"], entry["message"]) for entry in changed]
    kept = {k: v for k, v in fields.items() if v is not None or k in backlog.STATUS_FIELDS}
    return kept, events


def event_type(condition_entry: dict[str, Any]) -> str:
    if condition_entry["type"] == "EnforceReady":
        # Collecting evidence is the normal course; a missed SLA deserves a look.
        return "Warning" if condition_entry["reason"] == "SLAMissed" else "Normal"
    good = GOOD.get(condition_entry["type"], "True")
    return "Normal" if condition_entry["status"] == good else "Warning"
