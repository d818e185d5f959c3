"""Calendars (免报) through aggregate's HTTP API and `rollcall calendar`, on real servers with the
clock fixed: an operator declares inside their area only, with a reason, from today at the
earliest; the figures are recounted at once; the declaration and its ending are kept with who,
when and why; an administrator declares a weekly rest day from the command line."""

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import nats
import pytest
from fastapi.testclient import TestClient

from services.aggregate.app import create_app
from shared.settings import Settings
from shared.streams import CALENDARS
from tests.conftest import Servers, issue_token
from tests.integration.aggregate_support import county_registry, private_database

ROLLCALL = str(Path(sys.executable).parent / "rollcall")
COUNTY, NEIGHBOUR = "439961", "439962"
DAY = date(2026, 1, 21)  # a Wednesday
NOW = datetime(2026, 1, 21, 1, 0, tzinfo=UTC)  # 09:00 in Asia/Shanghai
UNITS = county_registry(COUNTY)[1]
KINDERGARTENS = {u.code for u in UNITS if u.unit_type == "kindergarten"}
CLINICS = {u.code for u in UNITS if u.unit_type == "village_clinic"}


@pytest.fixture(scope="module")
def database(servers) -> str:
    return private_database(servers.database_url, [COUNTY, NEIGHBOUR])


@pytest.fixture(scope="module")
def client(servers, database):
    settings = Settings(nats_url=servers.nats_url, database_url=database,
                        aggregate_filter="report.accepted.439999.>")
    with TestClient(create_app(settings, clock=lambda: NOW)) as c:
        yield c


@pytest.fixture(scope="module")
def operator(servers, database) -> dict[str, str]:
    token = issue_token(Servers(servers.nats_url, database), "operator", COUNTY, "县指挥部值班员")
    return {"Authorization": f"Bearer {token}"}


def last_announced(nats_url: str, change: str) -> dict:
    """The last `calendar.<change>` the CALENDARS stream holds."""
    async def read() -> dict:
        nc = await nats.connect(nats_url)
        try:
            return json.loads((await nc.jetstream().get_last_msg(
                CALENDARS, f"calendar.{change}")).data)
        finally:
            await nc.close()

    return asyncio.run(read())


def completeness(client, headers) -> dict:
    response = client.get(f"/v1/rollups/{COUNTY}/completeness", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["completeness"]


def test_an_operator_exempts_the_countys_kindergartens(client, operator, servers) -> None:
    before = completeness(client, operator)
    assert before["exempt"] == 0 and before["pending"] == len(UNITS)
    response = client.post("/v1/calendars", headers=operator, json={
        "node_code": COUNTY, "unit_type": "kindergarten", "reason": "寒假",
        "valid_to": (DAY + timedelta(days=20)).isoformat()})
    assert response.status_code == 201, response.text
    declared = response.json()
    assert (declared["declared_by"], declared["reason"], declared["valid_from"]) == (
        "县指挥部值班员", "寒假", DAY.isoformat())
    after = completeness(client, operator)
    assert after["exempt"] == len(KINDERGARTENS)
    assert after["expected"] == before["expected"] - len(KINDERGARTENS)
    assert {u["unit"] for u in after["exempt_units"]} == KINDERGARTENS
    assert not KINDERGARTENS & {u["unit"] for u in after["pending_units"]}
    listed = client.get("/v1/calendars", headers=operator).json()
    assert [x["exemption_id"] for x in listed] == [declared["exemption_id"]]
    # Told on the bus (alerts takes exempted units off its missing-report alerts).
    told = last_announced(servers.nats_url, "declared")
    assert (told["exemption_id"], told["node_code"], told["unit_type"], told["actor"]) == (
        declared["exemption_id"], COUNTY, "kindergarten", "县指挥部值班员")

    ended = client.post(f"/v1/calendars/{declared['exemption_id']}/end", headers=operator,
                        json={"reason": "误报"})
    assert ended.status_code == 200, ended.text
    assert (ended.json()["ended_by"], ended.json()["end_reason"]) == ("县指挥部值班员", "误报")
    assert completeness(client, operator)["exempt"] == 0  # began today: withdrawn whole
    told = last_announced(servers.nats_url, "ended")
    assert (told["exemption_id"], told["withdrawn"], told["reason"]) == (
        declared["exemption_id"], True, "误报")


@pytest.mark.parametrize("body, status, field", [
    ({"node_code": NEIGHBOUR, "reason": "休市"}, 403, "node_code"),
    ({"node_code": COUNTY, "reason": "休市", "valid_from": "2026-01-20"}, 422, "valid_from"),
    ({"node_code": COUNTY, "reason": "休市", "unit_type": "spaceport"}, 422, "unit_type"),
    ({"reason": "休市"}, 422, "node_code"),
    ({"node_code": COUNTY, "reason": ""}, 422, "reason"),
])
def test_a_declaration_is_refused_naming_the_field(client, operator, body, status,
                                                     field) -> None:
    response = client.post("/v1/calendars", headers=operator, json=body)
    assert response.status_code == status, response.text
    payload = response.json()
    fields = ({e["field"] for e in payload["errors"]} if "errors" in payload
              else {e.get("loc", [None])[-1] for e in payload.get("detail", [])}
              if isinstance(payload.get("detail"), list) else {payload.get("field")})
    assert field in fields, payload


def test_a_units_token_declares_nothing(client, servers, database) -> None:
    token = issue_token(Servers(servers.nats_url, database), "unit", f"{COUNTY}001-PS")
    response = client.post("/v1/calendars", headers={"Authorization": f"Bearer {token}"},
                           json={"node_code": COUNTY, "reason": "x"})
    assert response.status_code == 403


def test_an_administrator_declares_a_weekly_rest_day_from_the_command_line(
        client, operator, servers, database) -> None:
    env = {**os.environ, "ROLLCALL_DATABASE_URL": database, "ROLLCALL_NATS_URL": ""}
    # The command line runs on the real clock: tomorrow is the real one.
    tomorrow = datetime.now(ZoneInfo("Asia/Shanghai")).date() + timedelta(days=1)
    run = subprocess.run(
        [ROLLCALL, "calendar", "declare", "--node", COUNTY,
         "--type", "village_clinic", "--weekday", str(tomorrow.isoweekday()),
         "--from", tomorrow.isoformat(), "--reason", "每周休息日", "--by", "管理员"],
        env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    listed = subprocess.run([ROLLCALL, "calendar", "list",
                             "--node", COUNTY], env=env, capture_output=True, text=True,
                            timeout=60)
    assert "每周休息日" in listed.stdout and "管理员" in listed.stdout
    def exempt_on(day: date) -> set[str]:
        response = client.get(f"/v1/rollups/{COUNTY}/completeness", headers=operator,
                              params={"day": day.isoformat()})
        return {u["unit"] for u in response.json()["completeness"]["exempt_units"]}

    assert exempt_on(tomorrow) == CLINICS
    assert exempt_on(tomorrow + timedelta(days=1)) == set()  # its weekday only
    assert exempt_on(tomorrow + timedelta(days=7)) == CLINICS
    refused = subprocess.run(
        [ROLLCALL, "calendar", "declare", "--node", COUNTY,
         "--from", "2020-01-01", "--reason", "补记"], env=env, capture_output=True, text=True,
        timeout=60)
    assert refused.returncode == 1 and "valid_from" in refused.stdout
