"""Leader election on a `coordination.k8s.io/v1` Lease: exactly one operator replica acts.

Like client-go's leaderelection: the holder renews `spec.renewTime` every `renew_seconds`;
a candidate takes the Lease over only when the holder's record has not changed for
`lease_seconds` by the candidate's *own* monotonic clock (no trust in other clocks), or
when the holder released it on shutdown. Writes carry the `resourceVersion` they read as
a precondition, so two candidates cannot both win a takeover on a real API server. The
leader stops acting as soon as it could not renew for `lease_seconds - renew_seconds`,
before any candidate may take over.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
import uuid
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"


def _micro_time(at: dt.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElector:
    """Holds or watches one Lease; `is_leader()` is what the control cycle asks before acting."""

    def __init__(
        self,
        api_client: k8s.ApiClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_seconds: float = 15.0,
        renew_seconds: float = 5.0,
    ) -> None:
        if renew_seconds >= lease_seconds:
            raise ValueError("the renew period must be shorter than the lease duration")
        self._api = k8s.CoordinationV1Api(api_client)
        self._core = k8s.CoreV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self._valid_until = 0.0  # monotonic; leader while now < this
        self._observed: tuple[str, str] | None = None  # (holder, renewTime) last seen
        self._observed_at = 0.0
        self.transitions = 0

    def is_leader(self) -> bool:
        return time.monotonic() < self._valid_until

    def step(self) -> bool:
        """One acquire-or-renew attempt; True when this process leads afterwards."""
        try:
            lease = self._read()
            if lease is None:
                self._create()
                self._announce("")
                return self._won()
            spec = lease.get("spec") or {}
            holder = str(spec.get("holderIdentity") or "")
            record = (holder, str(spec.get("renewTime") or ""))
            now = time.monotonic()
            if record != self._observed:
                self._observed, self._observed_at = record, now
            version = str((lease.get("metadata") or {}).get("resourceVersion") or "")
            if holder == self.identity:
                self._patch(version, {"renewTime": _micro_time(dt.datetime.now(dt.UTC))})
                return self._won()
            duration = float(spec.get("leaseDurationSeconds") or self.lease_seconds)
            if holder and now - self._observed_at < duration:
                self._valid_until = 0.0
                return False
            moment = _micro_time(dt.datetime.now(dt.UTC))
            self._patch(
                version,
                {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": round(self.lease_seconds),
                    "acquireTime": moment,
                    "renewTime": moment,
                    "leaseTransitions": int(spec.get("leaseTransitions") or 0) + 1,
                },
            )
            log.info("took over lease %s/%s from %r", self.namespace, self.name, holder)
            self.transitions += 1
            self._announce(holder)
            return self._won()
        except ApiException as error:
            if error.status in (409, 422):  # someone else won the race
                self._valid_until = 0.0
                return False
            log.warning(
                "lease %s/%s: HTTP %s: %s", self.namespace, self.name, error.status, error.reason
            )
            return self.is_leader()
        except TransportError as error:
            log.warning("lease %s/%s: API unreachable: %s", self.namespace, self.name, error)
            return self.is_leader()

    def release(self) -> None:
        """Give the lease up (on shutdown) so that a standby takes over at once."""
        if not self.is_leader():
            return
        self._valid_until = 0.0
        try:
            lease = self._read()
            if lease is None or (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            version = str((lease.get("metadata") or {}).get("resourceVersion") or "")
            self._patch(version, {"holderIdentity": "", "leaseDurationSeconds": 1})
            log.info("released lease %s/%s", self.namespace, self.name)
        except (ApiException, TransportError) as error:
            log.warning("could not release lease %s/%s: %s", self.namespace, self.name, error)

    async def run(self) -> None:
        """Acquire and renew until cancelled; then release."""
        try:
            while True:
                was = self.is_leader()
                try:
                    now_leading = await asyncio.to_thread(self.step)
                except Exception:  # keep electing: a dead loop would silently stop all acting
                    log.exception("lease %s/%s: unexpected error", self.namespace, self.name)
                    now_leading = self.is_leader()
                if now_leading != was:
                    log.info(
                        "%s is now %s", self.identity, "the leader" if now_leading else "a standby"
                    )
                await asyncio.sleep(self.renew_seconds)
        finally:
            await asyncio.shield(asyncio.to_thread(self.release))

    # --- API calls -------------------------------------------------------------------

    def _announce(self, previous: str) -> None:
        """An Event on the Lease, as client-go's leader election records one: who leads now
        (a failover is otherwise visible only in the operators' logs)."""
        stamp = _micro_time(dt.datetime.now(dt.UTC))
        after = f" after {previous}" if previous else ""
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{self.name}.{uuid.uuid4().hex[:16]}",
                "namespace": self.namespace,
            },
            "involvedObject": {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "name": self.name,
                "namespace": self.namespace,
            },
            "reason": "LeaderElection",
            "message": f"{self.identity} became leader{after}",
            "type": "Normal",
            "source": {"component": "harmony-operator"},
            "reportingComponent": "harmony-operator",
            "reportingInstance": self.identity,
            "firstTimestamp": stamp[:19] + "Z",
            "lastTimestamp": stamp[:19] + "Z",
            "count": 1,
        }
        try:
            self._core.create_namespaced_event(
                self.namespace, event, _request_timeout=5, _preload_content=False
            )
        except (ApiException, TransportError) as error:
            log.warning("could not post the LeaderElection event: %s", error)

    def _won(self) -> bool:
        # Stop acting strictly before anyone else may consider the lease expired.
        self._valid_until = time.monotonic() + self.lease_seconds - self.renew_seconds
        return True

    def _read(self) -> dict[str, Any] | None:
        try:
            response = self._api.read_namespaced_lease(
                self.name, self.namespace, _preload_content=False, _request_timeout=5
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return dict(json.loads(response.data))

    def _create(self) -> None:
        moment = _micro_time(dt.datetime.now(dt.UTC))
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": round(self.lease_seconds),
                "acquireTime": moment,
                "renewTime": moment,
                "leaseTransitions": 0,
            },
        }
        self._api.create_namespaced_lease(
            self.namespace, body, _preload_content=False, _request_timeout=5
        )

    def _patch(self, resource_version: str, spec: dict[str, Any]) -> None:
        body: dict[str, Any] = {"spec": spec}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        self._api.patch_namespaced_lease(
            self.name,
            self.namespace,
            body,
            _content_type=MERGE_PATCH,
            _preload_content=False,
            _request_timeout=5,
        )
