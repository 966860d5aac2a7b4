"""Applies the schedule: each fault switched on at its cycle and off at its end, with the
wall times at which it really began and ended (a restart ends when the service is back)."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.soak.kube import NAMESPACE, ActiveFault, SoakEmulator
from bench.soak.operators import OperatorLauncher, OperatorProcess
from bench.soak.postgres import PostgresCluster
from bench.soak.prometheus import PrometheusProcess, PrometheusProxy
from bench.soak.schedule import Fault, FaultKind, Schedule

PROXIED = (
    FaultKind.prometheus_5xx,
    FaultKind.prometheus_slow,
    FaultKind.prometheus_stale,
    FaultKind.prometheus_partial,
)
API = (
    FaultKind.api_conflict,
    FaultKind.api_throttled,
    FaultKind.api_error,
    FaultKind.api_timeout,
    FaultKind.api_forbidden,
)


@dataclass
class Window:
    fault: Fault
    began: float = 0.0  # wall time
    ended: float = 0.0
    note: str = ""


@dataclass
class FaultDriver:
    schedule: Schedule
    cycle_wall: Callable[[int], float]  # wall time at which schedule cycle n begins
    mock: SoakEmulator
    api_url: str
    proxy: PrometheusProxy
    prometheus: PrometheusProcess
    postgres: PostgresCluster
    launcher: OperatorLauncher
    operators: list[OperatorProcess]
    specs: dict[str, dict[str, Any]]
    cycle_seconds: float
    clock_wall: Callable[[str], float]  # lastCycleTime (RFC 3339) → wall time
    hold_cycles: int = 2
    data_ends: float = float("inf")  # wall time at which the backfilled demand runs out
    windows: list[Window] = field(default_factory=list)
    _killed: str = ""

    @property
    def pools(self) -> list[str]:
        return list(self.specs)

    async def run(self) -> None:
        """Each fault lasts its scheduled cycles and at least until every pool it hits has
        run `hold_cycles` cycles under it (a loaded machine runs fewer than the clock
        offers); the gap after it lasts its scheduled cycles, and at least until every pool
        has run two cycles since (what clearing is judged on)."""
        at = self.cycle_wall(self.schedule.faults[0].start if self.schedule.faults else 0)
        for fault in self.schedule.faults:
            self._check_data()
            window = Window(fault)
            self.windows.append(window)
            await _sleep_until(at)
            window.began = time.time()
            await self._begin(fault, window)
            await _sleep_until(window.began + (fault.end - fault.start) * self.cycle_seconds)
            await self._hold(fault, window)
            await self._end(fault, window)
            window.ended = time.time()
            print(f"  {fault.describe()}: {window.ended - window.began:5.1f} s {window.note}")
            gap = self._gap_after(fault)
            need = max(2, gap)
            await self._wait_until_cleared(fault, window, need)
            waited = time.time() - window.ended
            print(f"    then {waited:4.1f} s until every pool was clear or ran {need} cycles")
            at = window.ended + gap * self.cycle_seconds
        tail = self.schedule.cycles - (self.schedule.faults[-1].end if self.schedule.faults else 0)
        await _sleep_until(max(at, time.time() + tail * self.cycle_seconds))
        await self._wait_for_cycles(self.pools, time.time())
        self._check_data()

    def _gap_after(self, fault: Fault) -> int:
        later = [f.start for f in self.schedule.faults if f.start >= fault.end]
        return (min(later) if later else self.schedule.cycles) - fault.end

    def _check_data(self) -> None:
        if time.time() >= self.data_ends:
            raise RuntimeError(
                "the soak outlived its backfilled demand: every later cycle would lack "
                "metrics; backfill more (SoakConfig.data_wall_seconds) or run fewer cycles"
            )

    async def _hold(self, fault: Fault, window: Window) -> None:
        began = window.began
        # A hung write shows only when the client gives up (10 s, five times over with its
        # retries): held for its cycles alone, or it would stall the whole soak.
        if fault.kind in (FaultKind.leader_killed, FaultKind.api_timeout):
            return
        if fault.kind == FaultKind.spec_invalid:
            assert fault.pool is not None
            shown = await self._wait(lambda: self._invalid_shown(pool_name(fault.pool or 0), began))
            if not shown:
                window.note += f"(not shown within {HOLD_SECONDS:.0f} s) "
            return
        hit = self.pools if fault.pool is None else [pool_name(fault.pool)]
        await self._wait_for_cycles(hit, began, self.hold_cycles, window)

    async def _wait_for_cycles(
        self, pools: list[str], since: float, cycles: int = 2, window: Window | None = None
    ) -> None:
        done = await self._wait(lambda: all(n >= cycles for n in self._cycles_since(pools, since)))
        if not done:
            # Not an error here: the checks judge what the pools did; the note says why.
            note = f"(pools short of {cycles} cycles after {HOLD_SECONDS:.0f} s) "
            if window is not None:
                window.note += note
            else:
                print(f"  tail: {note}", flush=True)

    async def _wait_until_cleared(self, fault: Fault, window: Window, cycles: int) -> None:
        """Until every pool has run `cycles` cycles since the fault ended, or its first cycle
        since already shows the fault's condition good again: what clearing is judged on
        (the first two cycles after the end) is then settled, whatever comes next."""
        from bench.soak.invariants import SHOWS, cleared  # it imports this module

        shown = SHOWS.get(fault.kind)

        def settled() -> bool:
            for writes in self._writes_since(self.pools, window.ended).values():
                if len(writes) >= cycles:
                    continue
                if not writes or shown is None:
                    return False
                condition = next((c for c in writes[0] if c.get("type") == shown[0]), None)
                if not cleared(condition, fault.kind):
                    return False
            return True

        if not await self._wait(settled):
            window.note += f"(pools not clear nor {cycles} cycles on after {HOLD_SECONDS:.0f} s) "

    def _writes_since(self, pools: list[str], since: float) -> dict[str, list[list[Any]]]:
        """Each pool's conditions from the status writes of its cycles begun since, oldest
        first."""
        found: dict[str, list[list[Any]]] = {pool: [] for pool in pools}
        for record in reversed(self.mock.log):
            if record.at < since:
                break
            if record.name not in found or record.subresource != "status":
                continue
            if not 200 <= record.status < 300:
                continue
            status = (record.data or {}).get("status") or {}
            stamp = status.get("lastCycleTime")
            if stamp and self.clock_wall(stamp) >= since:
                found[record.name].insert(0, list(status.get("conditions") or []))
        return found

    def _cycles_since(self, pools: list[str], since: float) -> list[int]:
        counts = dict.fromkeys(pools, 0)
        for record in reversed(self.mock.log):
            if record.at < since:
                break
            if record.name in counts and record.subresource == "status":
                stamp = ((record.data or {}).get("status") or {}).get("lastCycleTime")
                if stamp and self.clock_wall(stamp) >= since:
                    counts[record.name] += 1
        return list(counts.values())

    def _invalid_shown(self, pool: str, since: float) -> bool:
        for record in reversed(self.mock.log):
            if record.at < since:
                return False
            if record.name == pool and record.subresource == "status":
                conditions = ((record.data or {}).get("status") or {}).get("conditions") or []
                if any(
                    c.get("type") == "Invalid" and c.get("status") == "True" for c in conditions
                ):
                    return True
        return False

    async def _wait(self, done: Callable[[], bool]) -> bool:
        deadline = time.monotonic() + HOLD_SECONDS
        while not done():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.25)
        return True

    async def _begin(self, fault: Fault, window: Window) -> None:
        kind = fault.kind
        if kind in PROXIED:
            self.proxy.fault = kind
        elif kind in API:
            target = None if fault.pool is None else pool_name(fault.pool)
            self.mock.fault = ActiveFault(kind, target)
        elif kind == FaultKind.prometheus_stopped:
            await asyncio.to_thread(self.prometheus.stop)
        elif kind == FaultKind.postgres_restarted:
            await asyncio.to_thread(self.postgres.restart)
        elif kind == FaultKind.postgres_refusing:
            await asyncio.to_thread(self.postgres.stop)
        elif kind == FaultKind.leader_killed:
            window.note = await self._kill_leader()
        elif kind == FaultKind.spec_invalid:
            assert fault.pool is not None
            await self.edit_spec(
                pool_name(fault.pool), invalid_spec(self.specs[pool_name(fault.pool)])
            )

    async def _end(self, fault: Fault, window: Window) -> None:
        kind = fault.kind
        if kind in PROXIED:
            self.proxy.fault = None
        elif kind in API:
            self.mock.fault = ActiveFault()
        elif kind == FaultKind.prometheus_stopped:
            self.prometheus.start()
            await self.prometheus.wait_ready()
        elif kind == FaultKind.postgres_refusing:
            await asyncio.to_thread(self.postgres.start)
        elif kind == FaultKind.leader_killed:
            window.note += await self._wait_for_takeover(window.began, self._killed)
        elif kind == FaultKind.spec_invalid:
            assert fault.pool is not None
            await self.edit_spec(pool_name(fault.pool), self.specs[pool_name(fault.pool)])

    async def _kill_leader(self) -> str:
        holder = lease_holder(self.mock)
        for operator in self.operators:
            if operator.identity == holder and operator.alive():
                operator.kill()
                self._killed = holder
                self.operators.append(self.launcher.launch())  # the next standby
                return f"(killed {holder})"
        return f"(no live leader to kill: lease held by {holder!r})"

    async def _wait_for_takeover(self, since: float, killed: str) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            holder = lease_holder(self.mock)
            if holder and holder != killed:
                return f", {holder} took over after {time.time() - since:.1f} s"
            if any(op.identity == killed and op.alive() for op in self.operators):
                return ""  # nothing was killed
            await asyncio.sleep(0.2)
        return ", no takeover within 60 s"

    async def edit_spec(self, name: str, spec: dict[str, Any]) -> None:
        path = (
            f"/apis/autoscaling.harmony.dev/v1alpha1/namespaces/{NAMESPACE}/poolautoscalers/{name}"
        )
        async with httpx.AsyncClient(base_url=self.api_url, headers=HARNESS) as client:
            response = await client.patch(
                path,
                json={"spec": {"indicators": spec["indicators"]}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            response.raise_for_status()


HARNESS = {"Authorization": "Bearer soak-harness"}
# The longest a fault is held, or a gap waited, for the cycles it needs to see.
HOLD_SECONDS = 90.0


def pool_name(number: int) -> str:
    return f"pool-{number:02d}"


def invalid_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A second demand indicator: what the CRD's schema cannot reject (the operator must)."""
    broken = copy.deepcopy(spec)
    broken["indicators"] = [
        *broken["indicators"],
        {"name": "again", "query": "vector(1)", "level": 2, "demand": True},
    ]
    return broken


def lease_holder(mock: SoakEmulator) -> str:
    for (resource, _, _), lease in list(mock.objects.items()):
        if "leases" in str(resource) and not lease.deleted:
            return str(lease.raw.get("spec", {}).get("holderIdentity") or "")
    return ""


async def nudge_pools(api_url: str, names: list[str], every: float) -> None:
    """kmock's watch can miss writes made while it streams its initial listing; touching
    every pool now and then gives kopf a fresh event, as an informer's resync would."""
    async with httpx.AsyncClient(base_url=api_url, headers=HARNESS) as client:
        while True:
            await asyncio.sleep(every)
            for name in names:
                await client.patch(
                    f"/apis/autoscaling.harmony.dev/v1alpha1/namespaces/{NAMESPACE}"
                    f"/poolautoscalers/{name}",
                    json={
                        "metadata": {"annotations": {"soak.harmony.dev/resync": str(time.time())}}
                    },
                    headers={"Content-Type": "application/merge-patch+json"},
                )


async def _sleep_until(wall: float) -> None:
    delay = wall - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
