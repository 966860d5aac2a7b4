"""Metric sources: where the control loop's observations come from."""

from controller.sources.base import (
    DataIssue,
    IssueKind,
    Source,
    SourceResult,
    SourceUnavailable,
    fetch_recent,
    grid_rows,
    grid_start,
)
from controller.sources.prometheus import IndicatorQuery, PrometheusConfig, PrometheusSource
from controller.sources.replay import TraceReplaySource

__all__ = [
    "DataIssue",
    "IndicatorQuery",
    "IssueKind",
    "PrometheusConfig",
    "PrometheusSource",
    "Source",
    "SourceResult",
    "SourceUnavailable",
    "TraceReplaySource",
    "fetch_recent",
    "grid_rows",
    "grid_start",
]
