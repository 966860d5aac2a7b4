"""`harmony demo`: the operator's control cycle on a simulated pool, recorded in SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from controller.cli.main import main
from controller.settings import get_settings
from controller.state import migrate
from controller.state.db import create_engine_for, make_session_factory
from controller.state.models import Action, DecisionRecord, ForecastRecord, Pool


def test_demo_runs_cycles_and_records_them(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = get_settings().database_url
    engine = create_engine_for(url)
    migrate.upgrade(engine)
    code = main(["demo", "--cycles", "6", "--speed", "0", "--train-seconds", "5"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "6 cycles (0.5 h replayed)" in captured.out
    sessions = make_session_factory(engine)
    with sessions() as session:
        pool = session.scalars(select(Pool)).one()
        assert (pool.namespace, pool.name) == ("demo", "gpu-pool")
        decisions = session.scalars(select(DecisionRecord)).all()
        assert len(decisions) == 6
        assert {decision.policy for decision in decisions} == {"harmony"}
        assert session.scalar(select(func.count()).select_from(ForecastRecord)) == 6
        assert session.scalar(select(func.count()).select_from(Action)) >= 1
    engine.dispose()
