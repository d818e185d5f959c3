"""Aggregate's composition root: settings → engine → broker → consumer → announcer → routes."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from fastapi import FastAPI

from services.aggregate import handlers, routes
from services.aggregate.live import Announcer
from services.aggregate.service import AggregateContext, watch_cutoffs
from shared import unavailable
from shared.bus import connect, make_broker
from shared.catalogue import default_catalogue
from shared.clock import utc_now
from shared.contracts import Event
from shared.db import make_engine, make_sessionmaker
from shared.health import health_router
from shared.http_auth import Authenticator
from shared.http_problems import install_problems
from shared.observability import metrics_router
from shared.runtime import Background, running
from shared.settings import Settings

log = logging.getLogger(__name__)
TODAY_CHECK_S = 60.0


async def _keep_today_built(ctx: AggregateContext) -> None:
    """Today's expected figures exist before its first report (and after midnight)."""
    while True:
        try:
            await ctx.ensure_today()
        except Exception:
            log.exception("could not build today's expected figures; retrying")
        await asyncio.sleep(TODAY_CHECK_S)


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
        app.state.authenticator = Authenticator(ctx.sessions, settings.auth_cache_s)
        nc = await connect(broker, settings.stream_replicas)

        async def publish(subject: str, data: bytes) -> None:
            await nc.publish(subject, data)

        js = nc.jetstream()

        async def publish_event(event: Event) -> None:
            await js.publish(event.subject, event.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": event.msg_id})

        ctx.publish = publish_event

        ctx.announcer = Announcer(publish, clock, settings.rollup_updated_interval)
        # Registry changes: recounting is idempotent, so every replica may do it.
        async with running(app, broker, engine, consumers=handlers.consumers(nc, ctx),
                           background=[Background("rollup-announcer", ctx.announcer.run),
                                       Background("today-built", lambda: _keep_today_built(ctx)),
                                       Background("cutoffs-passing", lambda: watch_cutoffs(ctx))],
                           registry_changed=ctx.registry_changed):
            yield

    app = FastAPI(title="Rollcall aggregate", version="0.1.0", lifespan=lifespan,
                  description="Live rollups, completeness and timeliness at every level.")
    app.include_router(routes.router)
    app.add_exception_handler(routes.BadQuery, routes.on_bad_query)
    install_problems(app)  # framework refusals in the project's shape, and in the schema
    unavailable.install(app)  # a database that is down or restarting: 503, not 500
    app.include_router(health_router())
    app.include_router(metrics_router())
    return app
