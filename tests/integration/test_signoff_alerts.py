"""A missing confirmation (确认上报 not done in time) raises an alert through the alerts
service's own clock, like units missing at a cutoff: on real NATS and PostgreSQL, with the
confirmations published on the bus as the signoff service publishes them."""

import itertools
import uuid
from datetime import UTC, date, timedelta

import nats
import pytest

from shared.contracts import SignoffChanged
from shared.hierarchy import parent_of
from shared.registry.reference import Reference
from tests.integration.alerts_harness import (
    BASE_DAY,
    Bus,
    FakeClock,
    alerts_database,
    history,
    local,
    replica,
    rows,
    scalar,
    wait_for,
)

COUNTY, TOWN, OTHER_TOWN = "430621", "430621108", "430621109"
ENTRIES = itertools.count(int(uuid.uuid4().int % 10**9) * 1000)  # signoff's audit entries
SEC = timedelta(seconds=1)
QUERY = ("SELECT alert_id, node, status, outcome, recipients, details FROM alerts.alerts "
         "WHERE kind = 'missing_confirmation' AND day = :d ORDER BY node")


@pytest.fixture(scope="module")
def db(servers) -> str:
    return alerts_database(servers)


@pytest.fixture
async def bus(servers):
    nc = await nats.connect(servers.nats_url)
    yield Bus(nc)
    await nc.close()


def signed(action: str, node: str, day: date, hh: int, mm: int = 0) -> SignoffChanged:
    return SignoffChanged(action=action, entry=next(ENTRIES), node=node, day=day,  # type: ignore[arg-type]
                          actor=f"operator:值班员-{node}", at=local(day, hh, mm).astimezone(UTC),
                          confirmation_id=uuid.uuid4(), version=1)


async def test_a_node_that_has_not_confirmed_by_its_time_raises_an_alert_that_closes_once_it_does(
        servers, db, bus) -> None:
    day = BASE_DAY + timedelta(days=33)
    clock = FakeClock(local(day, 15, 0))
    async with replica(servers, db, clock) as r:
        await r.tick()  # the days before are checked now
        await bus.publish(signed("confirmed", TOWN, day, 15, 30))
        assert await wait_for(lambda: scalar(
            r.ctx, "SELECT confirmed FROM alerts.confirmations WHERE node = :n AND day = :d",
            n=TOWN, d=day))

        clock.set(local(day, 16, 1))  # the town's time (16:00) and the grace minute
        await r.tick()
        assert await rows(r.ctx, QUERY, d=day) == [], "checked before its time had passed"
        clock.set(local(day, 16, 1) + SEC)
        await r.tick()
        await r.tick()
        opened = {row.node: row for row in await rows(r.ctx, QUERY, d=day)}
        async with r.ctx.sessions() as session:
            reference = await Reference.load(session)
        towns = {u.node_on(day)[:9] for u in reference.units.values()
                 if u.active_on(day) and u.node_on(day) and len(u.node_on(day)) >= 9}
        assert set(opened) == towns - {TOWN} and OTHER_TOWN in opened  # not yet the county
        assert all(parent_of(n) == COUNTY for n in opened)
        other = opened[OTHER_TOWN]
        assert other.recipients == ["command_centre"]
        assert other.details["by"] == "16:00" and other.details["level"] == "town"

        # A late confirmation closes its alert; a stale "confirmed" after a reopening does not
        # count as confirmed.
        await bus.publish(signed("confirmed", OTHER_TOWN, day, 16, 20))

        async def closed():
            now = {row.node: row for row in await rows(r.ctx, QUERY, d=day)}
            return now[OTHER_TOWN] if now[OTHER_TOWN].status == "closed" else None
        done = await wait_for(closed)
        assert done.outcome == "confirmed"
        reopened, stale = signed("reopened", TOWN, day, 16, 30), signed("confirmed", TOWN, day, 15)
        await bus.publish(reopened)
        await bus.publish(stale.model_copy(update={"entry": reopened.entry - 1}))
        assert await wait_for(lambda: scalar(
            r.ctx, "SELECT entry = :e AND NOT confirmed FROM alerts.confirmations "
                   "WHERE node = :n AND day = :d", e=reopened.entry, n=TOWN, d=day))
        # Reopened after its time was checked: the town must confirm again, an alert says so,
        # and its new confirmation closes it.
        again = next(row for row in await rows(r.ctx, QUERY, d=day) if row.node == TOWN)
        assert again.status == "open" and again.details["reopened"]
        await bus.publish(signed("confirmed", TOWN, day, 16, 45))

        async def confirmed_again():
            row = next(x for x in await rows(r.ctx, QUERY, d=day) if x.node == TOWN)
            return row.status == "closed" and row.outcome == "confirmed"
        assert await wait_for(confirmed_again)

        clock.set(local(day, 17, 1) + SEC)  # the county's time
        await r.tick()
        assert COUNTY in {row.node for row in await rows(r.ctx, QUERY, d=day)}

        # Nobody acted: the town's alert escalates to the county at its time + 2 h.
        clock.set(local(day, 18, 0) + SEC)
        await r.tick()
        town = opened[sorted(towns - {TOWN, OTHER_TOWN})[0]].alert_id
        assert [(c, to) for c, _, _, to in await history(r.ctx, town)] == [
            ("opened", None), ("escalated", COUNTY)]
