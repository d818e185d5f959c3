"""一人一案 end to end on real NATS and PostgreSQL with one injected clock: a 7+7 person's tests,
release and sign-offs become countdowns, the alerts service's clock opens an alert for each one
that passes unmet and closes it once recorded; names stay in the village and the town."""

import asyncio
import logging
import uuid
from datetime import date, timedelta

import pytest

from tests.integration.alerts_harness import (
    BASE_DAY,
    FakeClock,
    alerts_database,
    drain,
    issue_operator,
    local,
    replica,
    rows,
    wait_for,
)
from tests.integration.ledger_support import add_village, control_messages, drop_units, ledger

VILLAGE = "430696100001"  # a county of this file's own: its alerts are no other test's
TOWN, COUNTY = VILLAGE[:9], VILLAGE[:6]
NAME, PHONE = "张小明", "13912345678"


@pytest.fixture(scope="module")
def database(servers):
    url = alerts_database(servers)
    asyncio.run(add_village(url, VILLAGE))
    yield url
    # The village's ledger unit, which registering its people added, goes: the alerts tests
    # after these count the registry's units (a town with units must confirm its day).
    asyncio.run(drop_units(url, VILLAGE[:6]))


def day(n: int) -> date:
    return BASE_DAY + timedelta(days=n)


def registration(**over) -> dict:
    return {"village": VILLAGE, "name": NAME, "contact": PHONE, "category": "close_contact",
            "regime": "7+7", "site": "县隔离点一号", "start_day": day(0).isoformat(),
            "team": [{"role": "village_cadre", "staff": "李主任"},
                     {"role": "doctor", "staff": "王医生"}], **over}


async def countdowns(alerts, person_id: str) -> dict[str, str]:
    return {r.key: r.state for r in await rows(
        alerts.ctx, "SELECT key, state FROM alerts.countdowns WHERE key LIKE :k",
        k=f"%:{person_id}:%")}


async def alert(alerts, key: str):
    found = await rows(alerts.ctx, "SELECT kind, status, outcome, details, node FROM "
                                   "alerts.alerts WHERE key = :k", k=key)
    return found[0] if found else None


async def test_a_7_plus_7_person_from_arrival_to_release(servers, database, caplog):
    caplog.set_level(logging.DEBUG)
    clock = FakeClock(local(day(0), 10))
    town = {"Authorization": f"Bearer {await issue_operator(database, TOWN)}"}
    county = {"Authorization": f"Bearer {await issue_operator(database, COUNTY)}"}
    async with ledger(servers, database, clock) as led, replica(servers, database,
                                                                clock) as alerts:
        made = await led.http.post("/v1/control/people", json=registration(), headers=town)
        assert made.status_code == 201, made.text
        person = made.json()
        pid = person["person_id"]
        assert person["name"] == NAME and person["phase"] == "central_isolation"
        assert person["planned_release"] == day(14).isoformat()
        await led.drain()
        # Tests on days 2 and 7, the release from central isolation on day 7, a sign-off a day.
        want = {f"test:{pid}:{day(2)}", f"test:{pid}:{day(7)}", f"release:{pid}:{day(7)}"} | {
            f"signoff:{pid}:{day(n)}" for n in range(14)}
        assert set(await wait_for(lambda: _all(alerts, pid, want))) == want

        # The day's work lists the tests of their days only.
        due = (await led.http.get("/v1/control/due", headers=town,
                                  params={"node": VILLAGE, "day": day(2).isoformat()})).json()
        assert [t["day"] for t in due["tests"] if t["person_id"] == pid] == [day(2).isoformat()]
        due0 = (await led.http.get("/v1/control/due", headers=town,
                                   params={"node": VILLAGE, "day": day(0).isoformat()})).json()
        assert not [t for t in due0["tests"] if t["person_id"] == pid]

        # The team signs days 0-2 (both members), so only the test can go overdue.
        for n in range(3):
            clock.set(local(day(n), 20))
            for seat in (1, 2):
                signed = await led.http.post(f"/v1/control/people/{pid}/signoffs", headers=town,
                                             json={"day": day(n).isoformat(), "seat": seat})
                assert signed.status_code == 201, signed.text
        await led.drain()
        # At the last instant of day 2 the test is not yet overdue; just after midnight it is.
        clock.set(local(day(3), 0).replace(microsecond=0) - timedelta(microseconds=1))
        await wait_for(lambda: _state(alerts, f"signoff:{pid}:{day(2)}", "done"))
        await alerts.tick()
        assert await alert(alerts, f"test:{pid}:{day(2)}") is None
        clock.set(local(day(3), 0, 1))
        await alerts.tick()
        opened = await alert(alerts, f"test:{pid}:{day(2)}")
        assert opened is not None and opened.kind == "test_overdue" and opened.status == "open"
        assert opened.node == VILLAGE
        assert opened.details["people"][0]["pseudonym"] == person["pseudonym"]
        assert await alert(alerts, f"signoff:{VILLAGE}:{day(2)}") is None  # signed in time

        # The result recorded late closes it.
        clock.set(local(day(3), 9))
        late = await led.http.post(f"/v1/control/people/{pid}/tests", headers=town,
                                   json={"day": day(2).isoformat(), "result": "negative"})
        assert late.status_code == 201, late.text
        await led.drain()
        assert await wait_for(lambda: _closed(alerts, f"test:{pid}:{day(2)}"))

        # Day 3 was never signed: its sign-off alert opens for the village at midnight.
        clock.set(local(day(4), 0, 1))
        await alerts.tick()
        missing = await alert(alerts, f"signoff:{VILLAGE}:{day(3)}")
        assert missing is not None and missing.kind == "team_signoff_missing"
        listed = (await led.http.get("/v1/control/signoffs/missing", headers=county,
                                     params={"day": day(3).isoformat()})).json()
        assert listed["counts"][COUNTY] >= 1 and listed["counts"][VILLAGE] >= 1
        assert any(p["person_id"] == pid for v in listed["villages"] for p in v["people"])

        # Released from central isolation on day 7: home health monitoring from day 7 on.
        clock.set(local(day(7), 11))
        released = await led.http.post(f"/v1/control/people/{pid}/release", headers=town,
                                        json={"day": day(7).isoformat()})
        assert released.status_code == 200, released.text
        assert released.json()["phase_ended"] == "central_isolation"
        assert released.json()["person"]["phase"] == "home_health_monitoring"
        await led.drain()
        assert await wait_for(lambda: _state(alerts, f"release:{pid}:{day(7)}", "done"))
        assert f"release:{pid}:{day(14)}" in await wait_for(
            lambda: _all(alerts, pid, {f"release:{pid}:{day(14)}"}))

        # Released from home monitoring on day 14 (销账): the test 7 days after is announced.
        clock.set(local(day(14), 9))
        closed = await led.http.post(f"/v1/control/people/{pid}/release", headers=town,
                                     json={"day": day(14).isoformat()})
        assert closed.json() | {"person": None} == {"phase_ended": "home_health_monitoring",
                                                    "closed": True, "outcome": "completed",
                                                    "person": None}
        await led.drain()
        assert f"test:{pid}:{day(21)}" in await wait_for(
            lambda: _all(alerts, pid, {f"test:{pid}:{day(21)}"}))
        # On their days: day 7's test in the day's work, and day 21's after the closing.
        for n in (7, 21):
            work = (await led.http.get("/v1/control/due", headers=town, params={
                "node": VILLAGE, "day": day(n).isoformat()})).json()
            assert [t["day"] for t in work["tests"] if t["person_id"] == pid] == [
                day(n).isoformat()], n

        # Names: the town reads them, the county does not; the bus and the logs never carry
        # them.
        seen = (await led.http.get(f"/v1/control/people/{pid}", headers=county)).json()
        assert "name" not in seen and "contact" not in seen and NAME not in str(seen)
        listing = (await led.http.get("/v1/control/people", headers=county,
                                      params={"status": "all"})).json()
        assert NAME not in str(listing) and PHONE not in str(listing)
        assert (await led.http.get(f"/v1/control/people/{pid}", headers=town)).json()[
            "name"] == NAME
        refused = await led.http.post("/v1/control/people", json=registration(),
                                      headers=county)
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["code"] == "names_below_town"
        for what in ("/v1/control/due", "/v1/control/signoffs/missing", "/v1/control/stock"):
            answer = await led.http.get(what, headers=county, params={"day": day(3).isoformat()})
            assert answer.status_code == 200 and NAME not in answer.text, what
        messages = await control_messages(servers.nats_url, pid)
        assert messages and all(NAME not in m["raw"] and PHONE not in m["raw"]
                                for m in messages)
        assert {m["subject"] for m in messages} <= {
            f"control.{c}.{COUNTY}.{TOWN}.{VILLAGE}" for c in ("due", "settled")}
        alert_rows = await rows(alerts.ctx, "SELECT details::text AS d FROM alerts.alerts "
                                            "WHERE node = :v", v=VILLAGE)
        assert all(NAME not in r.d for r in alert_rows)
        await drain(alerts)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert NAME not in logged and PHONE not in logged


async def _all(alerts, pid: str, want: set[str]):
    have = await countdowns(alerts, pid)
    return have if want <= set(have) else None


async def _state(alerts, key: str, state: str) -> bool:
    found = await rows(alerts.ctx, "SELECT state FROM alerts.countdowns WHERE key = :k", k=key)
    return bool(found) and found[0].state == state


async def _closed(alerts, key: str) -> bool:
    found = await alert(alerts, key)
    return found is not None and found.status == "closed" and found.outcome == "done"


async def test_csv_import_is_all_or_nothing(servers, database):
    clock = FakeClock(local(day(0), 10))
    town = {"Authorization": f"Bearer {await issue_operator(database, TOWN)}"}
    good = (f"village,name,contact,category,regime,site,start_day,team\n"
            f"{VILLAGE},赵一,13800000001,close_contact,7+7,县隔离点一号,{day(0)},"
            f"village_cadre:李主任;doctor:王医生\n"
            f"{VILLAGE},钱二,,risk_area_returnee,monitoring_7,,{day(0)},grid_worker:孙网格\n")
    bad = good + (f"{VILLAGE},孙三,,nobody,9+9,,{day(0)},\n"
                  f"999999999999,李四,,close_contact,7+7,,{day(0)},boss:王\n")
    async with ledger(servers, database, clock) as led:
        before = len((await led.http.get("/v1/control/people", headers=town,
                                         params={"node": VILLAGE})).json())
        refused = await led.http.post("/v1/control/people/import", content=bad.encode(),
                                      headers={**town, "content-type": "text/csv"})
        assert refused.status_code == 422
        problems = {(e["field"], e["code"]) for e in refused.json()["errors"]}
        assert problems == {("[4].category", "unknown_category"),
                            ("[4].regime", "unknown_regime"),
                            ("[5].village", "unknown_village"), ("[5].site", "site_required"),
                            ("[5].team[0].role", "unknown_role")}
        after = (await led.http.get("/v1/control/people", headers=town,
                                    params={"node": VILLAGE})).json()
        assert len(after) == before  # nothing of the file was kept
        done = await led.http.post("/v1/control/people/import", content=good.encode(),
                                   headers={**town, "content-type": "text/csv"})
        assert done.status_code == 201, done.text
        assert done.json()["imported"] == 2
        people = (await led.http.get("/v1/control/people", headers=town,
                                     params={"node": VILLAGE})).json()
        assert {"赵一", "钱二"} <= {p.get("name") for p in people}
        assert uuid.UUID(done.json()["person_ids"][0])


async def test_a_file_is_only_reached_within_the_area_and_bad_input_is_named(servers, database):
    clock = FakeClock(local(day(0), 10))
    town = {"Authorization": f"Bearer {await issue_operator(database, TOWN)}"}
    other = {"Authorization": f"Bearer {await issue_operator(database, '430621108')}"}
    async with ledger(servers, database, clock) as led:
        made = await led.http.post("/v1/control/people", json=registration(), headers=town)
        pid = made.json()["person_id"]
        outside = await led.http.get(f"/v1/control/people/{pid}", headers=other)
        assert outside.status_code == 404 and outside.json()["errors"][0]["code"] == \
            "unknown_person"
        signed = await led.http.post(f"/v1/control/people/{pid}/signoffs", headers=other,
                                     json={"day": day(0).isoformat(), "seat": 1})
        assert signed.status_code == 404
        assert (await led.http.get("/v1/control/people", headers=other,
                                   params={"node": VILLAGE})).status_code == 403
        bad = await led.http.post("/v1/control/people", headers=town, json=registration(
            start_day=day(1).isoformat(), site=None, team=[{"role": "x", "staff": "甲"}] * 6))
        assert bad.status_code == 422
        assert {(e["field"], e["code"]) for e in bad.json()["errors"]} == {
            ("start_day", "future_day"), ("site", "site_required"), ("team", "team_too_large"),
            *{(f"team[{i}].role", "unknown_role") for i in range(6)}}
        seat = await led.http.post(f"/v1/control/people/{pid}/signoffs", headers=town,
                                   json={"day": day(0).isoformat(), "seat": 3})
        assert seat.json()["errors"][0]["code"] == "unknown_seat"
        # A third member joins the team: seat 3 signs from then on.
        grown = await led.http.post(f"/v1/control/people/{pid}/team", headers=town, json=[
            *registration()["team"], {"role": "police", "staff": "周民警"}])
        assert grown.status_code == 200, grown.text
        assert [m["seat"] for m in grown.json()["team"]] == [1, 2, 3]
        seat = await led.http.post(f"/v1/control/people/{pid}/signoffs", headers=town,
                                   json={"day": day(0).isoformat(), "seat": 3})
        assert seat.status_code == 201
        wrong = await led.http.post(f"/v1/control/people/{pid}/team", headers=town,
                                    json=[{"role": "mayor", "staff": "某"}])
        assert wrong.json()["errors"][0]["field"] == "team[0].role"
