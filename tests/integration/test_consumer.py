"""The shared JetStream batch consumer (shared/consumer.py) on a real NATS server: acknowledged
after the handler returned, a malformed message terminated alone, a failed batch handed back
and delivered again, each group of a split batch settled on its own, batches in flight bounded,
and at stop the batch in hand finished while what it holds unprocessed is handed back at once."""

import asyncio
import logging
import time
import uuid

import nats
import pytest
from nats.js.api import StreamConfig
from pydantic import BaseModel

from shared.consumer import BatchConsumer
from shared.contracts import ReportAccepted, accepted_batch, reports_of


class Item(BaseModel):
    n: int


def decode(msg) -> Item:
    return Item.model_validate_json(msg.data)


@pytest.fixture
async def bus(servers):
    """A connection and a stream of its own (`t<hex>`, subjects `<name>.>`)."""
    nc = await nats.connect(servers.nats_url)
    js = nc.jetstream()
    name = f"T{uuid.uuid4().hex[:12]}"
    await js.add_stream(StreamConfig(name=name, subjects=[f"{name}.>"]))
    yield nc, name
    await js.delete_stream(name)
    await nc.close()


async def publish(nc, subject: str, bodies: list[bytes]) -> None:
    js = nc.jetstream()
    for body in bodies:
        await js.publish(subject, body)


def consumer(nc, stream: str, handle, **options) -> BatchConsumer:
    defaults = {"name": "test", "stream": stream, "durable": "test", "decode": decode,
                "batch": 50, "ack_wait": 30, "retry_delay_s": 0.2}
    return BatchConsumer(nc, handle=handle, **{**defaults, **options})


async def settled(nc, stream: str, durable: str = "test") -> bool:
    info = await nc.jetstream().consumer_info(stream, durable)
    return info.num_pending == 0 and info.num_ack_pending == 0


async def wait_for(check, within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < deadline, "not within the time"
        await asyncio.sleep(0.05)


async def test_a_malformed_message_is_terminated_alone_and_the_rest_acknowledged(
        bus, caplog) -> None:
    nc, stream = bus
    handled, malformed = [], []

    async def handle(items: list[Item]) -> None:
        handled.extend(item.n for item in items)

    bodies = [Item(n=i).model_dump_json().encode() for i in range(20)]
    await publish(nc, f"{stream}.x", [*bodies[:10], b'{"n": "not a number"}', *bodies[10:]])
    c = consumer(nc, stream, handle, on_malformed=malformed.append)
    with caplog.at_level(logging.ERROR, logger="shared.consumer"):
        await c.start()
        await wait_for(lambda: settled(nc, stream))
        await c.stop()
    assert sorted(handled) == list(range(20))
    assert [m.data for m in malformed] == [b'{"n": "not a number"}']
    assert f"malformed message on {stream}.x (stream {stream} seq 11)" in caplog.text
    info = await nc.jetstream().consumer_info(stream, "test")
    assert info.num_redelivered == 0


async def test_a_lingering_batch_goes_with_what_has_come_instead_of_waiting_to_fill(
        bus) -> None:
    """A batch of 50 waits up to `fetch_timeout_s` (here 2 s) for more messages; with
    `linger_s=0` the one message that came is handled at once."""
    nc, stream = bus
    for linger, within in ((None, (1.5, 10.0)), (0, (0.0, 0.5))):
        handed = asyncio.get_running_loop().create_future()

        async def handle(items: list[Item], handed=handed) -> None:
            if not handed.done():
                handed.set_result(time.monotonic())

        subject = f"{stream}.linger{linger}"
        c = consumer(nc, stream, handle, durable=f"linger{linger}", subjects=[subject],
                     fetch_timeout_s=2.0, linger_s=linger)
        await c.start()
        await asyncio.sleep(0.3)  # the consumer is waiting, nothing for it yet
        sent = time.monotonic()
        await publish(nc, subject, [Item(n=1).model_dump_json().encode()])
        took = await asyncio.wait_for(handed, 10) - sent
        await c.stop()
        assert within[0] <= took <= within[1], (linger, took)


async def test_a_failed_batch_is_handed_back_and_comes_again_after_the_delay(bus) -> None:
    nc, stream = bus
    attempts: list[tuple[float, list[int]]] = []

    async def handle(items: list[Item]) -> None:
        attempts.append((time.monotonic(), [item.n for item in items]))
        if len(attempts) == 1:
            raise ConnectionError("the database is restarting")

    await publish(nc, f"{stream}.x", [Item(n=i).model_dump_json().encode() for i in range(5)])
    c = consumer(nc, stream, handle)
    await c.start()
    await wait_for(lambda: settled(nc, stream))
    await c.stop()
    assert len(attempts) == 2 and attempts[0][1] == attempts[1][1] == list(range(5))
    assert 0.2 <= attempts[1][0] - attempts[0][0] < 5  # the delay, far below ack_wait (30 s)


async def test_each_group_of_a_split_batch_is_settled_on_its_own(bus) -> None:
    nc, stream = bus
    calls: list[list[int]] = []

    async def handle(items: list[Item]) -> None:
        calls.append([item.n for item in items])
        if items[0].n < 100 and sum(1 for c in calls if c[0] < 100) == 1:
            raise ConnectionError("group a fails once")

    await publish(nc, f"{stream}.a", [Item(n=i).model_dump_json().encode() for i in range(3)])
    await publish(nc, f"{stream}.b", [Item(n=100 + i).model_dump_json().encode()
                                      for i in range(3)])
    c = consumer(nc, stream, handle, split=lambda msg: msg.subject)
    await c.start()
    await wait_for(lambda: settled(nc, stream))
    await c.stop()
    assert calls.count([100, 101, 102]) == 1  # group b was acknowledged the first time
    assert calls.count([0, 1, 2]) == 2  # group a was handed back and came again


async def test_batches_in_flight_are_bounded_by_the_concurrency(bus) -> None:
    nc, stream = bus
    running = peak = 0
    handled: list[int] = []

    async def handle(items: list[Item]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.1)
        handled.extend(item.n for item in items)
        running -= 1

    await publish(nc, f"{stream}.x", [Item(n=i).model_dump_json().encode() for i in range(50)])
    c = consumer(nc, stream, handle, batch=5, concurrency=2)
    await c.start()
    await wait_for(lambda: settled(nc, stream))
    await c.stop()
    assert peak == 2 and sorted(handled) == list(range(50))


async def test_at_stop_the_batch_in_hand_finishes_and_is_acknowledged(bus) -> None:
    nc, stream = bus
    started, handled = asyncio.Event(), []

    async def handle(items: list[Item]) -> None:
        started.set()
        await asyncio.sleep(0.3)
        handled.extend(item.n for item in items)

    await publish(nc, f"{stream}.x", [Item(n=i).model_dump_json().encode() for i in range(5)])
    c = consumer(nc, stream, handle)
    await c.start()
    await asyncio.wait_for(started.wait(), 5)
    await c.stop()
    assert handled == list(range(5))
    assert await settled(nc, stream)


async def stuck_then_taken_over(nc, stream: str, count: int, **first_options
                                ) -> tuple[list[int], float]:
    """A first consumer whose handler hangs is stopped; what a second one on the same durable
    then handles, and how long it took to have everything."""
    stuck = asyncio.Event()

    async def hang(items: list[Item]) -> None:
        stuck.set()
        await asyncio.sleep(3600)

    await publish(nc, f"{stream}.x", [Item(n=i).model_dump_json().encode()
                                      for i in range(count)])
    first = consumer(nc, stream, hang, stop_patience_s=0.2, **first_options)
    await first.start()
    await asyncio.wait_for(stuck.wait(), 5)
    await first.stop()

    handled: list[int] = []

    async def handle(items: list[Item]) -> None:
        handled.extend(item.n for item in items)

    started = time.monotonic()
    second = consumer(nc, stream, handle, batch=count)
    await second.start()
    await wait_for(lambda: settled(nc, stream), within_s=10)
    await second.stop()
    return sorted(handled), time.monotonic() - started


async def test_what_a_stopping_consumer_holds_is_handed_back_at_once(bus) -> None:
    """A batch stuck in its handler past the stop's patience is handed back (NAK): another
    replica gets it at once, not after ack_wait (30 s here)."""
    nc, stream = bus
    handled, seconds = await stuck_then_taken_over(nc, stream, 5)
    assert handled == list(range(5)) and seconds < 5


async def test_messages_delivered_after_a_fetch_ended_are_handed_back_at_stop(bus) -> None:
    """A fetch cut short by its deadline leaves the rest of its pull request's messages in the
    subscription's queue; at stop they too are handed back, not left for ack_wait."""
    nc, stream = bus
    handled, seconds = await stuck_then_taken_over(nc, stream, 3000, batch=3000,
                                                   fetch_timeout_s=0.002)
    assert handled == list(range(3000)) and seconds < 5


async def test_an_accepted_report_of_an_unknown_version_is_terminated_and_logged(
        bus, caplog) -> None:
    """Every consumer of `report.accepted.>` decodes with contracts.reports_of: v1 and v2 are
    applied report by report; a version it does not know is refused loudly (terminated and
    logged), never acknowledged as if handled."""
    nc, stream = bus
    handled, malformed = [], []

    def report(unit: str) -> bytes:
        return ReportAccepted(
            report_id=uuid.uuid4(), unit=unit, node="430621108001", unit_type="village_clinic",
            sector="health", day="2026-11-30", revision=1, values={"fever": 1}, zero=False,
            late=False, submitted_at="2026-11-30T08:00:00+08:00",
            reporter="王").model_dump_json().encode()

    async def handle(messages: list[list[ReportAccepted]]) -> None:
        handled.extend(r.unit for reports in messages for r in reports)

    future = b'{"version": 3, "reports": [' + report("U-future") + b"]}"
    await publish(nc, f"{stream}.x", [report("U-v1"), accepted_batch([report("U-a"),
                                                                      report("U-b")]), future])
    c = consumer(nc, stream, handle, decode=reports_of, on_malformed=malformed.append)
    with caplog.at_level(logging.ERROR, logger="shared.consumer"):
        await c.start()
        await wait_for(lambda: settled(nc, stream))
        await c.stop()
    assert handled == ["U-v1", "U-a", "U-b"]
    assert [m.data for m in malformed] == [future]
    assert "version: 3 is not a known report.accepted version" in caplog.text
    info = await nc.jetstream().consumer_info(stream, "test")
    assert info.num_redelivered == 0
