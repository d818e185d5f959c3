"""Broker plumbing: a FastStream broker per service, its JetStream context, the streams declared."""

import asyncio
import logging
import time
from urllib.parse import unquote, urlsplit

from faststream.nats import JStream, NatsBroker
from faststream.security import SASLPlaintext
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from shared.streams import ensure_streams_patiently

log = logging.getLogger(__name__)

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


def _next_msg_takes_a_queued_message_at_once() -> None:
    """nats-py's Subscription.next_msg() starts a task with a timer (and names it with a fresh
    uuid4) for every message, even one already waiting in the queue; fetch() calls it once per
    message. At a thousand messages a batch that is tens of microseconds per message in every
    consumer, and under load it made fetch() hit its deadline with most of a batch still
    queued. A message already queued is taken at once, with the same bookkeeping."""
    from nats.aio.subscription import Subscription

    next_msg = Subscription.next_msg
    if getattr(next_msg, "_rollcall_wrapped", False):
        return

    async def patched(self, timeout: float | None = 1.0):  # noqa: ASYNC109 (its signature)
        queue = self._pending_queue
        if not queue.empty() and not self._cb and not self._conn.is_closed:
            msg = queue.get_nowait()
            self._pending_size -= len(msg.data)
            queue.task_done()
            return msg
        return await next_msg(self, timeout)

    patched._rollcall_wrapped = True
    Subscription.next_msg = patched


def _nak_what_a_stopping_consumer_fetched() -> None:
    """A graceful stop hands back what it will not process. FastStream's batch pull loop drops
    a batch it fetched while stopping, and a fetch cut short leaves messages in the
    subscription's queue: neither is processed nor acknowledged, and the server would redeliver
    them only after ack_wait (a minute for aggregate). So before a pull subscription closes, wait
    for its fetch to end (the pull request expires within the subscriber's short timeout), then
    NAK every message fetched and not acknowledged: another replica, or this one restarted, gets
    them at once."""
    from contextlib import suppress

    from nats.js.client import JetStreamContext

    cls = JetStreamContext.PullSubscription
    if getattr(cls.unsubscribe, "_rollcall_wrapped", False):
        return
    fetch, unsubscribe = cls.fetch, cls.unsubscribe

    async def tracking_fetch(self, *args, **kwargs):
        idle = self._rollcall_idle = getattr(self, "_rollcall_idle", None) or asyncio.Event()
        idle.clear()
        timeout = kwargs.get("timeout", args[1] if len(args) > 1 else 5)
        self._rollcall_expires = time.monotonic() + min(timeout or 0, 5)
        try:
            messages = await fetch(self, *args, **kwargs)
        finally:
            idle.set()
        kept = [m for m in getattr(self, "_rollcall_fetched", ()) if not m.is_acked]
        self._rollcall_fetched = kept + list(messages)
        return messages

    async def naking_unsubscribe(self) -> None:
        if (idle := getattr(self, "_rollcall_idle", None)) is not None:
            with suppress(TimeoutError):
                await asyncio.wait_for(idle.wait(), 5)
        # The server may still deliver to the last pull request until it expires; what it
        # delivers lands in the queue drained below.
        await asyncio.sleep(max(0.0, getattr(self, "_rollcall_expires", 0) - time.monotonic())
                            + 0.1)
        left = [m for m in getattr(self, "_rollcall_fetched", ()) if not m.is_acked]
        queue = getattr(self._sub, "_pending_queue", None)
        while queue is not None and not queue.empty():
            message = queue.get_nowait()
            if message.reply and not JetStreamContext.is_status_msg(message):
                left.append(message)
        if left:
            with suppress(Exception):  # the connection may be gone: then ack_wait applies
                for message in left:
                    await message.nak()
                await self._sub._conn.flush(timeout=2)
            log.info("stopping consumer handed back messages it had not processed",
                     extra={"messages": len(left)})
        self._rollcall_fetched = []
        await unsubscribe(self)

    naking_unsubscribe._rollcall_wrapped = True
    cls.fetch, cls.unsubscribe = tracking_fetch, naking_unsubscribe


def connection_options(url: str) -> dict:
    """Servers and credentials from a NATS URL: `nats://user:password@host:4222`, or a cluster's
    seeds separated by commas (any of them will do). The credentials are taken out of the URLs
    and given on their own: the other servers a cluster announces come without them, and a
    client that reconnects to one of those must still authenticate."""
    parts = [urlsplit(part.strip()) for part in url.split(",") if part.strip()]
    user = next((unquote(p.username) for p in parts if p.username), None)
    password = next((unquote(p.password) for p in parts if p.password), None)
    servers = [p._replace(netloc=p.netloc.rpartition("@")[2]).geturl() for p in parts]
    return {"servers": servers, "user": user, "password": password}


def servers(url: str) -> list[str]:
    return connection_options(url)["servers"]


def apply_client_fixes() -> None:
    """The nats-py patches above, once per process (each is idempotent)."""
    _fetch_times_out_as_nats_timeout()
    _next_msg_takes_a_queued_message_at_once()
    _nak_what_a_stopping_consumer_fetched()


def make_broker(url: str, service: str) -> NatsBroker:
    apply_client_fixes()
    # FastStream's per-message lines go to DEBUG on a logger that reaches the root handler (JSON
    # in a deployment); its warnings and errors keep their level.
    options = connection_options(url)
    security = (SASLPlaintext(options["user"], options["password"] or "")
                if options["user"] else None)
    return NatsBroker(options["servers"], security=security, name=f"rollcall-{service}",
                      max_reconnect_attempts=-1, graceful_timeout=15.0,
                      logger=logging.getLogger(f"rollcall.bus.{service}"),
                      log_level=logging.DEBUG)


async def connect(broker: NatsBroker, replicas: int = 1) -> JetStreamContext:
    """Connect, declare the streams, and return the JetStream context for direct publishing."""
    connection = await broker.connect()
    js = connection.jetstream()
    await ensure_streams_patiently(js, replicas)
    return js


async def connect_client(broker: NatsBroker, replicas: int = 1
                         ) -> tuple[NatsClient, JetStreamContext]:
    """As `connect`, with the core connection too (for publishing with a reply subject)."""
    connection = await broker.connect()
    js = connection.jetstream()
    await ensure_streams_patiently(js, replicas)
    return connection, js
