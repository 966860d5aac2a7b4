"""Real workload traces as `Series`: `load_trace("fisher:container1", TraceOptions())`."""

from controller.traces.options import TraceOptions
from controller.traces.paths import trace_data_root, trace_file
from controller.traces.registry import TraceKind, load_trace, register, trace_kinds

__all__ = [
    "TraceKind",
    "TraceOptions",
    "load_trace",
    "register",
    "trace_data_root",
    "trace_file",
    "trace_kinds",
]
