"""Aggregate's composition root: settings → engine → broker → consumer → routes."""

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from fastapi import FastAPI

from services.aggregate import handlers, routes
from services.aggregate.service import AggregateContext
from shared.bus import connect, make_broker
from shared.catalogue import default_catalogue
from shared.clock import utc_now
from shared.db import make_engine, make_sessionmaker
from shared.health import health_router
from shared.observability import metrics_router
from shared.settings import Settings


def create_app(settings: Settings | None = None,
               clock: Callable[[], datetime] = utc_now) -> FastAPI:
    settings = settings or Settings()
    nats_url, database_url = settings.require_servers()
    broker = make_broker(nats_url, "aggregate")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(database_url)
        ctx = AggregateContext(settings, clock, make_sessionmaker(engine), default_catalogue())
        app.state.aggregate, app.state.engine, app.state.broker = ctx, engine, broker
        await connect(broker, settings.stream_replicas)
        handlers.subscribe(broker, ctx)
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()  # drains in-flight batches before closing
            await engine.dispose()

    app = FastAPI(title="Rollcall aggregate", version="0.1.0", lifespan=lifespan,
                  description="Live rollups, completeness and timeliness at every level.")
    app.include_router(routes.router)
    app.include_router(health_router())
    app.include_router(metrics_router())
    return app
