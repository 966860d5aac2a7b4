"""Logging set up from Settings: human-readable console lines or one JSON object per line."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import sys

from controller.settings import LogFormat, Settings


def object_of(record: logging.LogRecord) -> str | None:
    """`namespace/name` of the Kubernetes object a kopf record is about, if any: kopf
    attaches it as `k8s_ref` rather than writing it into the message."""
    reference = getattr(record, "k8s_ref", None)
    if not isinstance(reference, dict) or not reference.get("name"):
        return None
    namespace = reference.get("namespace")
    return f"{namespace}/{reference['name']}" if namespace else str(reference["name"])


class ConsoleFormatter(logging.Formatter):
    """One line per record; a kopf record about an object starts with `[namespace/name]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        target = object_of(record)
        if target is not None:
            record = copy.copy(record)
            record.msg = f"[{target}] {record.msg}"
        return super().format(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        target = object_of(record)
        if target is not None:
            document["object"] = target
        for key, value in record.__dict__.items():
            if key.startswith("harmony_"):
                document[key.removeprefix("harmony_")] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time of the record.

    A handler bound to the stream of the moment outlives it when stderr is replaced
    (pytest's capture, a redirect), and every later record then fails with a traceback.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass


def configure_logging(settings: Settings) -> None:
    handler = StderrHandler()
    if settings.log_format is LogFormat.json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    if settings.log_level != "DEBUG":
        # Alembic announces its context at INFO on every command; that is noise to users.
        logging.getLogger("alembic").setLevel(logging.WARNING)
