"""Ingest's composition root: settings → engine → broker → relay → authenticator → routes and
the bus consumer of submissions.

Nothing connects at import."""

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from fastapi import FastAPI

from services.ingest import handlers, routes
from services.ingest.models import OutboxRow
from services.ingest.service import IngestContext
from shared import unavailable
from shared.bus import connect, make_broker
from shared.catalogue import default_catalogue
from shared.clock import utc_now
from shared.db import make_engine, make_sessionmaker
from shared.health import health_router
from shared.http_auth import Authenticator
from shared.http_problems import install_problems
from shared.observability import metrics_router
from shared.outbox import OutboxRelay
from shared.registry.reference import Reference
from shared.runtime import running
from shared.settings import Settings


def create_app(settings: Settings | None = None,
               clock: Callable[[], datetime] = utc_now) -> FastAPI:
    settings = settings or Settings()
    nats_url, database_url = settings.require_servers()
    broker = make_broker(nats_url, "ingest")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(database_url, timeout_s=settings.ingest_db_timeout_s)
        sessions = make_sessionmaker(engine)
        nc = await connect(broker, settings.stream_replicas)
        async with sessions() as session:
            reference = await Reference.load(session)
        relay = OutboxRelay(sessions, nc, OutboxRow, batch=settings.relay_batch,
                            paused=settings.relay_paused,
                            crash_after_publish=settings.relay_crash_after_publish)
        authenticator = Authenticator(sessions, settings.auth_cache_s)
        ctx = IngestContext(settings, clock, sessions, default_catalogue(), reference, relay,
                            authenticator)
        app.state.ingest, app.state.engine, app.state.broker = ctx, engine, broker
        app.state.authenticator = authenticator
        async with running(app, broker, engine, consumers=handlers.consumers(nc, ctx), relay=relay,
                           registry_changed=ctx.reload_reference):
            yield

    app = FastAPI(title="Rollcall ingest", version="0.1.0", lifespan=lifespan,
                  description="The door for daily reports, zero reports (零报告), corrections "
                              "and fever cases. Every call needs `Authorization: Bearer <token>`"
                              " (a unit's, or an operator's scoped to a node).")
    app.include_router(routes.router)
    app.include_router(routes.cases)
    app.include_router(routes.dhis2_router)
    app.include_router(health_router())
    app.include_router(metrics_router())
    # Refusals in the project's shape, and in the schema. A refused submission is kept by the
    # use case itself: the routes hand it every body as it came.
    install_problems(app)
    unavailable.install(app)  # a database that is down or restarting: 503, not 500
    return app
