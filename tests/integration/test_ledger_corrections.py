"""Correcting a registration of the ledger of people under control, on real NATS and PostgreSQL
beside an alerts replica: a typo corrected and kept with its reason, a regime or start day that
re-plans what is due (the countdowns announced follow, with their seq), what a release or a
recorded test forbids, who may correct, and names that never leave the village and the town."""

import asyncio
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

VILLAGE = "430693100001"  # a county of this file's own: its alerts are no other test's
TOWN, COUNTY = VILLAGE[:9], VILLAGE[:6]
NAME, PHONE = "张晓明", "13912340000"
TYPO, TYPO_PHONE = "张小明", "13912349999"


@pytest.fixture(scope="module")
def database(servers):
    url = alerts_database(servers)
    asyncio.run(add_village(url, VILLAGE))
    yield url
    asyncio.run(drop_units(url, COUNTY))


def day(n: int) -> date:
    return BASE_DAY + timedelta(days=n)


def registration(**over) -> dict:
    return {"village": VILLAGE, "name": TYPO, "contact": TYPO_PHONE,
            "category": "close_contact", "regime": "7+7", "site": "县隔离点一号",
            "start_day": day(0).isoformat(),
            "team": [{"role": "village_cadre", "staff": "李主任"}], **over}


async def tokens(database) -> tuple[dict, dict]:
    town = {"Authorization": f"Bearer {await issue_operator(database, TOWN)}"}
    county = {"Authorization": f"Bearer {await issue_operator(database, COUNTY)}"}
    return town, county


async def register(led, town: dict, **over) -> str:
    made = await led.http.post("/v1/control/people", json=registration(**over), headers=town)
    assert made.status_code == 201, made.text
    return made.json()["person_id"]


async def announced(servers, pid: str) -> dict[str, list[tuple[int, str]]]:
    """Per countdown key of the person, its announcements on the bus: (seq, due | settled)."""
    out: dict[str, list[tuple[int, str]]] = {}
    for m in await control_messages(servers.nats_url, pid):
        out.setdefault(m["key"], []).append((m["seq"], m.get("outcome") or m["change"]))
    return {k: sorted(v) for k, v in out.items()}


async def alert_rows(alerts, pid: str) -> dict[str, tuple[str, int]]:
    return {r.key: (r.state, r.seq) for r in await rows(
        alerts.ctx, "SELECT key, state, seq FROM alerts.countdowns WHERE key LIKE :k",
        k=f"%:{pid}:%")}


async def test_a_typo_is_corrected_and_kept_with_its_reason(servers, database):
    clock = FakeClock(local(day(1), 10))
    town, county = await tokens(database)
    async with ledger(servers, database, clock) as led:
        pid = await register(led, town)
        fixed = await led.http.patch(f"/v1/control/people/{pid}", headers=town, json={
            "name": f" {NAME} ", "contact": PHONE, "reason": "姓名和电话录入错误"})
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["changed"] == ["contact", "name"]
        person = (await led.http.get(f"/v1/control/people/{pid}", headers=town)).json()
        assert (person["name"], person["contact"]) == (NAME, PHONE)

        kept = (await led.http.get(f"/v1/control/people/{pid}/corrections",
                                   headers=town)).json()
        assert len(kept) == 1
        assert kept[0]["reason"] == "姓名和电话录入错误" and kept[0]["corrected_by"]
        assert kept[0]["changes"] == [
            {"field": "contact", "before": TYPO_PHONE, "after": PHONE},
            {"field": "name", "before": TYPO, "after": NAME}]
        # Above the town: that they changed, and nothing of them.
        seen = await led.http.get(f"/v1/control/people/{pid}/corrections", headers=county)
        assert seen.status_code == 200
        assert seen.json()[0]["changes"] == [{"field": "contact", "withheld": True},
                                             {"field": "name", "withheld": True}]
        assert seen.json()[0]["reason"] is None
        for text in (NAME, TYPO, PHONE, TYPO_PHONE):
            assert text not in seen.text

        # A category corrected: every level reads it, the reason too.
        category = await led.http.patch(f"/v1/control/people/{pid}", headers=town, json={
            "category": "secondary_contact", "reason": "类别登记错误"})
        assert category.status_code == 200, category.text
        above = (await led.http.get(f"/v1/control/people/{pid}/corrections",
                                    headers=county)).json()
        assert above[1] | {"corrected_at": None, "corrected_by": None} == {
            "corrected_at": None, "corrected_by": None, "pseudonym": person["pseudonym"],
            "reason": "类别登记错误", "changes": [
                {"field": "category", "before": "close_contact", "after": "secondary_contact"}]}

        # Refused, each named: no reason, nothing new, the village, an unknown regime.
        for body, field, code in (
                ({"name": "王五", "reason": "  "}, "reason", "reason_required"),
                ({"name": NAME, "reason": "再改"}, "fields", "nothing_changed"),
                ({"village": "430621108001", "reason": "村写错"}, "village", "not_correctable"),
                ({"regime": "9+9", "reason": "改"}, "regime", "unknown_regime"),
                ({"site": None, "reason": "没有隔离点"}, "site", "site_required"),
                ({"start_day": day(2).isoformat(), "reason": "改"}, "start_day", "future_day")):
            refused = await led.http.patch(f"/v1/control/people/{pid}", headers=town, json=body)
            assert refused.status_code == 422, (body, refused.text)
            assert (field, code) in {(e["field"], e["code"])
                                     for e in refused.json()["errors"]}, body
        assert len((await led.http.get(f"/v1/control/people/{pid}/corrections",
                                       headers=town)).json()) == 2

        # Only village and town operators correct (they hold the name), within their area.
        by_county = await led.http.patch(f"/v1/control/people/{pid}", headers=county,
                                         json={"name": "王五", "reason": "县里改"})
        assert by_county.status_code == 403
        assert by_county.json()["errors"][0]["code"] == "names_below_town"
        other = {"Authorization": f"Bearer {await issue_operator(database, '430621108')}"}
        outside = await led.http.patch(f"/v1/control/people/{pid}", headers=other,
                                       json={"name": "王五", "reason": "别的镇"})
        assert outside.status_code == 404
        assert (await led.http.get(f"/v1/control/people/{pid}", headers=town)).json()[
            "name"] == NAME

        await led.drain()
        messages = await control_messages(servers.nats_url, pid)
        assert messages and all(t not in m["raw"] for m in messages
                                for t in (NAME, TYPO, PHONE, TYPO_PHONE))
        # The category corrected travels with the countdowns still due.
        assert {m["category"] for m in messages if m["change"] == "due"} == {
            "close_contact", "secondary_contact"}


async def test_a_regime_or_start_day_corrected_re_plans_the_countdowns(servers, database):
    clock = FakeClock(local(day(1), 10))
    town, _ = await tokens(database)
    async with ledger(servers, database, clock) as led, replica(servers, database,
                                                                clock) as alerts:
        pid = await register(led, town)
        await led.drain()
        before = {f"test:{pid}:{day(2)}", f"test:{pid}:{day(7)}", f"release:{pid}:{day(7)}"}
        assert before <= set(await wait_for(lambda: _have(alerts, pid, before)))

        # 7+7 was wrong: three days of home monitoring, tests on days 1 and 2.
        fixed = await led.http.patch(f"/v1/control/people/{pid}", headers=town, json={
            "regime": "monitoring_3", "site": None, "reason": "管控方式登记错误"})
        assert fixed.status_code == 200, fixed.text
        assert fixed.json()["changed"] == ["regime", "site"]
        person = fixed.json()["person"]
        assert person["planned_release"] == day(3).isoformat()
        assert person["phase"] == "home_health_monitoring"
        await led.drain()
        states = await wait_for(lambda: _states(alerts, pid, {
            f"test:{pid}:{day(7)}": ("withdrawn", 2), f"release:{pid}:{day(7)}": ("withdrawn", 2),
            f"signoff:{pid}:{day(9)}": ("withdrawn", 2),
            f"test:{pid}:{day(1)}": ("pending", 1), f"release:{pid}:{day(3)}": ("pending", 1),
            f"test:{pid}:{day(2)}": ("pending", 2), f"signoff:{pid}:{day(2)}": ("pending", 2)}))
        assert states, await alert_rows(alerts, pid)
        work = (await led.http.get("/v1/control/due", headers=town, params={
            "node": VILLAGE, "day": day(7).isoformat()})).json()
        assert not [t for t in work["tests"] if t["person_id"] == pid]

        # The start day was a day late, then put back: day 1's test moves to day 2 and back,
        # announced again with its next seq each time.
        for n in (1, 0):
            moved = await led.http.patch(f"/v1/control/people/{pid}", headers=town, json={
                "start_day": day(n).isoformat(), "reason": "到达日期登记错误"})
            assert moved.status_code == 200, moved.text
            await led.drain()
        bus = await announced(servers, pid)
        assert bus[f"test:{pid}:{day(1)}"] == [(1, "due"), (2, "withdrawn"), (3, "due")]
        assert bus[f"test:{pid}:{day(3)}"] == [(1, "due"), (2, "withdrawn")]
        assert bus[f"test:{pid}:{day(2)}"] == [(1, "due"), (2, "due"), (3, "due"), (4, "due")]
        assert await wait_for(lambda: _states(alerts, pid, {
            f"test:{pid}:{day(1)}": ("pending", 3), f"test:{pid}:{day(3)}": ("withdrawn", 2)}))
        await drain(alerts)


async def test_what_a_release_or_a_recorded_test_forbids(servers, database):
    clock = FakeClock(local(day(3), 10))
    town, _ = await tokens(database)
    async with ledger(servers, database, clock) as led:
        pid = await register(led, town)
        test = await led.http.post(f"/v1/control/people/{pid}/tests", headers=town,
                                   json={"day": day(2).isoformat()})
        assert test.status_code == 201, test.text
        late = await led.http.patch(f"/v1/control/people/{pid}", headers=town, json={
            "start_day": day(3).isoformat(), "reason": "到达日期登记错误"})
        assert late.status_code == 409
        assert [(e["field"], e["code"]) for e in late.json()["errors"]] == [
            ("start_day", "recorded_before_start")]

        clock.set(local(day(7), 10))
        released = await led.http.post(f"/v1/control/people/{pid}/release", headers=town,
                                        json={"day": day(7).isoformat()})
        assert released.status_code == 200, released.text
        for body in ({"regime": "14+7"}, {"start_day": day(1).isoformat()}):
            refused = await led.http.patch(f"/v1/control/people/{pid}", headers=town,
                                           json={**body, "reason": "改"})
            assert refused.status_code == 409, refused.text
            [error] = refused.json()["errors"]
            assert (error["field"], error["code"]) == (next(iter(body)), "released")
        # The identity and the category stay correctable.
        name = await led.http.patch(f"/v1/control/people/{pid}", headers=town,
                                    json={"name": NAME, "reason": "姓名录入错误"})
        assert name.status_code == 200, name.text
        person = name.json()["person"]
        assert person["regime"] == "7+7" and person["phase"] == "home_health_monitoring"
        kept = (await led.http.get(f"/v1/control/people/{pid}/corrections",
                                   headers=town)).json()
        assert [c["changes"][0]["field"] for c in kept] == ["name"]


async def _have(alerts, pid: str, want: set[str]):
    have = await alert_rows(alerts, pid)
    return have if want <= set(have) else None


async def _states(alerts, pid: str, want: dict[str, tuple[str, int]]) -> bool:
    have = await alert_rows(alerts, pid)
    return all(have.get(k) == v for k, v in want.items())
