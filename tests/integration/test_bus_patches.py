"""The nats-py patches in shared/bus.py, on a real NATS server: a queued message is taken at
once and in order, and an empty subscription still times out."""

import asyncio
import time

import nats
import pytest
from nats import errors

from shared.bus import make_broker


@pytest.fixture
async def nc(servers):
    make_broker(servers.nats_url, "test")  # applies the patches
    client = await nats.connect(servers.nats_url)
    yield client
    await client.close()


async def test_queued_messages_come_at_once_in_order(nc) -> None:
    sub = await nc.subscribe("patch.test.queued")
    for i in range(500):
        await nc.publish("patch.test.queued", str(i).encode())
    await nc.flush()
    for _ in range(500):  # until the 500 are in the client's queue (5 s at most)
        if sub._pending_queue.qsize() >= 500:
            break
        await asyncio.sleep(0.01)
    start = time.perf_counter()
    got = [int((await sub.next_msg(timeout=0.001)).data) for _ in range(500)]
    assert got == list(range(500))
    assert sub._pending_size == 0 and sub._pending_queue.empty()
    assert time.perf_counter() - start < 1.0


async def test_an_empty_subscription_still_times_out(nc) -> None:
    sub = await nc.subscribe("patch.test.empty")
    with pytest.raises(errors.TimeoutError):
        await sub.next_msg(timeout=0.05)
    await nc.publish("patch.test.empty", b"late")
    assert (await sub.next_msg(timeout=2)).data == b"late"
