"""Reading Kubernetes API objects as the actuators receive them (raw JSON, not models)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from controller.operator.permissions import GPU_RESOURCE


def parse_time(text: str | None) -> dt.datetime | None:
    """An RFC 3339 timestamp of the API (`2026-03-01T12:00:00Z`); None when absent."""
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def allocatable_gpus(node: Mapping[str, Any]) -> int:
    """The GPUs a node advertises as allocatable (0 until its device plugin reports them)."""
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    try:
        return int(str(allocatable.get(GPU_RESOURCE, "0")))
    except ValueError:
        return 0


def response_json(response: Any) -> dict[str, Any]:
    """The body of a call made with `_preload_content=False` (or an already parsed dict)."""
    if isinstance(response, dict):
        return response
    data = response.data if hasattr(response, "data") else response
    return dict(json.loads(data))


def object_name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def labels_match(obj: Mapping[str, Any], selector: Mapping[str, str]) -> bool:
    """Whether the object carries every label of `selector` (an equality selector)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


def error_reason(error: ApiException) -> str:
    """The API server's message for a failed call, else the HTTP reason."""
    try:
        return str(json.loads(error.body or "{}").get("message") or error.reason)
    except ValueError:
        return str(error.reason)
