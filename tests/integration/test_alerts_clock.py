"""Time travel on real NATS and PostgreSQL: cases, outbreaks and missing reports open alerts,
and each clock rule fires exactly once at its minute, across a restart and with two replicas.

Events are published to JetStream as ingest publishes them (subject, Nats-Msg-Id); the alerts
service runs in-process with a clock the test moves, and its clock loop is ticked by the test.
"""

import asyncio
from collections import Counter, defaultdict
from datetime import time, timedelta

import nats
import pytest
from sqlalchemy import text

from services.alerts import detection
from shared.catalogue import default_catalogue
from shared.db import make_engine, make_sessionmaker
from shared.registry import demo
from shared.registry.unit_types import unit_types
from shared.rules import load_rules
from tests.integration.alerts_harness import (
    BASE_DAY,
    Bus,
    FakeClock,
    alert_of_case,
    alerts_database,
    case,
    drain,
    history,
    local,
    replica,
    report,
    rows,
    scalar,
    wait_for,
)

VILLAGE, TOWN, COUNTY = "430621108001", "430621108", "430621"
CLINIC = f"{VILLAGE}-CL"
SCHOOL = f"{TOWN}-PS"  # a town's primary school
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)


@pytest.fixture(scope="module")
def db(servers) -> str:
    return alerts_database(servers)


@pytest.fixture
async def bus(servers):
    nc = await nats.connect(servers.nats_url)
    yield Bus(nc)
    await nc.close()


async def walk(clock: FakeClock, until, *replicas, around=()) -> None:
    """Move time to `until`, ticking every replica (concurrently) at each stop: every minute
    within two minutes of the `around` times and one second after each of them, every ten
    minutes elsewhere. A step is due once its moment has passed: one that fired at its moment
    rather than just after it, early, or twice, would show at a stop with the wrong time."""
    stops = {clock.now + n * 10 * MIN for n in range(1, int((until - clock.now) / (10 * MIN)) + 1)}
    for mark in around:
        stops |= {mark + n * MIN for n in range(-2, 3)} | {mark + SEC}
    for stop in sorted(t for t in stops | {until} if clock.now < t <= until):
        clock.set(stop)
        await asyncio.gather(*(r.tick() for r in replicas))


def changes(h: list[tuple]) -> list[tuple]:
    return [(change, at, to) for change, at, _, to in h]


async def test_fever_case_opens_alert_and_each_rule_fires_once_at_its_minute(
        servers, db, bus) -> None:
    found = local(BASE_DAY, 15, 0)
    clock = FakeClock(found + 5 * MIN)
    async with replica(servers, db, clock) as r:
        event = case(CLINIC, VILLAGE, "village_clinic", found)
        await bus.publish(event)
        alert_id = await wait_for(lambda: alert_of_case(r.ctx, event))
        assert alert_id, "the case opened no alert"
        row = (await rows(r.ctx, "SELECT * FROM alerts.alerts WHERE alert_id = :a",
                          a=alert_id))[0]
        assert row.deadline == found + 120 * MIN and row.status == "open"
        assert row.recipients == ["village_committee"] and row.responsible == VILLAGE
        assert not row.late

        await walk(clock, found + 210 * MIN, r,
                   around=[found + m * MIN for m in (90, 120, 180)])
        assert changes(await history(r.ctx, alert_id)) == [
            ("opened", found + 5 * MIN, None),
            ("warned", found + 90 * MIN + SEC, None),  # 30 minutes left
            ("escalated", found + 120 * MIN + SEC, TOWN),  # not acknowledged by the deadline
            ("escalated", found + 180 * MIN + SEC, COUNTY),  # and still not an hour later
        ]
        await drain(r)
    assert await bus.alert_events({alert_id}) == Counter({
        (alert_id, "opened"): 1, (alert_id, "warned"): 1, (alert_id, "escalated"): 2})


async def test_a_case_arriving_past_its_deadline_is_late_and_escalated_at_once(
        servers, db, bus) -> None:
    found = local(BASE_DAY + timedelta(days=2), 15, 0)
    arrived = found + 150 * MIN
    clock = FakeClock(arrived)
    async with replica(servers, db, clock) as r:
        event = case(CLINIC, VILLAGE, "village_clinic", found, received_at=arrived)
        await bus.publish(event)
        alert_id = await wait_for(lambda: alert_of_case(r.ctx, event))
        assert await scalar(r.ctx, "SELECT late FROM alerts.alerts WHERE alert_id = :a",
                            a=alert_id) is True
        assert changes(await history(r.ctx, alert_id)) == [
            ("opened", arrived, None), ("escalated", arrived, TOWN)]
        await walk(clock, found + 200 * MIN, r, around=[found + 180 * MIN])
        assert changes(await history(r.ctx, alert_id))[2:] == [
            ("escalated", found + 180 * MIN + SEC, COUNTY)]


async def test_outbreak_opens_one_alert_from_cases_and_daily_reports(servers, db, bus) -> None:
    day = BASE_DAY + timedelta(days=4)
    clock = FakeClock(local(day, 16, 0))
    async with replica(servers, db, clock) as r:
        # Six flu-like cases today, and a report of three two days ago: nine in the window.
        cases = [case(SCHOOL, TOWN, "primary_school", local(day, 9, i), kind="ili",
                      sector="education") for i in range(6)]
        for e in cases:
            await bus.publish(e)
        await bus.publish(report(SCHOOL, TOWN, "primary_school", day - timedelta(days=2),
                                 {"ili": 3}))
        # Today's report counts the same six cases again (four of them): still nine, not 13.
        await bus.publish(report(SCHOOL, TOWN, "primary_school", day, {"ili": 4}))
        # Eight days ago is outside the seven-day window.
        await bus.publish(report(SCHOOL, TOWN, "primary_school", day - timedelta(days=7),
                                 {"ili": 5}))

        async def counted() -> bool:
            n = await scalar(r.ctx, "SELECT count(*) FROM alerts.unit_days WHERE unit = :u "
                                    "AND report_revision IS NOT NULL", u=SCHOOL)
            opened = [await alert_of_case(r.ctx, e) for e in cases]
            return n >= 3 and all(opened)

        assert await wait_for(counted)
        outbreaks = "SELECT alert_id, deadline, recipients, details FROM alerts.alerts " \
                    "WHERE kind = 'outbreak' AND unit = :u"
        assert await rows(r.ctx, outbreaks, u=SCHOOL) == []

        tenth = case(SCHOOL, TOWN, "primary_school", local(day, 11), kind="ili",
                     sector="education")
        tenth = tenth.model_copy(update={"received_at": clock().replace(microsecond=0)})
        await bus.publish(tenth)
        opened = await wait_for(lambda: rows(r.ctx, outbreaks, u=SCHOOL))
        assert len(opened) == 1
        outbreak = opened[0]
        assert outbreak.recipients == ["cdc", "education_authority"]
        assert outbreak.details["cases"] == 10
        # The clock starts when the tenth case was found: it arrives late, so it escalates.
        assert outbreak.deadline == local(day, 13)

        # Further cases add to it; they do not open another.
        more = [case(SCHOOL, TOWN, "primary_school", local(day, 12, i), kind="ili",
                     sector="education") for i in range(3)]
        for e in more:
            await bus.publish(e)
        await bus.publish(report(SCHOOL, TOWN, "primary_school", day, {"ili": 12}, revision=2))
        assert await wait_for(lambda: _all_opened(r, more))
        await asyncio.sleep(0.5)
        assert len(await rows(r.ctx, outbreaks, u=SCHOOL)) == 1


async def _all_opened(r, events) -> bool:
    return all([await alert_of_case(r.ctx, e) for e in events])


async def test_missing_reports_raise_one_alert_per_village_that_resolves_itself(
        servers, db, bus) -> None:
    day = BASE_DAY + timedelta(days=8)
    clock = FakeClock(local(day, 11, 0))
    reported, silent = "430621108001", "430621108002"
    async with replica(servers, db, clock) as r:
        await r.tick()  # yesterday's cutoffs and today's 10:00 (schools) are checked now
        await bus.publish(report(f"{reported}-CL", reported, "village_clinic", day, {}))
        assert await wait_for(lambda: scalar(
            r.ctx, "SELECT report_revision FROM alerts.unit_days WHERE unit = :u AND day = :d",
            u=f"{reported}-CL", d=day))

        query = ("SELECT alert_id, node, details, status, outcome FROM alerts.alerts "
                 "WHERE kind = 'missing_report' AND day = :d AND details->>'cutoff' = '12:00' "
                 "ORDER BY node")
        clock.set(local(day, 12, 1))
        await r.tick()
        assert await rows(r.ctx, query, d=day) == [], "checked before the grace period passed"
        clock.set(local(day, 12, 1) + SEC)
        await r.tick()
        await r.tick()
        missing = {row.node: row for row in await rows(r.ctx, query, d=day)}
        # One alert for each node with a unit due at 12:00 that has not reported, naming them.
        due = noon_units_by_node(day)
        due[reported].discard(f"{reported}-CL")  # its clinic reported
        assert {node: {u["unit"] for u in row.details["units"]} for node, row in missing.items()
                } == {node: units for node, units in due.items() if units}
        assert f"{silent}-CL" in due[silent] and TOWN in missing

        for unit in sorted(due[silent]):  # the silent village's units report after all
            await bus.publish(report(unit, silent, "village_clinic", day, {}))

        async def resolved():
            row = (await rows(r.ctx, query, d=day))
            return next(x for x in row if x.node == silent).status == "closed"

        assert await wait_for(resolved)
        closed = next(x for x in await rows(r.ctx, query, d=day) if x.node == silent)
        assert closed.outcome == "reported"
        # The town did nothing: its alert escalates like any other, at cutoff + 2 h.
        await walk(clock, local(day, 14, 2), r, around=[local(day, 13, 30), local(day, 14)])
        town = missing[TOWN].alert_id
        assert changes(await history(r.ctx, town)) == [
            ("opened", local(day, 12, 1) + SEC, None),
            ("warned", local(day, 13, 30) + SEC, None),
            ("escalated", local(day, 14, 0) + SEC, COUNTY)]
        assert [c for c, *_ in await history(r.ctx, closed.alert_id)] == ["opened", "closed"]


async def test_a_kindergarten_on_winter_vacation_raises_no_missing_report_alert(
        servers, db, bus) -> None:
    """免报: the county's kindergartens are exempt that day; its schools (the same 10:00 cutoff)
    that did not report raise their alerts as usual."""
    day = BASE_DAY + timedelta(days=6)
    clock = FakeClock(local(day, 9, 0))
    engine = make_engine(db, pool_size=1)
    async with make_sessionmaker(engine)() as session, session.begin():
        await session.execute(text("""
            INSERT INTO registry.exemptions (node_code, unit_type, valid_from, valid_to, reason,
                                             declared_by, declared_at)
            VALUES (:county, 'kindergarten', :d, :d, '寒假', 'test', now())"""),
            {"county": COUNTY, "d": day})
    await engine.dispose()
    query = ("SELECT details FROM alerts.alerts WHERE kind = 'missing_report' AND day = :d "
             "AND details->>'cutoff' = '10:00'")
    async with replica(servers, db, clock) as r:
        await r.tick()
        clock.set(local(day, 10, 1) + SEC)
        await r.tick()
        listed = [u for row in await rows(r.ctx, query, d=day) for u in row.details["units"]]
        # Left to escalate, as nobody acts: no alert of this test stays open at village level,
        # where other tests count them.
        clock.set(local(day, 12, 1) + SEC)
        await r.tick()
    types = {u["unit_type"] for u in listed}
    assert "kindergarten" not in types
    assert "primary_school" in types  # the same cutoff, not exempt: alerts as usual


def noon_units_by_node(day) -> dict[str, set[str]]:
    """The demo's units whose cutoff is 12:00 on `day`, by the node they belong to."""
    types = unit_types()
    due: dict[str, set[str]] = defaultdict(set)
    for u in demo.batch().units:
        cutoff = getattr(u, "cutoff", None) or types[u.unit_type].cutoff
        active = ((getattr(u, "active_from", None) or day) <= day
                  and day <= (getattr(u, "active_to", None) or day))
        if cutoff == time(12, 0) and active:
            due[u.node].add(u.code)
    return due


async def test_a_restart_neither_loses_nor_repeats_a_step(servers, db, bus) -> None:
    found = local(BASE_DAY + timedelta(days=12), 15, 0)
    clock = FakeClock(found + MIN)
    event = case(CLINIC, VILLAGE, "village_clinic", found)
    async with replica(servers, db, clock) as first:
        await bus.publish(event)
        alert_id = await wait_for(lambda: alert_of_case(first.ctx, event))
        await walk(clock, found + 95 * MIN, first, around=[found + 90 * MIN])
        assert [c for c, *_ in await history(first.ctx, alert_id)] == ["opened", "warned"]
    # Down across the deadline: the escalation is due when it comes back, and taken once.
    clock.set(found + 125 * MIN)
    async with replica(servers, db, clock) as second:
        await second.tick()
        await second.tick()
        assert changes(await history(second.ctx, alert_id))[2:] == [
            ("escalated", found + 125 * MIN, TOWN)]
    async with replica(servers, db, clock) as third:
        await third.tick()
        await walk(clock, found + 185 * MIN, third, around=[found + 180 * MIN])
        assert changes(await history(third.ctx, alert_id))[2:] == [
            ("escalated", found + 125 * MIN, TOWN),
            ("escalated", found + 180 * MIN + SEC, COUNTY)]
        await drain(third)
    assert await bus.alert_events({alert_id}) == Counter({
        (alert_id, "opened"): 1, (alert_id, "warned"): 1, (alert_id, "escalated"): 2})


async def test_the_clock_loop_runs_by_itself(servers, db, bus) -> None:
    found = local(BASE_DAY + timedelta(days=14), 15, 0)
    clock = FakeClock(found + MIN)
    async with replica(servers, db, clock, alerts_tick_s=0.1) as r:
        event = case(CLINIC, VILLAGE, "village_clinic", found)
        await bus.publish(event)
        alert_id = await wait_for(lambda: alert_of_case(r.ctx, event))
        clock.set(found + 121 * MIN)
        assert await wait_for(lambda: scalar(
            r.ctx, "SELECT responsible FROM alerts.alerts WHERE alert_id = :a AND stage = 2",
            a=alert_id)) == TOWN


async def test_two_replicas_take_each_step_exactly_once(servers, db, bus) -> None:
    day = BASE_DAY + timedelta(days=16)
    start = local(day, 13, 0)
    clock = FakeClock(start)
    units = [(f"{TOWN}{i:03d}-CL", f"{TOWN}{i:03d}") for i in (1, 2, 3)]
    async with replica(servers, db, clock) as a, replica(servers, db, clock) as b:
        await asyncio.gather(a.tick(), b.tick())
        # Thirty cases found within three minutes: many clocks come due at the same minute.
        events = [case(unit, node, "village_clinic", start - (i % 3) * MIN, received_at=start)
                  for i in range(30) for unit, node in [units[i % 3]]]
        flu = [case(SCHOOL, TOWN, "primary_school", start - i * MIN, kind="ili",
                    sector="education", received_at=start) for i in range(12)]
        await asyncio.gather(*(bus.publish(e) for e in events + flu))
        assert await wait_for(lambda: _all_opened(a, events + flu))
        await walk(clock, start + 200 * MIN, a, b,
                   around=[start + (m - k) * MIN for m in (90, 120, 180) for k in range(3)])
        await drain(a, b)

        cases = {await alert_of_case(a.ctx, e): e for e in events}
        for alert_id, e in cases.items():
            found = e.found_at.astimezone(start.tzinfo)
            assert changes(await history(a.ctx, alert_id)) == [
                ("opened", start, None), ("warned", found + 90 * MIN + SEC, None),
                ("escalated", found + 120 * MIN + SEC, TOWN),
                ("escalated", found + 180 * MIN + SEC, COUNTY)], e
        assert await scalar(a.ctx, "SELECT count(*) FROM alerts.alerts WHERE kind = 'outbreak' "
                                   "AND unit = :u AND day = :d", u=SCHOOL, d=day) == 1
        per_node = await rows(a.ctx, "SELECT node, details->>'cutoff', count(*) "
                                     "FROM alerts.alerts WHERE kind = 'missing_report' "
                                     "AND day = :d GROUP BY 1, 2 HAVING count(*) > 1", d=day)
        assert per_node == []
        assert await scalar(a.ctx, "SELECT count(*) FROM alerts.cutoff_runs WHERE day = :d",
                            d=day) == 3
    seen = await bus.alert_events(set(cases))
    assert set(seen.values()) == {1, 2}
    assert all(seen[(alert_id, "escalated")] == 2 and seen[(alert_id, "warned")] == 1
               for alert_id in cases)


async def test_redelivered_and_stale_events_change_nothing(servers, db) -> None:
    day = BASE_DAY + timedelta(days=20)
    rules, zone, now = load_rules(), local(day, 9).tzinfo, local(day, 9, 30)
    flu = case(SCHOOL, TOWN, "primary_school", local(day, 9), kind="ili", sector="education")
    newer = report(SCHOOL, TOWN, "primary_school", day, {"ili": 4}, revision=2)
    older = report(SCHOOL, TOWN, "primary_school", day, {"ili": 9}, revision=1)
    engine = make_engine(db, pool_size=1)
    sessions = make_sessionmaker(engine)
    try:
        for _ in range(2):  # a batch with a duplicate, then the whole batch again
            async with sessions() as session, session.begin():
                await detection.apply_cases(session, [flu, flu], rules, zone, now)
                await detection.apply_reports(session, [newer, older, newer], rules, zone, now,
                                              catalogue=default_catalogue())
        async with sessions() as session:
            alerts = (await session.execute(text(
                "SELECT a.alert_id, count(t.seq) FROM alerts.alerts a JOIN alerts.transitions t "
                "USING (alert_id) WHERE a.key = :k GROUP BY 1"),
                {"k": f"case:{flu.case_id}"})).all()
            counts = (await session.execute(text(
                "SELECT case_ili, report_revision, report_ili FROM alerts.unit_days "
                "WHERE unit = :u AND day = :d"), {"u": SCHOOL, "d": day})).one()
    finally:
        await engine.dispose()
    assert len(alerts) == 1 and alerts[0][1] == 1  # one alert, opened once
    assert tuple(counts) == (1, 2, 4.0)  # one case; the newer revision kept
