"""Writes a pool's status subresource and its Events with the official client."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as TransportError

from controller.operator.permissions import CRD_GROUP, CRD_KIND, CRD_PLURAL, CRD_VERSION

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"
COMPONENT = "harmony-operator"


class StatusWriter:
    """Merge-patches `status` and posts one Event per change (reason, message)."""

    def __init__(self, api_client: k8s.ApiClient, identity: str = COMPONENT) -> None:
        self._custom = k8s.CustomObjectsApi(api_client)
        self._core = k8s.CoreV1Api(api_client)
        self._identity = identity

    def write(
        self,
        namespace: str,
        name: str,
        body: Mapping[str, Any],
        fields: Mapping[str, Any],
        events: Sequence[tuple[str, str, str]],
    ) -> None:
        try:
            self._custom.patch_namespaced_custom_object_status(
                CRD_GROUP,
                CRD_VERSION,
                namespace,
                CRD_PLURAL,
                name,
                {"status": dict(fields)},
                _content_type=MERGE_PATCH,
                _request_timeout=10,
            )
        except (ApiException, TransportError) as error:
            log.warning("could not write the status of %s/%s: %s", namespace, name, error)
        for kind, reason, message in events:
            self._event(namespace, name, body, kind, reason, message)

    def _event(
        self,
        namespace: str,
        name: str,
        body: Mapping[str, Any],
        kind: str,
        reason: str,
        message: str,
    ) -> None:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        metadata = body.get("metadata") or {}
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{name}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": f"{CRD_GROUP}/{CRD_VERSION}",
                "kind": CRD_KIND,
                "name": name,
                "namespace": namespace,
                "uid": metadata.get("uid"),
            },
            "reason": reason,
            "message": message[:1024],
            "type": kind,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._identity,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self._core.create_namespaced_event(
                namespace, event, _request_timeout=10, _preload_content=False
            )
        except (ApiException, TransportError) as error:
            log.warning("could not post event %s for %s/%s: %s", reason, namespace, name, error)
