"""POST a backtest spec, watch the run go from pending to its results."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.api.conftest import ADMIN, READ

SPEC = {
    "trace": "fisher:container1",
    "policies": ["static", "reactive", "oracle"],
    "sla": 0.05,
    "peak_replicas": 10,
    "provisioning_delay_seconds": 600,
}


@pytest.mark.parametrize("migrated_engine", ["postgresql"], indirect=True)
def test_backtest_runs_in_the_background_and_records_results(
    shared_data: object, seeded_engine: Engine, client: TestClient
) -> None:
    created = client.post("/api/v1/backtests", json=SPEC, headers=ADMIN)
    assert created.status_code == 202, created.text
    run = created.json()
    assert run["state"] in {"pending", "running"}
    assert created.headers["location"] == f"/api/v1/backtests/{run['id']}"
    assert run["parameters"]["policies"] == SPEC["policies"]

    client.app.state.harmony.backtests.wait(timeout=240)  # type: ignore[attr-defined]
    done = client.get(f"/api/v1/backtests/{run['id']}", headers=READ).json()
    assert done["state"] == "succeeded", done["error"]
    deployed = [result for result in done["results"] if result["deployed"]]
    assert sorted(result["policy"] for result in deployed) == sorted(SPEC["policies"])
    # Static and reactive had their knobs searched on tune: more than one run each.
    assert len(done["results"]) > len(deployed)
    oracle = next(r for r in deployed if r["policy"] == "oracle")
    static = next(r for r in deployed if r["policy"] == "static")
    assert oracle["replica_hours"] < static["replica_hours"]
    assert static["role"] == "baseline" and static["tune_shortfall_rate"] is not None
    assert done["summary"]["sla"] == 0.05
    assert done["summary"]["line"].startswith("deployable sla=0.05 harmony_met=no")
    assert done["progress"]["stage"].startswith("replaying")
    assert done["progress"]["done"] == done["progress"]["total"] == 3
    listed = client.get("/api/v1/backtests", headers=READ).json()
    assert [item["id"] for item in listed["items"]] == [run["id"]]


@pytest.mark.parametrize("migrated_engine", ["sqlite"], indirect=True)
def test_a_run_that_cannot_load_its_trace_fails_with_the_reason(client: TestClient) -> None:
    created = client.post(
        "/api/v1/backtests", json={**SPEC, "trace": "fisher:container999"}, headers=ADMIN
    ).json()
    client.app.state.harmony.backtests.wait(timeout=60)  # type: ignore[attr-defined]
    failed = client.get(f"/api/v1/backtests/{created['id']}", headers=READ).json()
    assert failed["state"] == "failed"
    assert "container999" in failed["error"]
    assert failed["results"] == [] and failed["summary"] is None
    missing = client.get("/api/v1/backtests/999999", headers=READ)
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "path.run_id"
