"""Coalescing RollupUpdated: a burst makes about one notice per node-day and interval."""

import asyncio
from datetime import UTC, date, datetime

from services.aggregate.live import Announcer, Coalescer
from services.aggregate.service import durable_name, filters
from shared.contracts import RollupUpdated

DAY = date(2026, 11, 23)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_first_touch_is_due_at_once_then_at_most_once_per_interval() -> None:
    clock = FakeClock()
    c = Coalescer(1.0, clock)
    c.touch([("430621", DAY), ("43", DAY)])
    assert sorted(c.due()) == [("43", DAY), ("430621", DAY)]
    for _ in range(50):  # a burst within the same second
        clock.now += 0.01
        c.touch([("430621", DAY)])
        assert c.due() == []
    assert 0 < c.wait() <= 0.51
    clock.now = 101.0
    assert c.due() == [("430621", DAY)]
    assert c.wait() is None and c.due() == []


def test_node_days_are_coalesced_separately() -> None:
    clock = FakeClock()
    c = Coalescer(1.0, clock)
    c.touch([("430621", DAY)])
    c.due()
    c.touch([("430621", DAY), ("430621", date(2026, 11, 22))])
    assert c.due() == [("430621", date(2026, 11, 22))]


async def test_the_announcer_publishes_what_is_due() -> None:
    sent: list[tuple[str, bytes]] = []

    async def publish(subject: str, data: bytes) -> None:
        sent.append((subject, data))

    announcer = Announcer(publish, lambda: datetime(2026, 11, 23, 8, 0, 0, 123, tzinfo=UTC), 0.2)
    task = asyncio.create_task(announcer.run())
    for _ in range(20):
        announcer.touched([("430621108", DAY)])
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.4)
    task.cancel()
    assert 2 <= len(sent) <= 4  # the first at once, then about one per 0.2 s of the burst
    subject, data = sent[0]
    event = RollupUpdated.model_validate_json(data)
    assert subject == "rollup.updated.430621108" == event.subject
    assert event.updated_at.microsecond == 0
    # Written out by hand, the same as the model; without sectors (every sector's).
    assert data.decode() == event.model_dump_json(exclude_none=True)


async def test_a_hint_names_the_sectors_of_the_reports_behind_it() -> None:
    sent: list[bytes] = []

    async def publish(subject: str, data: bytes) -> None:
        sent.append(data)

    announcer = Announcer(publish, lambda: datetime(2026, 11, 23, 8, 0, tzinfo=UTC), 0)
    town, village = ("430621108", DAY), ("430621108001", DAY)
    announcer.touched([town, village], {town: {"health"}, village: {"health"}})
    announcer.touched([town], {town: {"education"}})
    await announcer.flush()
    events = {e.node: e for e in map(RollupUpdated.model_validate_json, sent)}
    assert events["430621108"].sectors == ["education", "health"]
    assert events["430621108001"].sectors == ["health"]
    sent.clear()
    announcer.touched([town], {town: {"health"}})
    announcer.touched([town])  # a cutoff passing: every sector's figures
    await announcer.flush()
    assert RollupUpdated.model_validate_json(sent[0]).sectors is None


def test_durable_names_follow_the_filter() -> None:
    assert durable_name("report.accepted.>") == "aggregate"
    assert durable_name("report.accepted.430621.>") == "aggregate-430621"
    assert filters("report.accepted.430621.>, report.accepted.430622.>") == [
        "report.accepted.430621.>", "report.accepted.430622.>"]
    assert durable_name("report.accepted.430621.>,report.accepted.430622.>") == (
        "aggregate-430621-430622")


async def test_the_announcer_stops_on_cancel_whenever_the_cancel_lands() -> None:
    """Shutdown cancels the announcer right after the last batch touched a node-day. On Python
    3.11 `asyncio.wait_for` swallowed a cancellation that met that wake-up, the loop went on,
    and `rollcall serve aggregate` stayed in lifespan shutdown for good."""
    async def publish(subject: str, data: bytes) -> None:
        pass

    for ticks in range(8):  # every ordering of the wake-up and the cancel around it
        announcer = Announcer(publish, lambda: datetime.now(UTC), interval=10)
        task = asyncio.create_task(announcer.run())
        announcer.touched([("430621", DAY)])
        await asyncio.sleep(0.02)  # announced at once
        announcer.touched([("430621", DAY)])
        await asyncio.sleep(0.02)  # pending: the loop waits out the interval
        announcer.touched([("430622", DAY)])
        for _ in range(ticks):
            await asyncio.sleep(0)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=2)
        assert done, f"still running after a cancel {ticks} ticks after the wake-up"
