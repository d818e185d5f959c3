"""shared/natsfix.py, the one change to nats-py's internals, on a real NATS server: a queued
message is taken at once and in order, an empty subscription still times out, and a nats-py
version it was not tested with is refused with a message that says what to do."""

import asyncio
import time

import nats
import pytest
from nats import errors
from nats.aio.subscription import Subscription

from shared import natsfix
from shared.bus import make_broker


@pytest.fixture
async def nc(servers):
    make_broker(servers.nats_url, "test")  # installs the faster next_msg
    client = await nats.connect(servers.nats_url)
    yield client
    await client.close()


async def test_queued_messages_come_at_once_in_order(nc) -> None:
    assert natsfix.installed()
    sub = await nc.subscribe("patch.test.queued")
    for i in range(500):
        await nc.publish("patch.test.queued", str(i).encode())
    await nc.flush()
    for _ in range(500):  # until the 500 are in the client's queue (5 s at most)
        if sub.pending_msgs >= 500:
            break
        await asyncio.sleep(0.01)
    start = time.perf_counter()
    got = [int((await sub.next_msg(timeout=0.001)).data) for _ in range(500)]
    assert got == list(range(500))
    assert sub.pending_bytes == 0 and sub.pending_msgs == 0
    assert time.perf_counter() - start < 1.0


async def test_an_empty_subscription_still_times_out(nc) -> None:
    sub = await nc.subscribe("patch.test.empty")
    with pytest.raises(errors.TimeoutError):
        await sub.next_msg(timeout=0.05)
    await nc.publish("patch.test.empty", b"late")
    assert (await sub.next_msg(timeout=2)).data == b"late"


def test_an_untested_nats_py_is_refused_with_what_to_do() -> None:
    with pytest.raises(natsfix.UntestedNatsPy) as refused:
        natsfix.check_version("9.9.9")
    message = str(refused.value)
    assert "nats-py 9.9.9 is installed" in message
    assert f"nats-py=={natsfix.TESTED_NATS_PY[-1]}" in message and "TESTED_NATS_PY" in message


def test_the_installed_nats_py_is_a_tested_one() -> None:
    assert natsfix.check_version() in natsfix.TESTED_NATS_PY


def test_removed_it_is_nats_py_as_shipped_again() -> None:
    natsfix.take_queued_messages_at_once()
    shipped = Subscription.next_msg._shipped
    natsfix.remove()
    try:
        assert Subscription.next_msg is shipped and not natsfix.installed()
    finally:
        natsfix.take_queued_messages_at_once()
    natsfix.take_queued_messages_at_once()  # idempotent: wrapped once
    assert Subscription.next_msg._shipped is shipped
