"""What every service does at start and at stop, in one order: the bus side of its lifespan, and
process-level tuning."""

import asyncio
import contextlib
import gc
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass

from fastapi import FastAPI
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bus import connect
from shared.consumer import BatchConsumer
from shared.contracts import RegistryChanged
from shared.db import make_engine, make_sessionmaker
from shared.http_auth import Authenticator
from shared.outbox import Outbox, OutboxRelay
from shared.registry.reference import Reference
from shared.settings import Settings

log = logging.getLogger(__name__)

# Collect the young generation every 50,000 allocations rather than 700: a batch of 10,000
# reports allocates about a million objects, most of them gone when the batch is done, and at
# the default rate they were collected again and again while still alive and promoted.
YOUNG_THRESHOLD = 50_000
BACKGROUND_PATIENCE_S = 10.0  # a background task asked to stop ends within this, or is cancelled


def freeze_long_lived() -> None:
    """Move what the process holds now (a province's registry reference is millions of objects)
    out of the garbage collector's reach, and collect the young generation less often.

    Full collections walked all of it again and again: measured at half of ingest's CPU time
    during a bulk load of a province (4.6 s of 8.3 s; with both changes, 1.2 s of 7.0 s, and
    alerts 6.7 s instead of 15). Called once the service has loaded what it keeps, and again
    after a reload: what was frozen before is handed back first, so a replaced reference is
    still collected. That full collection pauses the service once per reload: about 0.2 s with
    a province's reference, measured in ingest (the reload itself takes seconds)."""
    gc.set_threshold(YOUNG_THRESHOLD, 20, 100)
    gc.unfreeze()
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class Connected:
    """What a service that keeps the registry and an outbox builds first (`connected`)."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    nc: NatsClient
    reference: Reference
    relay: OutboxRelay
    authenticator: Authenticator


async def connected(app: FastAPI, broker: NatsBroker, settings: Settings, database_url: str,
                    outbox: type[Outbox], *, hide_parameters: bool = False) -> Connected:
    """The engine, the broker's connection (the streams declared), the registry reference, the
    outbox relay (`running` starts it) and the authenticator; the engine, the broker and the
    authenticator are kept in `app.state`. `hide_parameters`: a database error's message must
    not carry a statement's parameters into a log line where they may be personal data."""
    engine = make_engine(database_url)
    if hide_parameters:
        engine.sync_engine.hide_parameters = True
    sessions = make_sessionmaker(engine)
    nc = await connect(broker, settings.stream_replicas)
    async with sessions() as session:
        reference = await Reference.load(session)
    relay = OutboxRelay(sessions, nc, outbox)
    authenticator = Authenticator(sessions, settings.auth_cache_s)
    app.state.engine, app.state.broker = engine, broker
    app.state.authenticator = authenticator
    return Connected(engine, sessions, nc, reference, relay, authenticator)


@dataclass(frozen=True)
class Background:
    """A task a service runs beside its consumers. `stop` asks it to end (awaited if it is a
    coroutine function; the task then has BACKGROUND_PATIENCE_S); without one it is cancelled
    at stop."""

    name: str
    work: Callable[[], Coroutine]
    stop: Callable[[], object] | None = None


@contextlib.asynccontextmanager
async def running(app: FastAPI, broker: NatsBroker, engine: AsyncEngine, *,
                  consumers: Sequence[BatchConsumer] = (), relay: OutboxRelay | None = None,
                  background: Sequence[Background] = (),
                  registry_changed: Callable[[], Awaitable[None]] | None = None,
                  ) -> AsyncIterator[None]:
    """Start a connected service's bus side: the broker (with a subscription to registry
    changes when the service keeps the registry), the outbox relay, the batch consumers and the
    background tasks; then freeze what the service has loaded (`freeze_long_lived`). The
    consumers are kept in `app.state.consumers` (their lag is a metric).

    Stop in the reverse order: the consumers finish the batches in hand and hand back what they
    hold, the background tasks end, the relay publishes in a last round what those batches
    committed (events committed later wait in the outbox for the next start, or another
    replica), the broker closes the connection, the engine is disposed."""
    if registry_changed is not None:
        # A notification only: core NATS delivers it to every replica, no consumer to keep.
        # no_reply: the JetStream publish that carries it has a reply inbox meant for the stream.
        @broker.subscriber(RegistryChanged.subject, no_reply=True)
        async def on_registry_changed(event: RegistryChanged) -> None:
            await registry_changed()

    app.state.consumers = consumers
    await broker.start()
    if relay is not None:
        relay.start()
    for consumer in consumers:
        await consumer.start()
    tasks = {asyncio.create_task(b.work(), name=b.name): b for b in background}
    freeze_long_lived()
    try:
        yield
    finally:
        await asyncio.gather(*(consumer.stop() for consumer in consumers))
        await stop_background(tasks)
        if relay is not None:
            await relay.stop()
        await broker.stop()
        await engine.dispose()


async def stop_background(tasks: dict[asyncio.Task, Background]) -> None:
    """Ask those that can be asked to stop, give them BACKGROUND_PATIENCE_S, cancel the rest."""
    asked = set()
    for task, b in tasks.items():
        if b.stop is not None:
            if inspect.isawaitable(asked_to := b.stop()):
                await asked_to
            asked.add(task)
    if asked:
        await asyncio.wait(asked, timeout=BACKGROUND_PATIENCE_S)
    for task in tasks:
        task.cancel()
    if tasks:
        # Bounded: a task that does not end on cancel must not keep the process alive.
        _, stuck = await asyncio.wait(tasks, timeout=5)
        if stuck:
            log.warning("tasks still running at shutdown: %s",
                        ", ".join(t.get_name() for t in stuck))
