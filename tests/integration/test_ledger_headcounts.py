"""Headcounts from the ledger of people under control: a 7+7 person's village figures reach the
rollups of every level through ingest and aggregate (the services running as in production)
with nobody typing a report; a release on day 7 moves them from central isolation to home
health monitoring in the figures; a missing team sign-off is counted once its day is over; and
`rollcall reconcile` finds the stored figures equal to the files at every level."""

import asyncio
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from rollcall.reconcile import check_control
from rollcall.reference import announce
from shared.db import make_engine, make_sessionmaker
from tests.integration.alerts_harness import FakeClock, issue_operator
from tests.integration.ledger_support import add_village, ledger

ZONE = ZoneInfo("Asia/Shanghai")
# A county of this file's own: the running alerts service opens alerts for the countdowns that
# passed (the days are in the past), which no other test's county must see.
VILLAGE = "430697100001"
TOWN, COUNTY = VILLAGE[:9], VILLAGE[:6]
METRICS = ("control_central_isolation", "control_home_health_monitoring",
           "control_signoff_missing")


async def rollup(system: dict, token: str, node: str, day) -> dict:
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.get(f"{system['aggregate']}/v1/rollups/{node}",
                                  params={"day": day.isoformat()},
                                  headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return {m: answer.json()["values"].get(m, 0) for m in METRICS}


async def publish_all(led, within_s: float = 30) -> None:
    """Round after round until nothing is left to submit (ingest first has to load the new
    ledger unit: its refusals are retried)."""
    from services.ledger.models import stock_dirty

    deadline = time.monotonic() + within_s
    while True:
        await led.publisher.publish_once()
        async with led.ctx.sessions() as session:
            left = (await session.execute(stock_dirty.select())).all()
        if not left:
            return
        assert time.monotonic() < deadline, f"not submitted: {left}"
        await asyncio.sleep(0.3)


async def wait_rollup(system, token, node, day, want: dict, within_s: float = 20) -> dict:
    deadline = time.monotonic() + within_s
    while True:
        have = await rollup(system, token, node, day)
        if all(have[m] == v for m, v in want.items()) or time.monotonic() > deadline:
            return have
        await asyncio.sleep(0.2)


async def add_county(servers) -> None:
    await add_village(servers.database_url, VILLAGE)
    await announce(servers.nats_url, ["nodes"])


async def test_the_ledger_feeds_the_headcounts_of_every_level(servers, system):
    await add_county(servers)
    today = datetime.now(ZONE).date()
    day0 = today - timedelta(days=10)
    days = [day0 + timedelta(days=n) for n in range(10)]
    clock = FakeClock(datetime(day0.year, day0.month, day0.day, 10, tzinfo=ZONE))
    town = await issue_operator(servers.database_url, TOWN)
    county = await issue_operator(servers.database_url, COUNTY)
    async with httpx.AsyncClient(base_url=system["ingest"], timeout=30) as ingest, ledger(
            servers, servers.database_url, clock, ingest=ingest) as led:
        made = await led.http.post("/v1/control/people", headers={
            "Authorization": f"Bearer {town}"}, json={
            "village": VILLAGE, "name": "钱多多", "category": "risk_area_returnee",
            "regime": "7+7", "site": "县隔离点二号", "start_day": day0.isoformat(),
            "team": [{"role": "grid_worker", "staff": "周网格"}]})
        assert made.status_code == 201, made.text
        pid = made.json()["person_id"]
        # Day 0 signed; day 1 not.
        signed = await led.http.post(f"/v1/control/people/{pid}/signoffs", headers={
            "Authorization": f"Bearer {town}"}, json={"day": day0.isoformat(), "seat": 1})
        assert signed.status_code == 201
        clock.set(clock.now + timedelta(days=2))  # day 2: day 1 is over, unsigned
        await led.ctx.roll()
        await publish_all(led)
        for node in (VILLAGE, TOWN, COUNTY):
            assert await wait_rollup(system, county, node, days[0], {
                "control_central_isolation": 1, "control_signoff_missing": 0}) == {
                "control_central_isolation": 1, "control_home_health_monitoring": 0,
                "control_signoff_missing": 0}, node
            one = await wait_rollup(system, county, node, days[1], {"control_signoff_missing": 1})
            assert one["control_signoff_missing"] == 1, node

        # Released from central isolation on day 7: home health monitoring from then on, with
        # no report typed by anyone.
        clock.set(datetime(days[7].year, days[7].month, days[7].day, 11, tzinfo=ZONE))
        released = await led.http.post(f"/v1/control/people/{pid}/release", headers={
            "Authorization": f"Bearer {town}"}, json={"day": days[7].isoformat()})
        assert released.status_code == 200, released.text
        clock.set(clock.now + timedelta(days=1))
        await led.ctx.roll()
        await publish_all(led)
        for node in (VILLAGE, TOWN, COUNTY):
            six = await wait_rollup(system, county, node, days[6], {"control_central_isolation": 1})
            assert (six["control_central_isolation"], six["control_home_health_monitoring"]) \
                == (1, 0), node
            eight = await wait_rollup(system, county, node, days[8],
                                {"control_home_health_monitoring": 1})
            assert (eight["control_central_isolation"],
                    eight["control_home_health_monitoring"]) == (0, 1), node

        # Reconcile: the stored figures equal the files' at every level, for every day.
        engine = make_engine(servers.database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session:
                for d in days[:9]:
                    assert await check_control(session, d, COUNTY, today=days[8]) == [], d
        finally:
            await engine.dispose()

        # A late sign-off of day 1, not yet submitted: reconcile names the difference at every
        # level; once submitted, the figures agree again.
        late = await led.http.post(f"/v1/control/people/{pid}/signoffs", headers={
            "Authorization": f"Bearer {town}"}, json={"day": days[1].isoformat(), "seat": 1})
        assert late.status_code == 201
        engine = make_engine(servers.database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session:
                found = await check_control(session, days[1], COUNTY, today=days[8])
            assert {(d.key, d.what, d.stored, d.recomputed) for d in found} == {
                (n, "control_signoff_missing", 1, 0) for n in (VILLAGE, TOWN, COUNTY)}
            await publish_all(led)
            await wait_rollup(system, county, VILLAGE, days[1], {"control_signoff_missing": 0})
            await wait_rollup(system, county, COUNTY, days[1], {"control_signoff_missing": 0})
            async with make_sessionmaker(engine)() as session:
                assert await check_control(session, days[1], COUNTY, today=days[8]) == []

            # Closed on day 8 (transferred elsewhere): from day 8 on nobody is counted, and the
            # session's other tests find the county's figures consistent whatever the day.
            closed = await led.http.post(f"/v1/control/people/{pid}/release", headers={
                "Authorization": f"Bearer {town}"}, json={"day": days[8].isoformat(),
                                                         "outcome": "transferred"})
            assert closed.json()["outcome"] == "transferred", closed.text
            await publish_all(led)
            eight = await wait_rollup(system, county, COUNTY, days[8],
                                      {"control_home_health_monitoring": 0})
            assert eight["control_home_health_monitoring"] == 0
            async with make_sessionmaker(engine)() as session:
                for d in (days[8], today):
                    assert await check_control(session, d, COUNTY) == [], d
        finally:
            await engine.dispose()
