from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from controller.errors import HarmonyError
from controller.series import Series
from controller.traces import TraceOptions, load_trace


def test_machines_resampled_and_rolled_up(cached_trace: Callable[[str], Series]) -> None:
    cluster = cached_trace("alibaba2018:machines")
    assert cluster.step == dt.timedelta(minutes=5)
    assert cluster.start == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert len(cluster) == 2304  # 691,180 s of trace in 300 s bins
    assert np.nanmax(cluster.column("machines")) == 15  # m_1932 and m_1947 never overlap
    assert [cluster.names[i] for i in cluster.demand_index] == ["cpu_cores_used"]
    machine = load_trace("alibaba2018:m_1933")
    domain = load_trace("alibaba2018:domain3")  # m_1940 and m_1942
    assert np.nanmax(domain.column("machines")) == 2
    # The cluster's cores used is the sum over its machines, step by step.
    parts = [load_trace(f"alibaba2018:m_{n}").column("cpu_cores_used") for n in range(1932, 1948)]
    expected = np.nansum(parts, axis=0)
    present = ~np.isnan(cluster.column("cpu_cores_used"))
    np.testing.assert_allclose(cluster.column("cpu_cores_used")[present], expected[present])
    assert np.nanmax(machine.column("cpu_util")) <= 100


def test_unknown_machine_or_domain_lists_the_choices(shared_data: Path) -> None:
    with pytest.raises(HarmonyError, match=r"m_1932 \.\. m_1947"):
        load_trace("alibaba2018:m_1", TraceOptions())
    with pytest.raises(HarmonyError, match="domain3"):
        load_trace("alibaba2018:domain99", TraceOptions())
