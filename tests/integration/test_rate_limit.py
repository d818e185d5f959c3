"""Submissions are rate-limited per unit (ROLLCALL_SUBMIT_RATE_*), with a clear 429 that names
the unit and the limit, says when to retry, and is kept like any refusal; an operator's bulk
upload of many units is not slowed, and nobody spends another unit's budget."""

import asyncio
from datetime import timedelta

import asyncpg
import httpx
import pytest

from shared.registry import demo
from tests.conftest import issue_token, start_service
from tests.integration.conftest import today

BURST = 3


@pytest.fixture(scope="module")
def ingest(servers, tmp_path_factory):
    """An ingest of its own with a small burst, and a token regained only each hour."""
    service = start_service(servers, "ingest", tmp_path_factory.mktemp("ratelimit"),
                            ROLLCALL_SUBMIT_RATE_BURST=str(BURST),
                            ROLLCALL_SUBMIT_RATE_INTERVAL_S="3600")
    yield service.url
    service.stop()


def _dsn(servers) -> str:
    return servers.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


def units(kind: str | None, count: int, skip: int = 0) -> list[str]:
    """Demo units (of a kind), from the far end of the list (other tests take the first ones,
    and import units of their own)."""
    codes = [u["code"] for u in reversed(demo.units()) if kind in (None, u["unit_type"])]
    return codes[skip:skip + count]


def kept(servers, rejection_id: str) -> dict | None:
    async def fetch():
        conn = await asyncpg.connect(_dsn(servers))
        try:
            return await conn.fetchrow(
                "SELECT unit_code, source, errors::text AS errors FROM ingest.rejections "
                "WHERE rejection_id = $1::uuid", rejection_id)
        finally:
            await conn.close()

    row = asyncio.run(fetch())
    return dict(row) if row else None


def report(unit: str, days_ago: int) -> dict:
    return {"unit": unit, "day": (today() - timedelta(days=days_ago)).isoformat(),
            "reporter": "测试", "values": {"fever": 1}}


def test_a_unit_that_sends_too_fast_gets_a_429_it_can_act_on(ingest, servers) -> None:
    [unit] = units("village_clinic", 1)
    auth = {"Authorization": f"Bearer {issue_token(servers, 'unit', unit, '限流测试')}"}
    with httpx.Client(base_url=ingest, headers=auth, timeout=30) as client:
        for days_ago in range(BURST):
            assert client.post("/v1/reports", json=report(unit, days_ago)).status_code == 201
        refused = client.post("/v1/reports", json=report(unit, BURST))
        assert refused.status_code == 429, refused.text
        assert 3000 < int(refused.headers["Retry-After"]) <= 3600
        [error] = refused.json()["errors"]
        assert (error["field"], error["code"]) == ("unit", "rate_limited")
        assert unit in error["message_en"] and f"at most {BURST}" in error["message_en"]
        assert unit in error["message_zh"]
        row = kept(servers, refused.json()["rejection_id"])
        assert row is not None and row["unit_code"] == unit and "rate_limited" in row["errors"]
        # A case and a correction come out of the same budget.
        case = client.post("/v1/cases", json={
            "unit": unit, "kind": "ili", "found_at": (today()).isoformat() + "T08:00:00",
            "person_ref": "P-1"})
        assert case.status_code == 429 and case.headers["Retry-After"]
        correction = client.post(f"/v1/reports/{unit}/{today().isoformat()}/corrections",
                                 json={"values": {"fever": 2}, "reporter": "测试",
                                       "reason": "改正"})
        assert correction.status_code == 429


def test_an_operators_bulk_upload_of_many_units_is_not_slowed(ingest, servers,
                                                              county_token) -> None:
    many = units(None, 200, skip=100)
    auth = {"Authorization": f"Bearer {county_token}"}
    with httpx.Client(base_url=ingest, headers=auth, timeout=60) as client:
        # Two days each, twice over (the retries count too): within a burst of 3 per unit…
        for days_ago in (1, 2):
            answer = client.post("/v1/reports/bulk",
                                 json=[report(u, days_ago) for u in many]).json()
            assert answer["accepted"] == len(many), answer["results"][:3]
        # …and a third for one of them fills its burst, which the operator's next one meets.
        assert client.post("/v1/reports", json=report(many[0], 3)).status_code == 201
        bulk = client.post("/v1/reports/bulk", json=[report(many[0], 4), report(many[1], 4)])
        assert bulk.status_code == 200 and bulk.headers["Retry-After"]
        first, second = bulk.json()["results"]
        assert (first["code"], first["errors"][0]["code"]) == (429, "rate_limited")
        assert second["status"] == "accepted"


def test_nobody_spends_another_units_budget(ingest, servers) -> None:
    mine, theirs = units("village_clinic", 2, skip=5)
    intruder = {"Authorization": f"Bearer {issue_token(servers, 'unit', theirs, '别人')}"}
    owner = {"Authorization": f"Bearer {issue_token(servers, 'unit', mine, '本人')}"}
    with httpx.Client(base_url=ingest, timeout=30) as client:
        for days_ago in range(2 * BURST):
            assert client.post("/v1/reports", json=report(mine, days_ago),
                               headers=intruder).status_code == 403
        for days_ago in range(BURST):
            assert client.post("/v1/reports", json=report(mine, days_ago),
                               headers=owner).status_code == 201
