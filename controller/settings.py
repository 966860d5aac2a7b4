"""Settings of the whole control plane: one object, read once from HARMONY_* variables."""

from __future__ import annotations

import functools
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

APP_NAME = "harmony"


def default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


class LogFormat(StrEnum):
    console = "console"
    json = "json"


class Settings(BaseSettings):
    """Everything configurable; see README for each variable (prefix HARMONY_)."""

    model_config = SettingsConfigDict(
        env_prefix="HARMONY_", env_file=None, extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where downloaded traces, reports and the default database live.",
    )
    # Defaults below follow HARMONY_DATA_DIR, so one variable moves everything local.
    database_url: str = Field(
        default_factory=lambda data: f"sqlite:///{data['data_dir'] / 'harmony.db'}",
        description="SQLAlchemy URL of the state store; SQLite file by default.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Celery broker and result backend; unset runs tasks in-process.",
    )
    prometheus_url: str | None = Field(
        default=None, description="Default Prometheus for pools that do not name one."
    )
    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer tokens accepted by the REST API (comma-separated in the env).",
    )
    api_cors_origins: list[str] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (a JSON list); none: CORS off.",
    )
    model_dir: Path = Field(
        default_factory=lambda data: data["data_dir"] / "models",
        description="Local cache of model artifacts (the state store holds the originals).",
    )
    retention_days: float = Field(
        default=30.0, gt=0, description="Rows older than this are pruned."
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: LogFormat = Field(default=LogFormat.console)

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _split_tokens(cls, value: object) -> object:
        if isinstance(value, str):
            return [token.strip() for token in value.split(",") if token.strip()]
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("HARMONY_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
        return level


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once; tests build their own `Settings(...)`."""
    return Settings()


def describe_settings_error(error: ValidationError) -> str:
    """One line naming each bad HARMONY_* variable and what is wrong with it."""
    problems = []
    for issue in error.errors():
        field_name = str(issue["loc"][0]) if issue["loc"] else "?"
        problems.append(f"HARMONY_{field_name.upper()}: {issue['msg']}")
    return "invalid settings: " + "; ".join(problems) + " (fix the environment variable)"
