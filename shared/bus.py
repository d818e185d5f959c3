"""Broker plumbing: a FastStream broker per service, its JetStream context, the streams declared."""

from faststream.nats import JStream, NatsBroker
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from shared.streams import ensure_streams

# Subscribers bind to streams that `ensure_streams` declares; FastStream must not redeclare them.
REPORTS = JStream(name="REPORTS", declare=False)
CASES = JStream(name="CASES", declare=False)
SUBMISSIONS = JStream(name="SUBMISSIONS", declare=False)


def _fetch_times_out_as_nats_timeout() -> None:
    """nats-py's fetch() may raise a bare asyncio.TimeoutError when its deadline runs out
    between two pull requests, while FastStream's batch loop only catches nats' own
    TimeoutError; the miss restarts the consumer task with a back-off and stalls delivery.
    Raise nats' subclass instead, which both sides understand."""
    from nats import errors
    from nats.js.client import JetStreamContext

    fetch = JetStreamContext.PullSubscription.fetch
    if getattr(fetch, "_rollcall_wrapped", False):
        return

    async def patched(self, *args, **kwargs):
        try:
            return await fetch(self, *args, **kwargs)
        except errors.TimeoutError:
            raise
        except TimeoutError as exc:
            raise errors.TimeoutError from exc

    patched._rollcall_wrapped = True
    JetStreamContext.PullSubscription.fetch = patched


def make_broker(url: str, service: str) -> NatsBroker:
    _fetch_times_out_as_nats_timeout()
    return NatsBroker(url, name=f"rollcall-{service}", max_reconnect_attempts=-1,
                      graceful_timeout=15.0)


async def connect(broker: NatsBroker, replicas: int = 1) -> JetStreamContext:
    """Connect, declare the streams, and return the JetStream context for direct publishing."""
    connection = await broker.connect()
    js = connection.jetstream()
    await ensure_streams(js, replicas)
    return js


async def connect_client(broker: NatsBroker, replicas: int = 1
                         ) -> tuple[NatsClient, JetStreamContext]:
    """As `connect`, with the core connection too (for publishing with a reply subject)."""
    connection = await broker.connect()
    js = connection.jetstream()
    await ensure_streams(js, replicas)
    return connection, js
