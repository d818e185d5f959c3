"""End to end over real connections: a report POSTed to ingest reaches the rollups of its village,
town and county through JetStream, and the services run as production runs them."""

import asyncio
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import nats
import pytest

from tests.conftest import eventually

ZONE = ZoneInfo("Asia/Shanghai")
VILLAGE, TOWN, COUNTY = "430621108001", "430621108", "430621"


def today() -> str:
    return datetime.now(ZONE).date().isoformat()


def rollup(system: dict, node: str) -> dict:
    return httpx.get(f"{system['aggregate']}/v1/rollups/{node}", params={"day": today()}).json()


def submit(system: dict, body: dict, auth: dict) -> httpx.Response:
    return httpx.post(f"{system['ingest']}/v1/reports", json=body, headers=auth, timeout=10)


def test_report_rolls_up_to_village_town_and_county(system: dict, auth: dict) -> None:
    before = {n: rollup(system, n) for n in (VILLAGE, TOWN, COUNTY)}
    response = submit(system, {"unit": f"{VILLAGE}-CL", "day": today(), "reporter": "王医生",
                               "values": {"fever": 2, "ili": 1, "nat_tests": 10}}, auth)
    assert response.status_code == 201, response.text
    assert response.json()["revision"] == 1

    def arrived() -> bool:
        return all(rollup(system, n)["completeness"]["reported"]
                   == before[n]["completeness"]["reported"] + 1 for n in (VILLAGE, TOWN, COUNTY))

    assert eventually(arrived)
    for node in (VILLAGE, TOWN, COUNTY):
        after = rollup(system, node)
        assert after["values"]["fever"] == before[node]["values"].get("fever", 0) + 2
        assert after["values"]["ili"] == before[node]["values"].get("ili", 0) + 1
    county = rollup(system, COUNTY)
    assert f"{VILLAGE}-CL" not in {u["unit"] for u in county["completeness"]["missing_units"]}


def test_retry_changes_nothing_and_correction_replaces(system: dict, auth: dict) -> None:
    unit = f"{VILLAGE}-VC"
    body = {"unit": unit, "day": today(), "reporter": "李主任", "values": {"home_observation": 5}}
    first = submit(system, body, auth)
    assert first.status_code == 201
    retry = submit(system, body, auth)
    assert retry.json()["status"] == "duplicate"
    assert retry.json()["report_id"] == first.json()["report_id"]
    conflicting = submit(system, {**body, "values": {"home_observation": 6}}, auth)
    assert conflicting.status_code == 409
    assert conflicting.json()["errors"][0]["code"] == "already_reported"

    assert eventually(lambda: rollup(system, VILLAGE)["values"].get("home_observation") == 5)
    correction = httpx.post(f"{system['ingest']}/v1/reports/{unit}/{today()}/corrections",
                            json={"values": {"home_observation": 3}, "reporter": "李主任",
                                  "reason": "两人已解除观察"}, headers=auth)
    assert correction.status_code == 201
    assert correction.json()["revision"] == 2
    assert eventually(lambda: rollup(system, VILLAGE)["values"].get("home_observation") == 3)
    assert rollup(system, VILLAGE)["completeness"]["reported"] >= 1
    history = httpx.get(f"{system['ingest']}/v1/units/{unit}/reports",
                        params={"day": today()}, headers=auth).json()
    assert [(r["revision"], r["values"]["home_observation"], r["reason"]) for r in history] == [
        (1, 5, None), (2, 3, "两人已解除观察")]


def test_zero_report_counts_as_reported(system: dict, auth: dict) -> None:
    unit = "430621104001-VC"
    before = rollup(system, "430621104001")["completeness"]
    response = submit(system, {"unit": unit, "day": today(), "reporter": "张", "values": {}}, auth)
    assert response.status_code == 201 and response.json()["zero"] is True
    assert eventually(lambda: rollup(system, "430621104001")["completeness"]["zero"]
                      == before["zero"] + 1)
    after = rollup(system, "430621104001")["completeness"]
    assert after["reported"] == before["reported"] + 1
    assert unit not in {u["unit"] for u in after["missing_units"]}


def test_bad_report_is_refused_with_reasons_and_kept_on_the_bus(system: dict, servers,
                                                                 auth: dict) -> None:
    async def listen_and_submit() -> tuple[httpx.Response, dict]:
        connection = await nats.connect(servers.nats_url)
        subscription = await connection.subscribe("report.rejected.>")
        response = await asyncio.to_thread(submit, system, {
            "unit": f"{VILLAGE}-CL", "day": "2999-01-01", "reporter": "x",
            "values": {"fever": -1, "nat_tests": 1, "nat_positive": 2, "bogus": 1}}, auth)
        message = await subscription.next_msg(timeout=5)
        await connection.close()
        return response, json.loads(message.data)

    response, rejected = asyncio.run(listen_and_submit())
    assert response.status_code == 422
    found = {(e["field"], e["code"]) for e in response.json()["errors"]}
    assert found == {("day", "future_day"), ("values.fever", "negative"),
                     ("values.nat_positive", "positives_le_tests"),
                     ("values.bogus", "unknown_metric")}
    assert rejected["rejection_id"] == response.json()["rejection_id"]
    assert {(e["field"], e["code"]) for e in rejected["errors"]} == found


@pytest.mark.parametrize("body, field", [
    ({"day": "2026-01-01", "reporter": "x"}, "unit"),
    ({"unit": "x", "day": "not-a-day", "reporter": "x"}, "day"),
    ({"unit": "x", "day": "2026-01-01", "reporter": "x", "values": {"fever": "many"}},
     "values.fever"),
])
def test_malformed_bodies_name_the_field(system: dict, body: dict, field: str,
                                        auth: dict) -> None:
    response = submit(system, body, auth)
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json()["errors"]}
    assert response.json()["rejection_id"]


def test_services_are_ready_and_alerts_consumes(system: dict) -> None:
    for url in system.values():
        assert httpx.get(f"{url}/readyz").json() == {"nats": "ok", "database": "ok"}
    assert eventually(lambda: httpx.get(f"{system['alerts']}/v1/status")
                      .json()["reports_applied"] > 0)
