"""The audit trail cannot be edited: no route of any service changes or removes a report
revision, a case, a kept rejection or an alert's history (no PUT, PATCH or DELETE in any
schema; such calls are refused with a reason), and the database itself refuses UPDATE, DELETE
and TRUNCATE on those tables, whatever connects to it."""

import asyncio
import uuid
from datetime import timedelta

import asyncpg
import httpx
import pytest

from services.aggregate.app import create_app as aggregate_app
from services.alerts.app import create_app as alerts_app
from services.ingest.app import create_app as ingest_app
from shared.settings import Settings
from tests.integration.conftest import today

UNUSED = Settings(nats_url="nats://127.0.0.1:1", database_url="postgresql://127.0.0.1:1/x")
APPS = {"ingest": ingest_app, "aggregate": aggregate_app, "alerts": alerts_app}
UNIT = "430621113001-CL"


@pytest.mark.parametrize("service", sorted(APPS))
def test_no_schema_offers_to_change_or_remove_anything(service: str) -> None:
    schema = APPS[service](UNUSED).openapi()  # the app is built, never started
    methods = {(path, method) for path, item in schema["paths"].items() for method in item}
    assert methods, service
    assert not {m for m in methods if m[1] in ("put", "patch", "delete")}, methods


SOME = str(uuid.uuid4())
ATTEMPTS = [  # (service, method, path): what an edit of the trail would look like
    ("ingest", "DELETE", f"/v1/units/{UNIT}/reports"),
    ("ingest", "PUT", f"/v1/units/{UNIT}/reports"),
    ("ingest", "PATCH", f"/v1/units/{UNIT}/reports"),
    ("ingest", "DELETE", f"/v1/units/{UNIT}/cases"),
    ("ingest", "PUT", f"/v1/reports/{UNIT}/2026-01-01/corrections"),
    ("ingest", "DELETE", f"/v1/reports/{UNIT}/2026-01-01/corrections"),
    ("ingest", "DELETE", "/v1/reports"),
    ("ingest", "PUT", "/v1/reports"),
    ("ingest", "DELETE", "/v1/cases"),
    ("ingest", "DELETE", f"/v1/reports/{SOME}"),
    ("ingest", "GET", "/v1/rejections"),
    ("ingest", "DELETE", f"/v1/rejections/{SOME}"),
    ("alerts", "DELETE", f"/v1/alerts/{SOME}"),
    ("alerts", "PUT", f"/v1/alerts/{SOME}"),
    ("alerts", "PATCH", f"/v1/alerts/{SOME}"),
    ("alerts", "DELETE", f"/v1/alerts/{SOME}/history"),
    ("alerts", "POST", f"/v1/alerts/{SOME}/history"),
    ("alerts", "PUT", f"/v1/alerts/{SOME}/history"),
    ("aggregate", "DELETE", "/v1/rollups/430621"),
    ("aggregate", "PUT", "/v1/rollups/430621"),
]


@pytest.mark.parametrize(("service", "method", "path"), ATTEMPTS)
def test_edits_of_the_trail_are_refused_with_a_reason(system: dict, auth: dict, service: str,
                                                      method: str, path: str) -> None:
    response = httpx.request(method, system[service] + path, headers=auth, timeout=10,
                             json={"values": {}})
    assert response.status_code in (404, 405), (method, path, response.text)
    [error] = response.json()["errors"]
    assert error["code"] in ("not_found", "method_not_allowed")
    assert error["message_zh"] and error["message_en"]


def _dsn(servers) -> str:
    return servers.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def test_the_database_refuses_to_edit_the_trail(system: dict, servers, auth: dict) -> None:
    # Make sure there is a revision and a rejection to try it on.
    day = (today() - timedelta(days=2)).isoformat()
    accepted = httpx.post(f"{system['ingest']}/v1/reports", headers=auth, timeout=10, json={
        "unit": UNIT, "day": day, "reporter": "审计", "values": {"fever": 1}})
    assert accepted.status_code in (200, 201), accepted.text
    refused = httpx.post(f"{system['ingest']}/v1/reports", headers=auth, timeout=10, json={
        "unit": UNIT, "day": "not a day", "reporter": "审计"})
    assert refused.status_code == 422

    async def attempt(sql: str) -> str:
        conn = await asyncpg.connect(_dsn(servers))
        try:
            tx = conn.transaction()
            await tx.start()
            try:
                status = await conn.execute(sql)
            except asyncpg.PostgresError as exc:
                return str(exc)
            finally:
                await tx.rollback()  # should anything get through, the test leaves no trace
            return f"allowed: {status}"
        finally:
            await conn.close()

    mine = f"unit_code = '{UNIT}'"
    statements = [
        f"UPDATE ingest.reports SET values = '{{}}'::jsonb WHERE {mine}",
        f"DELETE FROM ingest.reports WHERE {mine}",
        "UPDATE ingest.rejections SET errors = '[]'::jsonb",
        "DELETE FROM ingest.rejections",
        "TRUNCATE ingest.rejections",
        "TRUNCATE ingest.reports CASCADE",
        "TRUNCATE ingest.cases",
        "TRUNCATE alerts.transitions CASCADE",
    ]
    for sql in statements:
        answer = asyncio.run(attempt(sql))
        assert "append-only" in answer, (sql, answer)


def test_the_outbox_beside_the_trail_still_drains(system: dict, servers) -> None:
    """The relay deletes what it has published from the outbox: the guard does not stop it."""
    async def depth() -> int:
        conn = await asyncpg.connect(_dsn(servers))
        try:
            return await conn.fetchval("SELECT count(*) FROM ingest.outbox")
        finally:
            await conn.close()

    from tests.conftest import eventually
    assert eventually(lambda: asyncio.run(depth()) == 0, timeout=20)
