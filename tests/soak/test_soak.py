"""The short soak: 50 pools under the operator and a standby on kmock, with a real
Prometheus and a PostgreSQL of its own, through every kind of fault once (see
`bench.soak`); no action doubled or lost, no unsafe scale-down, no split brain, and every
fault shown and cleared. `python -m bench.soak` runs the long form."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench.soak.run import SoakConfig, run_soak
from bench.soak.schedule import SHORT_DURATION, cycles_for_every_kind
from tests.conftest import service_unavailable

pytestmark = [pytest.mark.soak, pytest.mark.prometheus, pytest.mark.slow]
SEED = int(os.environ.get("HARMONY_SOAK_SEED", "20"))


def require_servers() -> None:
    if shutil.which("prometheus") is None or shutil.which("promtool") is None:
        service_unavailable("prometheus", "install Debian's `prometheus` package")
    if not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")) and not shutil.which("pg_ctl"):
        service_unavailable("PostgreSQL server binaries", "install Debian's `postgresql`")


@pytest.mark.timeout(900)
def test_every_fault_once_breaks_no_invariant(tmp_path: Path) -> None:
    require_servers()
    result = run_soak(
        SoakConfig(
            pools=50,
            cycles=cycles_for_every_kind(SHORT_DURATION),
            seed=SEED,
            keep=tmp_path,
            durations=SHORT_DURATION,
            hold_cycles=1,
            data_wall_seconds=1200,  # past the deadline: the run stops before its data
            deadline_seconds=840,  # stopped (every process) and failed within the timeout
        )
    )
    verdict = result.verdict
    notes = [f"{w.fault.describe()}: {w.ended - w.began:.1f} s {w.note}" for w in result.windows]
    report = "\n".join(
        [result.line(), f"took {result.seconds:.0f} s", *notes, *verdict.faults, *verdict.problems]
    )
    print(report)
    assert len(result.windows) == len(result.schedule.faults) >= 14, report
    assert verdict.actions > 0 and verdict.cycles >= 2 * len(result.windows), report
    assert (verdict.doubled, verdict.lost) == (0, 0), report
    assert verdict.unsafe_scale_downs == 0, report
    assert verdict.below_floor == 0, report
    assert verdict.split_brain == 0, report
    assert (verdict.invisible, verdict.uncleared) == (0, 0), report
