"""Broker plumbing: a FastStream broker per service, its connection, the streams declared."""

import logging
from urllib.parse import unquote, urlsplit

from faststream.nats import NatsBroker
from faststream.security import SASLPlaintext
from nats.aio.client import Client as NatsClient

from shared import natsfix
from shared.streams import ensure_streams_patiently


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


def make_broker(url: str, service: str) -> NatsBroker:
    natsfix.take_queued_messages_at_once()  # refuses to start on an untested nats-py
    # FastStream's per-message lines go to DEBUG on a logger that reaches the root handler (JSON
    # in a deployment); its warnings and errors keep their level.
    options = connection_options(url)
    security = (SASLPlaintext(options["user"], options["password"] or "")
                if options["user"] else None)
    return NatsBroker(options["servers"], security=security, name=f"rollcall-{service}",
                      max_reconnect_attempts=-1, graceful_timeout=15.0,
                      logger=logging.getLogger(f"rollcall.bus.{service}"),
                      log_level=logging.DEBUG)


async def connect(broker: NatsBroker, replicas: int = 1) -> NatsClient:
    """Connect, declare the streams, and return the connection (for the batch consumers,
    publishing with a reply subject, and its JetStream context)."""
    connection = await broker.connect()
    await ensure_streams_patiently(connection.jetstream(), replicas)
    return connection
