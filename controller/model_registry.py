"""Trained forecasters in the state store: register a version, find and load one.

The artifact bytes live in `ModelVersion.artifact` (the model directory is only a local
cache), with their SHA-256 so that a corrupted or swapped artifact is refused on load.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from controller.clock import Clock
from controller.errors import HarmonyError
from controller.state.models import ModelVersion
from forecaster import Forecaster, IncompatibleModelError


def _utc(seconds: Any) -> dt.datetime | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(float(seconds), tz=dt.UTC)


def register_model(
    session: Session,
    forecaster: Forecaster,
    *,
    name: str,
    clock: Clock,
    pool_id: int | None = None,
    metrics: dict[str, Any] | None = None,
    artifact_uri: str = "",
) -> ModelVersion:
    """Add a model version (artifact, config, indicators, data span, metrics); flushed."""
    artifact = forecaster.to_bytes()
    version = ModelVersion(
        pool_id=pool_id,
        name=name,
        kind=forecaster.name,
        created_at=clock.now(),
        indicators={
            "names": forecaster.names,
            "levels": forecaster.levels,
            "step_seconds": forecaster.step_seconds,
        },
        config=forecaster.config.to_dict(),
        metrics={
            **{k: v for k, v in forecaster.metadata.items() if not k.startswith("data_")},
            "parameters": forecaster.parameter_count,
            **(metrics or {}),
        },
        data_start=_utc(forecaster.metadata.get("data_start")),
        data_end=_utc(forecaster.metadata.get("data_end")),
        artifact=artifact,
        artifact_sha256=hashlib.sha256(artifact).hexdigest(),
        artifact_uri=artifact_uri,
    )
    session.add(version)
    session.flush()
    return version


def latest_model_version(
    session: Session, *, name: str | None = None, pool_id: int | None = None
) -> ModelVersion | None:
    """The newest version with this name and/or pool, or None."""
    query = select(ModelVersion).options(undefer(ModelVersion.artifact))
    if name is not None:
        query = query.where(ModelVersion.name == name)
    if pool_id is not None:
        query = query.where(ModelVersion.pool_id == pool_id)
    query = query.order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc()).limit(1)
    return session.scalar(query)


def load_model(version: ModelVersion, indicator_names: Sequence[str] | None = None) -> Forecaster:
    """The forecaster of a stored version; refuses a bad artifact or other indicators."""
    if version.artifact is None:
        raise HarmonyError(f"model version {version.id} ({version.name}) has no artifact")
    digest = hashlib.sha256(version.artifact).hexdigest()
    if version.artifact_sha256 and digest != version.artifact_sha256:
        raise HarmonyError(
            f"model version {version.id} ({version.name}): artifact checksum mismatch; "
            "retrain the model"
        )
    try:
        forecaster = Forecaster.from_bytes(version.artifact)
        if indicator_names is not None:
            forecaster.check_indicators(indicator_names)
    except IncompatibleModelError as error:
        raise HarmonyError(f"model version {version.id} ({version.name}): {error}") from None
    return forecaster
