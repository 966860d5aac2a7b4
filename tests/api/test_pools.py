"""Pools, their decisions, actions, forecast and history through the API."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient

from tests.api.conftest import READ
from tests.api.seed import LEVELS, NOW


def test_list_pools_pages_by_cursor_and_hides_deleted(client: TestClient) -> None:
    names = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/pools", params=params, headers=READ).json()
        names += [f"{p['namespace']}/{p['name']}" for p in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == ["gpu/a100-train", "gpu/h100-infer", "research/l4-batch"]
    assert pages == 2
    with_deleted = client.get(
        "/api/v1/pools", params={"include_deleted": True}, headers=READ
    ).json()
    assert "old-pool" in [p["name"] for p in with_deleted["items"]]


def test_list_pools_filters_by_namespace(client: TestClient) -> None:
    page = client.get("/api/v1/pools", params={"namespace": "research"}, headers=READ).json()
    assert [p["name"] for p in page["items"]] == ["l4-batch"]
    first = page["items"][0]
    assert first["replicas"] == 5 and first["recommended_replicas"] == 6
    assert first["ready"] is True and first["mode"] == "Enforce"
    assert first["target"] == {
        "api_version": "cluster.x-k8s.io/v1beta1",
        "kind": "MachineDeployment",
        "name": "l4-batch-md",
    }


def test_pool_detail_has_latest_decision_and_conditions(client: TestClient) -> None:
    detail = client.get("/api/v1/pools/gpu/a100-train", headers=READ).json()
    assert detail["latest_decision"]["cycle_at"] == "2024-05-02T11:59:00Z"
    assert detail["conditions"][0]["type"] == "Ready"
    assert detail["conditions"][0]["last_transition_time"].startswith("2024-05-02T10:00")
    assert detail["spec"]["maxReplicas"] == 20
    assert detail["latest_forecast_at"] == "2024-05-02T12:00:00Z"


def test_unknown_pool_is_404_naming_the_pool(client: TestClient) -> None:
    response = client.get("/api/v1/pools/gpu/nope", headers=READ)
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "no pool gpu/nope"
    assert response.json()["error"]["field"] == "path.name"


def test_forecast_steps_carry_their_times(client: TestClient) -> None:
    forecast = client.get("/api/v1/pools/gpu/a100-train/forecast", headers=READ).json()
    assert forecast["levels"] == LEVELS
    assert len(forecast["steps"]) == 12
    assert forecast["steps"][0]["at"] == "2024-05-02T12:00:00Z"
    assert forecast["steps"][3]["at"] == "2024-05-02T12:03:00Z"
    values = forecast["steps"][0]["values"]
    assert values == sorted(values) and len(values) == len(LEVELS)
    missing = client.get("/api/v1/pools/gpu/h100-infer/forecast", headers=READ)
    assert missing.status_code == 404
    assert "no forecast yet" in missing.json()["error"]["message"]


def test_decisions_newest_first_cursor_walks_every_row_once(client: TestClient) -> None:
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        response = client.get("/api/v1/pools/gpu/h100-infer/decisions", params=params, headers=READ)
        assert response.status_code == 200, response.text
        page = response.json()
        seen += [item["cycle_at"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 60 and len(set(seen)) == 60
    assert seen == sorted(seen, reverse=True)
    first = client.get("/api/v1/pools/gpu/h100-infer/decisions", headers=READ).json()["items"][0]
    assert first["reason"].startswith(f"{first['replicas_wanted']} replicas")
    assert first["inputs"]["capacity_per_replica"] == 10.0


def test_decisions_time_range(client: TestClient) -> None:
    params = {"since": "2024-05-02T11:50:00Z", "until": "2024-05-02T11:55:00Z"}
    page = client.get("/api/v1/pools/gpu/a100-train/decisions", params=params, headers=READ).json()
    assert [item["cycle_at"][11:16] for item in page["items"]] == [
        "11:54",
        "11:53",
        "11:52",
        "11:51",
        "11:50",
    ]


def test_actions_are_listed_newest_first(client: TestClient) -> None:
    page = client.get("/api/v1/pools/gpu/a100-train/actions", params={"limit": 3}, headers=READ)
    items = page.json()["items"]
    assert len(items) == 3
    assert items[0]["created_at"] > items[1]["created_at"] > items[2]["created_at"]
    assert items[0]["idempotency_key"].startswith("gpu/a100-train@2024-05-02T")
    assert items[0]["result"] == "succeeded"
    assert page.json()["next_cursor"] is not None


def test_history_gives_demand_and_usable_capacity(client: TestClient) -> None:
    history = client.get("/api/v1/pools/gpu/a100-train/history", headers=READ).json()
    assert len(history["times"]) == 120 and history["bucket_seconds"] is None
    assert history["demand"][0] == 40.0
    assert history["usable_capacity"][0] == 40.0  # 4 replicas x 10
    bucketed = client.get(
        "/api/v1/pools/gpu/a100-train/history",
        params={"max_points": 10, "since": "2024-05-02T10:00:00Z", "until": "2024-05-02T12:00:00Z"},
        headers=READ,
    ).json()
    assert len(bucketed["times"]) == 10
    assert bucketed["bucket_seconds"] == 720.0
    assert max(bucketed["demand"]) == max(history["demand"])


def test_history_range_is_bounded(client: TestClient) -> None:
    response = client.get(
        "/api/v1/pools/gpu/a100-train/history",
        params={"since": (NOW - dt.timedelta(days=40)).isoformat()},
        headers=READ,
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "query.since"
