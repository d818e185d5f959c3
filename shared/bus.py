"""Broker plumbing: a FastStream broker per service, its JetStream context, the streams declared."""

from faststream.nats import JStream, NatsBroker
from nats.js import JetStreamContext

from shared.streams import ensure_streams

# Subscribers bind to streams that `ensure_streams` declares; FastStream must not redeclare them.
REPORTS = JStream(name="REPORTS", declare=False)
CASES = JStream(name="CASES", declare=False)


def make_broker(url: str, service: str) -> NatsBroker:
    return NatsBroker(url, name=f"rollcall-{service}", max_reconnect_attempts=-1,
                      graceful_timeout=15.0)


async def connect(broker: NatsBroker, replicas: int = 1) -> JetStreamContext:
    """Connect, declare the streams, and return the JetStream context for direct publishing."""
    connection = await broker.connect()
    js = connection.jetstream()
    await ensure_streams(js, replicas)
    return js
