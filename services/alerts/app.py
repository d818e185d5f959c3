"""The alerts service's composition root: settings → engine → broker → consumers → routes."""

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from fastapi import FastAPI
from sqlalchemy import func, select, text

from services.alerts import handlers
from services.alerts.service import AlertsContext
from shared.bus import connect, make_broker
from shared.clock import utc_now
from shared.db import make_engine, make_sessionmaker
from shared.health import health_router
from shared.observability import metrics_router
from shared.settings import Settings


def create_app(settings: Settings | None = None,
               clock: Callable[[], datetime] = utc_now) -> FastAPI:
    settings = settings or Settings()
    nats_url, database_url = settings.require_servers()
    broker = make_broker(nats_url, "alerts")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(database_url)
        ctx = AlertsContext(settings, clock, make_sessionmaker(engine))
        app.state.alerts, app.state.engine, app.state.broker = ctx, engine, broker
        await connect(broker, settings.stream_replicas)
        handlers.subscribe(broker, ctx)
        await broker.start()
        try:
            yield
        finally:
            await broker.stop()
            await engine.dispose()

    app = FastAPI(title="Rollcall alerts", version="0.1.0", lifespan=lifespan,
                  description="Fever-case clocks, escalation, outbreaks and missing reports.")
    app.include_router(health_router())
    app.include_router(metrics_router())

    @app.get("/v1/status", tags=["alerts"])
    async def status() -> dict[str, int]:
        """How many accepted-report events this service has taken in."""
        async with app.state.alerts.sessions() as session:
            seen = await session.scalar(
                select(func.count()).select_from(text("alerts.applied_events")))
        return {"events_applied": seen or 0}

    return app
