"""免报 declared after a cutoff, on real NATS and PostgreSQL: a calendar declared through
aggregate (`AggregateContext.declare_exemption`, which publishes `calendar.declared`) takes the
units it exempts off the cutoff's missing-report alert in an alerts replica, and the alert
closes by itself once none is left missing; a redelivery and an ending change nothing."""

from datetime import UTC, datetime, timedelta

import nats
import pytest

from services.aggregate.service import AggregateContext
from services.alerts import detection
from shared.catalogue import default_catalogue
from shared.contracts import Event
from shared.db import make_engine, make_sessionmaker
from shared.registry import calendar
from shared.settings import Settings
from shared.streams import CALENDARS
from tests.integration.alerts_harness import (
    BASE_DAY,
    DURABLE,
    Bus,
    FakeClock,
    alerts_database,
    drain,
    local,
    replica,
    report,
    rows,
    wait_for,
)
from tests.integration.test_alerts_clock import noon_units_by_node

VILLAGE = "430621100003"  # five units due at 12:00
SEC = timedelta(seconds=1)


@pytest.fixture(scope="module")
def db(servers) -> str:
    return alerts_database(servers)


@pytest.fixture
async def bus(servers):
    nc = await nats.connect(servers.nats_url)
    yield Bus(nc)
    await nc.close()


@pytest.fixture
async def aggregate(servers, db):
    """Aggregate's calendar API as a command centre uses it, publishing to the real stream."""
    engine = make_engine(db, pool_size=2)
    nc = await nats.connect(servers.nats_url)
    js = nc.jetstream()
    published: list[Event] = []

    async def publish(event: Event) -> None:
        await js.publish(event.subject, event.model_dump_json().encode(),
                         headers={"Nats-Msg-Id": event.msg_id})
        published.append(event)

    clock = FakeClock(datetime.now(UTC))
    ctx = AggregateContext(Settings(nats_url=servers.nats_url, database_url=db), clock,
                           make_sessionmaker(engine), default_catalogue(), publish=publish)
    yield ctx, clock, published
    await nc.close()
    await engine.dispose()


async def settled(js, durable: str) -> bool:
    """The durable has taken and acknowledged everything its stream holds."""
    info = await js.consumer_info(CALENDARS, durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def test_a_calendar_declared_after_the_cutoff_takes_its_units_off_the_alert(
        servers, db, bus, aggregate) -> None:
    ctx, aggregate_clock, published = aggregate
    day = BASE_DAY + timedelta(days=401)
    clock = FakeClock(local(day, 9, 0))
    aggregate_clock.set(local(day, 12, 30))
    first, second, *others = sorted(noon_units_by_node(day)[VILLAGE])
    query = ("SELECT alert_id, status, outcome, note FROM alerts.alerts "
             "WHERE kind = 'missing_report' AND node = :n AND day = :d "
             "AND details->>'cutoff' = '12:00'")
    async with replica(servers, db, clock) as r:
        await r.tick()
        for unit in others:  # all but two of the village's units report in time
            await bus.publish(report(unit, VILLAGE, "village_clinic", day, {}))
        assert await wait_for(lambda: rows(
            r.ctx, "SELECT 1 FROM alerts.unit_days WHERE day = :d AND unit = ANY(:u) "
                   "HAVING count(*) = :n", d=day, u=others, n=len(others)))
        clock.set(local(day, 12, 1) + SEC)
        await r.tick()
        [alert] = await rows(r.ctx, query, n=VILLAGE, d=day)
        listed = "SELECT unit, exempted_by FROM alerts.missing_units WHERE alert_id = :a " \
                 "AND reported_at IS NULL ORDER BY unit"
        assert await rows(r.ctx, listed, a=alert.alert_id) == [(first, None), (second, None)]

        # 免报 for one of them, declared after the cutoff: it is off, the alert stays open.
        clock.set(local(day, 12, 30))
        one = await ctx.declare_exemption(calendar.Declaration(
            valid_from=day, valid_to=day, reason="停业整顿", unit_code=first), "", "县卫健局")

        async def exempted(unit: str):
            return [x for u, x in await rows(r.ctx, listed, a=alert.alert_id) if u == unit and x]

        assert await wait_for(lambda: exempted(first)) == [one.exemption_id]
        assert (await rows(r.ctx, query, n=VILLAGE, d=day))[0].status == "open"
        after_one = await rows(r.ctx, "SELECT change, actor, reason, details "
                                      "FROM alerts.transitions WHERE alert_id = :a ORDER BY seq",
                               a=alert.alert_id)
        assert [(c, a, why) for c, a, why, _ in after_one] == [
            ("opened", "system", None),
            ("units_exempted", "system", f"exempted by calendar {one.exemption_id}")]
        assert after_one[-1].details == {"units": [first], "exemption_id": one.exemption_id}

        # The other one too: nothing is left missing and the alert closes by itself.
        clock.set(local(day, 12, 40))
        other = await ctx.declare_exemption(calendar.Declaration(
            valid_from=day, valid_to=day, reason="停业整顿", unit_code=second), "", "县卫健局")

        async def closed():
            [row] = await rows(r.ctx, query, n=VILLAGE, d=day)
            return row if row.status == "closed" else None

        row = await wait_for(closed)
        assert row and (row.outcome, row.note) == (
            "withdrawn", f"exempted by calendar {other.exemption_id}")
        history = "SELECT seq, change, reason FROM alerts.transitions WHERE alert_id = :a " \
                  "ORDER BY seq"
        done = await rows(r.ctx, history, a=alert.alert_id)
        assert [c for _, c, _ in done] == ["opened", "units_exempted", "units_exempted",
                                           "closed"]

        # Redelivered (and published again under another message id): nothing changes.
        assert [e.change for e in published] == ["declared", "declared"]
        async with r.ctx.sessions() as session, session.begin():
            assert await detection.apply_calendars(session, published, r.ctx.rules,
                                                   clock()) == 0
        for event in published:
            await bus.js.publish(event.subject, event.model_dump_json().encode(),
                                 headers={"Nats-Msg-Id": f"{event.msg_id}:again"})
        # Ended the same day (withdrawn): nothing is put back on the alert.
        aggregate_clock.set(local(day, 13, 0))
        ended = await ctx.end_exemption(other.exemption_id, "整顿结束", "", "县卫健局")
        assert ended.withdrawn and published[-1].change == "ended"
        assert await wait_for(lambda: settled(bus.js, f"{DURABLE}-calendars"))
        assert await rows(r.ctx, history, a=alert.alert_id) == done
        assert await rows(r.ctx, listed, a=alert.alert_id) == [
            (first, one.exemption_id), (second, other.exemption_id)]
        # The other villages' alerts of this cutoff are left to escalate, as nobody acts: none
        # stays open at village level, where other tests count them.
        clock.set(local(day, 14, 1))
        await r.tick()
        await drain(r)
        events = await bus.alert_events({alert.alert_id})
        assert events == {(alert.alert_id, "opened"): 1, (alert.alert_id, "units_exempted"): 2,
                          (alert.alert_id, "closed"): 1}
