"""The soak's clearing check, without any server."""

from __future__ import annotations

from bench.soak.invariants import cleared
from bench.soak.schedule import FaultKind


def metrics(status: str, reason: str) -> dict[str, str]:
    return {"type": "MetricsAvailable", "status": status, "reason": reason}


def test_partial_metrics_are_not_cleared_by_their_true_status() -> None:
    for kind in (FaultKind.prometheus_stale, FaultKind.prometheus_partial):
        assert not cleared(metrics("True", "MetricsPartial"), kind)
        assert cleared(metrics("True", "MetricsComplete"), kind)


def test_other_faults_clear_when_their_condition_is_good_again() -> None:
    assert not cleared(metrics("False", "MetricsUnavailable"), FaultKind.prometheus_5xx)
    assert cleared(metrics("True", "MetricsComplete"), FaultKind.prometheus_5xx)
    assert not cleared(None, FaultKind.api_error)
    ready = {"type": "Ready", "status": "True", "reason": "Decided"}
    assert cleared(ready, FaultKind.api_error)
    assert cleared({"type": "Invalid", "status": "False"}, FaultKind.spec_invalid)
