"""The dashboard in Debian's headless Chromium against a served API with seeded pools.

The screenshot is kept at tests/artifacts/dashboard.png for people to look at. The
browser runs in New York time: every time the page shows must still be UTC.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.api.conftest import READ_TOKEN
from tests.browser import chromium, run_chromium, screenshot


@pytest.mark.parametrize("migrated_engine", ["postgresql"], indirect=True)
def test_dashboard_lists_pools_and_draws_the_forecast_band(
    served_dashboard: str, tmp_path: Path
) -> None:
    binary = chromium()
    url = f"{served_dashboard}#token={READ_TOKEN}&pool=gpu/a100-train"
    dom = run_chromium(binary, tmp_path / "profile-dom", "--dump-dom", url)
    assert 'data-state="ready"' in dom, dom[:3000]
    for pool in ("gpu/a100-train", "gpu/h100-infer", "research/l4-batch"):
        assert f'data-pool="{pool}"' in dom
    assert 'data-pool="research/old-pool"' not in dom
    assert 'data-forecast-band="true"' in dom
    assert "forecast 90% band" in dom and "usable capacity" in dom
    assert "keep P(shortfall)" in dom  # a decision's reason in the table
    assert "saved vs static peak" in dom
    screenshot(binary, tmp_path / "profile-shot", url, "dashboard.png")


@pytest.mark.parametrize("migrated_engine", ["postgresql"], indirect=True)
def test_the_savings_card_states_the_hours_it_covers_with_units_and_utc_times(
    served_dashboard: str, tmp_path: Path
) -> None:
    """The seeded pool has 2 hours of decisions (10:00 to 12:00 UTC) in the 24 hours the
    savings endpoint is asked for by default."""
    url = f"{served_dashboard}#token={READ_TOKEN}&pool=gpu/a100-train"
    dom = run_chromium(chromium(), tmp_path / "profile", "--dump-dom", url)
    assert 'data-state="ready"' in dom, dom[:3000]
    assert (
        '<span id="savings-range" class="muted">over 2 h of recorded decisions, '
        "2024-05-02 10:00 – 12:00 UTC (none in the other 22 h of the last 24 h)</span>"
    ) in dom
    stats = dict(
        re.findall(r'<div class="stat"><span class="muted">([^<]*)</span><b>([^<]*)</b>', dom)
    )
    for label in ("replica-hours used", "static peak (6 replicas)", "reactive baseline"):
        assert re.fullmatch(r"[\d.,]+ replica-h", stats[label]), (label, stats[label])
    for label in ("saved vs static peak", "saved vs reactive"):
        assert re.fullmatch(r"-?[\d.,]+ replica-h \(-?[\d.]+%\)", stats[label]), stats[label]
    assert re.search(r'<span id="updated" class="muted">updated \d\d:\d\d:\d\d UTC</span>', dom)
    assert "<th>time (UTC)</th>" in dom
    assert '<td class="num">2024-05-02 11:59</td>' in dom  # the last decision, in UTC
    assert "time (UTC)" in re.sub(r"<[^>]+>", "", dom.split('id="chart"')[1])  # x axis title


@pytest.mark.parametrize("migrated_engine", ["sqlite"], indirect=True)
def test_dashboard_without_a_token_asks_for_one(served_dashboard: str, tmp_path: Path) -> None:
    dom = run_chromium(chromium(), tmp_path / "profile", "--dump-dom", served_dashboard)
    assert 'data-state="needs-token"' in dom
    assert "Enter an API token" in dom


@pytest.mark.parametrize("migrated_engine", ["sqlite"], indirect=True)
def test_swagger_ui_renders_with_every_other_host_unreachable(
    served_dashboard: str, tmp_path: Path
) -> None:
    # As in an air-gapped cluster: any name but the API's resolves to nothing.
    offline = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
    dom = run_chromium(
        chromium(), tmp_path / "profile", offline, "--dump-dom", f"{served_dashboard}docs"
    )
    assert 'class="swagger-ui' in dom, dom[:3000]
    assert "/api/v1/pools/{namespace}/{name}/history" in dom
    assert "opblock-tag" in dom  # the operations, grouped by tag, were drawn
