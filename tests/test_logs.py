"""Log lines say which PoolAutoscaler a kopf record is about, in both formats."""

from __future__ import annotations

import json
import logging

from controller.logs import ConsoleFormatter, JsonFormatter


def kopf_record(message: str, *args: object, reference: dict[str, str] | None) -> logging.LogRecord:
    record = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, message, args, None)
    if reference is not None:
        record.k8s_ref = reference  # what kopf's object logger attaches
    return record


def test_console_lines_name_the_object_kopf_logs_about() -> None:
    record = kopf_record(
        "Timer %r succeeded.", "tick", reference={"namespace": "fleet", "name": "p1"}
    )
    line = ConsoleFormatter().format(record)
    assert line.endswith("kopf.objects: [fleet/p1] Timer 'tick' succeeded.")
    assert record.msg == "Timer %r succeeded."  # the record other handlers see is untouched


def test_console_lines_of_cluster_scoped_and_plain_records() -> None:
    node = ConsoleFormatter().format(kopf_record("seen", reference={"name": "gpu-node-1"}))
    plain = ConsoleFormatter().format(kopf_record("started", reference=None))
    assert node.endswith("kopf.objects: [gpu-node-1] seen")
    assert plain.endswith("kopf.objects: started")


def test_json_lines_carry_the_object_as_a_field() -> None:
    record = kopf_record("Timer %r failed.", "tick", reference={"namespace": "a", "name": "b"})
    document = json.loads(JsonFormatter().format(record))
    assert document["object"] == "a/b"
    assert document["message"] == "Timer 'tick' failed."
    assert "object" not in json.loads(JsonFormatter().format(kopf_record("x", reference=None)))
