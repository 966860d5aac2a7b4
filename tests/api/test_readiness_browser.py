"""The dashboard's "From Recommend to Enforce" card in Debian's headless Chromium.

The screenshot is kept at tests/artifacts/readiness.png for people to look at.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine

from controller.state.db import make_session_factory
from tests.api.conftest import READ_TOKEN
from tests.api.seed import NOW
from tests.browser import chromium, run_chromium, screenshot
from tests.readiness.seed import seed_recommend_pool


@pytest.fixture
def readiness_engine(seeded_engine: Engine) -> Engine:
    with make_session_factory(seeded_engine).begin() as db:
        seed_recommend_pool(db, "gpu", "l40s", NOW)
    return seeded_engine


@pytest.mark.parametrize("migrated_engine", ["postgresql"], indirect=True)
def test_the_readiness_card_shows_the_evidence_and_actions_next_to_cost(
    readiness_engine: Engine, served_dashboard: str, tmp_path: Path
) -> None:
    binary = chromium()
    url = f"{served_dashboard}#token={READ_TOKEN}&pool=gpu/l40s"
    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url)
    assert 'data-state="ready"' in dom, dom[:3000]
    assert '<span id="readiness-verdict" class="badge ok">EnforceReady</span>' in dom
    stats = dict(
        re.findall(r'<div class="stat"><span class="muted">([^<]*)</span><b>([^<]*)</b>', dom)
    )
    assert stats["observed demand"] == "1.96 of 1 days"
    assert stats["replica-hours: Harmony / ran"] == "192 replica-h / 288 replica-h"
    assert stats["shortfall: Harmony / ran (SLA 5.00%)"] == "0.00% / 0.00%"
    assert stats["actions a day: Harmony / ran"] == "0 / 0"
    assert '<td class="num">2024-05-01</td>' in dom
    screenshot(binary, tmp_path / "profile-shot", url, "readiness.png", window=(1400, 1700))


@pytest.mark.parametrize("migrated_engine", ["sqlite"], indirect=True)
def test_a_pool_whose_spec_cannot_be_assessed_says_why(
    served_dashboard: str, tmp_path: Path
) -> None:
    url = f"{served_dashboard}#token={READ_TOKEN}&pool=gpu/a100-train"
    dom = run_chromium(chromium(), tmp_path / "profile", "--dump-dom", url)
    assert 'data-state="ready"' in dom, dom[:3000]
    assert '<span id="readiness-verdict" class="badge">unknown</span>' in dom
    assert "spec.target" in dom.split('id="readiness-message"')[1][:400]
