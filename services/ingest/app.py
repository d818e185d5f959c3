"""Ingest's composition root: settings → engine → broker → relay → routes.

Nothing connects at import."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError

from services.ingest import routes
from services.ingest.relay import OutboxRelay
from services.ingest.service import IngestContext
from shared.bus import connect, make_broker
from shared.catalogue import default_catalogue
from shared.clock import utc_now
from shared.contracts import RegistryChanged
from shared.db import make_engine, make_sessionmaker
from shared.health import health_router
from shared.observability import metrics_router
from shared.registry.reference import Reference
from shared.settings import Settings


def create_app(settings: Settings | None = None,
               clock: Callable[[], datetime] = utc_now) -> FastAPI:
    settings = settings or Settings()
    nats_url, database_url = settings.require_servers()
    broker = make_broker(nats_url, "ingest")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(database_url)
        sessions = make_sessionmaker(engine)
        js = await connect(broker, settings.stream_replicas)
        async with sessions() as session:
            reference = await Reference.load(session)
        relay = OutboxRelay(sessions, js)
        ctx = IngestContext(settings, clock, sessions, default_catalogue(), reference, relay)
        app.state.ingest, app.state.engine, app.state.broker = ctx, engine, broker

        # A notification only: core NATS delivers it to every replica, no consumer to keep.
        @broker.subscriber(RegistryChanged.subject)
        async def on_registry_changed(event: RegistryChanged) -> None:
            await ctx.reload_reference()

        await broker.start()
        relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
        try:
            yield
        finally:
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task
            await broker.stop()
            await engine.dispose()

    app = FastAPI(title="Rollcall ingest", version="0.1.0", lifespan=lifespan,
                  description="The door for daily reports, zero reports and corrections.")
    app.include_router(routes.router)
    app.include_router(health_router())
    app.include_router(metrics_router())
    app.add_exception_handler(routes.Refused, routes.on_refused)
    app.add_exception_handler(RequestValidationError, routes.on_invalid_request)
    return app
