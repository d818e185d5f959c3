"""The alerts service's side of the countdowns of people under control, on real NATS and
PostgreSQL with an injected clock: a village's missing sign-offs of a day open one alert
listing each person by pseudonym; it closes once every one is recorded; a countdown settled
before its deadline never opens one; a replayed or older announcement changes nothing."""

import uuid
from datetime import UTC, timedelta

import nats
import pytest

from shared.contracts import CountdownDue, CountdownSettled
from tests.integration.alerts_harness import (
    BASE_DAY,
    FakeClock,
    alerts_database,
    local,
    replica,
    rows,
    wait_for,
)

VILLAGE = "430694100001"  # no other test's
DAY = BASE_DAY + timedelta(days=3)


@pytest.fixture(scope="module")
def database(servers):
    return alerts_database(servers)


def due(person: str, kind: str = "team_signoff_missing", seq: int = 1, day=DAY,
        **over) -> CountdownDue:
    short = {"team_signoff_missing": "signoff", "test_overdue": "test"}[kind]
    key = f"{short}:{person}:{day.isoformat()}"
    group = f"signoff:{VILLAGE}:{day.isoformat()}" if short == "signoff" else key
    return CountdownDue(key=key, kind=kind, group=group, node=VILLAGE, pseudonym=f"GK-{person[:8]}",
                        category="close_contact", day=day, seq=seq,
                        at=local(day, 8).astimezone(UTC),
                        due_at=local(day + timedelta(days=1), 0).astimezone(UTC), **over)


def settled(event: CountdownDue, seq: int, outcome: str = "done") -> CountdownSettled:
    return CountdownSettled(**event.model_dump(exclude={"change", "due_at", "details", "seq"}),
                            seq=seq, outcome=outcome)


async def publish(nc, *events) -> None:
    js = nc.jetstream()
    for e in events:
        await js.publish(e.subject, e.model_dump_json().encode(),
                         headers={"Nats-Msg-Id": e.msg_id})


async def state(ctx, key: str) -> str | None:
    found = await rows(ctx, "SELECT state FROM alerts.countdowns WHERE key = :k", k=key)
    return found[0].state if found else None


async def test_countdowns_open_one_alert_per_group_and_close_it_when_all_are_met(
        servers, database):
    clock = FakeClock(local(DAY, 9))
    a, b, c, d = (str(uuid.uuid4()) for _ in range(4))
    nc = await nats.connect(servers.nats_url)
    try:
        async with replica(servers, database, clock) as alerts:
            first_a, first_b = due(a), due(b)
            early = due(c, kind="test_overdue")
            await publish(nc, first_a, first_b, early, settled(early, 2))
            assert await wait_for(lambda: state(alerts.ctx, early.key))
            assert await wait_for(lambda: state(alerts.ctx, first_b.key))
            # Before midnight nothing opens; after it, one alert for the village's day.
            clock.set(local(DAY + timedelta(days=1), 0) - timedelta(microseconds=1))
            await alerts.tick()
            assert not await rows(alerts.ctx, "SELECT 1 FROM alerts.alerts WHERE node = :v",
                                  v=VILLAGE)
            clock.set(local(DAY + timedelta(days=1), 0, 1))
            await alerts.tick()
            [opened] = await rows(alerts.ctx, "SELECT key, kind, status, details FROM "
                                              "alerts.alerts WHERE node = :v", v=VILLAGE)
            assert opened.key == first_a.group and opened.kind == "team_signoff_missing"
            assert sorted(p["pseudonym"] for p in opened.details["people"]) == sorted(
                [first_a.pseudonym, first_b.pseudonym])
            assert await state(alerts.ctx, early.key) == "done"  # settled in time: no alert

            # A replay of the first announcement, and a late settlement of one: still open.
            await publish(nc, first_a, settled(first_a, 2))
            assert await wait_for(lambda: _is(alerts.ctx, first_a.key, "done"))
            # Out of order: the settlement (seq 2) before its announcement (seq 1), which then
            # changes nothing: no alert opens for it.
            late_d = due(d, kind="test_overdue")
            await publish(nc, settled(late_d, 2), late_d)
            assert await wait_for(lambda: _is(alerts.ctx, late_d.key, "done"))
            await alerts.tick()
            assert not await rows(alerts.ctx, "SELECT 1 FROM alerts.alerts WHERE key = :k",
                                  k=late_d.key)
            [still] = await rows(alerts.ctx, "SELECT status FROM alerts.alerts WHERE key = :k",
                                 k=first_a.group)
            assert still.status == "open"
            await publish(nc, settled(first_b, 2))
            assert await wait_for(lambda: _closed(alerts.ctx, first_a.group))
            assert await state(alerts.ctx, first_a.key) == "done"
    finally:
        await nc.close()


async def _is(ctx, key: str, want: str) -> bool:
    return await state(ctx, key) == want


async def _closed(ctx, key: str) -> bool:
    found = await rows(ctx, "SELECT status, outcome FROM alerts.alerts WHERE key = :k", k=key)
    return bool(found) and (found[0].status, found[0].outcome) == ("closed", "done")
