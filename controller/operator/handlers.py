"""kopf handlers: small functions; kopf does the watching, retries and patching.

- create/update/resume: parse the spec, (re)register the pool, or remember why it is invalid;
- delete: forget the pool (optional: no finalizer, deletion is never blocked);
- a timer every `tick` seconds per resource: when the pool's interval slot has come and this
  process holds the lease, run its cycle (batched with the other due pools), then write
  status and conditions and post an Event for each change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf
from aiohttp import web

from controller.operator import records
from controller.operator.metrics import health_app
from controller.operator.permissions import CRD_GROUP, CRD_PLURAL, CRD_VERSION
from controller.operator.runtime import (
    OperatorRuntime,
    event_type,
    merge_conditions,
    status_update,
)
from controller.operator.status import StatusWriter

log = logging.getLogger(__name__)
RESOURCE = (CRD_GROUP, CRD_VERSION, CRD_PLURAL)


def _writer(runtime: OperatorRuntime) -> StatusWriter:
    assert runtime.writer is not None, "the composition root gives the runtime a StatusWriter"
    return runtime.writer


def _runtime(memo: Any) -> OperatorRuntime:
    runtime: OperatorRuntime = memo.runtime
    return runtime


async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    runtime = _runtime(memo)
    prefix = CRD_GROUP
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=prefix, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{prefix}/finalizer"
    settings.posting.level = logging.WARNING  # our own Events say what changed
    settings.execution.max_workers = 8
    if runtime.elector is not None:
        runtime.closers.append(asyncio.create_task(runtime.elector.run()))
    if runtime.health_port is not None:
        app = health_app(runtime.metrics, healthy=lambda: True, ready=lambda: runtime.started)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, runtime.health_host, runtime.health_port).start()
        runtime.closers.append(runner)
    runtime.started = True


async def cleanup(memo: Any, **_: Any) -> None:
    runtime = _runtime(memo)
    for closer in runtime.closers:
        if isinstance(closer, asyncio.Task):
            closer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await closer
        elif isinstance(closer, web.AppRunner):
            await closer.cleanup()


async def spec_changed(namespace: str, name: str, spec: Any, memo: Any, **_: Any) -> None:
    runtime = _runtime(memo)
    config = runtime.apply_spec(namespace, name, dict(spec))
    if config is None:
        log.warning("%s/%s is invalid: %s", namespace, name, runtime.invalid[f"{namespace}/{name}"])


async def deleted(namespace: str, name: str, memo: Any, **_: Any) -> None:
    runtime = _runtime(memo)
    runtime.forget(namespace, name)
    if runtime.is_leader():
        now = runtime.deps.clock.now()

        def mark() -> None:
            with runtime.deps.sessions.begin() as session:
                records.mark_deleted(session, namespace, name, now)

        await asyncio.to_thread(mark)


async def tick(
    namespace: str, name: str, body: Any, status: Any, patch: Any, memo: Any, **_: Any
) -> None:
    runtime = _runtime(memo)
    key = f"{namespace}/{name}"
    if key not in runtime.pools and key not in runtime.invalid:
        # The timer can fire before the resume handler of a restarted operator.
        runtime.apply_spec(namespace, name, dict(body.get("spec") or {}))
    now = runtime.deps.clock.now()
    previous = list(status.get("conditions") or [])
    problem = runtime.invalid.get(key)
    if problem is not None:
        if not runtime.is_leader():
            return
        merged, changed = merge_conditions(
            previous,
            {
                "Invalid": ("True", "InvalidSpec", str(problem)),
                "Ready": ("False", "InvalidSpec", f"fix {problem.field}: {problem.problem}"),
            },
            now,
        )
        if changed:
            events = [(event_type(e), e["reason"], e["message"]) for e in changed]
            fields = {
                "conditions": merged,
                "observedGeneration": body.get("metadata", {}).get("generation"),
            }
            await asyncio.to_thread(_writer(runtime).write, namespace, name, body, fields, events)
        return
    outcome = await runtime.run_if_due(key)
    if outcome is None or not outcome.ran:
        return
    log.info(
        "%s: %s replicas, recommended %s (%s)",
        key,
        outcome.replicas,
        outcome.recommended,
        outcome.policy or "no decision",
    )
    config = runtime.pools[key].config if key in runtime.pools else None
    clean, events = status_update(
        outcome,
        dict(status),
        config.mode if config else None,
        body.get("metadata", {}).get("generation"),
        now,
    )
    log.debug("%s: writing status", key)
    await asyncio.to_thread(_writer(runtime).write, namespace, name, body, clean, events)

    def save() -> None:
        with runtime.deps.sessions.begin() as session:
            records.save_status(session, namespace, name, clean)

    log.debug("%s: status written, saving it in the state store", key)
    try:
        await asyncio.to_thread(save)
        log.debug("%s: status saved", key)
    except Exception as error:  # the CR status is written regardless; the store lags
        log.warning("could not save the status of %s in the state store: %s", key, error)


def register_handlers(registry: kopf.OperatorRegistry, tick_seconds: float) -> None:
    """Register every handler on `registry`; `tick_seconds` is how often each pool's timer
    checks whether its interval slot has come."""
    on = kopf.on
    # A registry of our own gets no default login: use the official client's credentials
    # (in-cluster ServiceAccount, else KUBECONFIG), the same the actuator uses.
    on.login(registry=registry)(kopf.login_via_client)
    on.startup(registry=registry)(startup)
    on.cleanup(registry=registry)(cleanup)
    on.resume(*RESOURCE, registry=registry)(spec_changed)
    on.create(*RESOURCE, registry=registry)(spec_changed)
    on.update(*RESOURCE, field="spec", registry=registry)(spec_changed)
    on.delete(*RESOURCE, optional=True, registry=registry)(deleted)
    kopf.timer(*RESOURCE, interval=tick_seconds, registry=registry)(tick)
