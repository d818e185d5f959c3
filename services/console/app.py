"""The console's composition root: settings → engine → NATS (live events) → the other services'
addresses → routes. It serves the command centre's pages and the reporting form."""

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import nats
from fastapi import FastAPI
from prometheus_client import Gauge

from services.console import routes
from services.console.editions import ConsoleOutboxRow, Editions
from services.console.live import Hub
from services.console.service import ConsoleContext
from services.console.upstream import Upstream, UpstreamDown
from shared.bus import connection_options
from shared.catalogue import default_catalogue
from shared.clock import utc_now
from shared.db import make_engine, make_sessionmaker
from shared.health import health_router
from shared.http_auth import Authenticator
from shared.observability import metrics_router
from shared.outbox import OutboxRelay
from shared.refusals import Refused, on_refused
from shared.runtime import freeze_long_lived
from shared.settings import Settings

log = logging.getLogger(__name__)
LIVE_SUBJECTS = ("rollup.updated.>", "alert.>")
LIVE_PAGES = Gauge("rollcall_console_live_pages", "Pages following live updates (SSE streams)")
LIVE_EVENTS = Gauge("rollcall_console_live_events_delivered",
                    "Live events handed to pages since the console started")


async def live_figures(app: FastAPI) -> None:
    hub = app.state.console.hub
    LIVE_PAGES.set(hub.pages)
    LIVE_EVENTS.set(hub.delivered)


def end_streams_on_stop(hub: Hub) -> None:
    """Uvicorn waits for open responses to finish before it shuts an app down, and a live stream
    never finishes by itself: end every stream as soon as the stop signal arrives, then let
    uvicorn's own handler go on. Outside the main thread (an embedded test server) there are no
    signals to chain."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if not callable(previous):
            continue

        def handler(signum, frame, previous=previous) -> None:
            loop.call_soon_threadsafe(hub.close)
            previous(signum, frame)

        with contextlib.suppress(ValueError):
            signal.signal(sig, handler)


async def _editions(ctx: ConsoleContext, settings: Settings, relay: OutboxRelay
                    ) -> Editions | None:
    """The scheduled editions, when the deployment names some: their token is checked at
    start, so that a wrong one stops the console now rather than fails at the scheduled time."""
    if not settings.editions:
        return None
    if settings.editions_token is None:
        raise RuntimeError("ROLLCALL_EDITIONS names schedules but ROLLCALL_EDITIONS_TOKEN "
                           "is not set")
    editions = Editions(ctx, settings.editions, settings.editions_token.get_secret_value(),
                        relay)
    await editions.check_token()
    return editions


def create_app(settings: Settings | None = None,
               clock: Callable[[], datetime] = utc_now) -> FastAPI:
    settings = settings or Settings()
    nats_url, database_url = settings.require_servers()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(database_url, pool_size=5)
        hub = Hub()
        # The same servers and credentials as every other service's broker (one URL or a
        # cluster's comma-separated seeds).
        connection = await nats.connect(**connection_options(nats_url), name="rollcall-console",
                                        max_reconnect_attempts=-1)
        for subject in LIVE_SUBJECTS:
            await connection.subscribe(subject, cb=hub.on_message)
        end_streams_on_stop(hub)
        upstream = Upstream(settings)
        sessions = make_sessionmaker(engine)
        app.state.console = ConsoleContext(
            settings, clock, sessions, default_catalogue(), upstream, hub,
            Authenticator(sessions, ttl_s=settings.auth_cache_s))
        app.state.engine, app.state.nats = engine, connection
        # The editions' events: written with each edition, published after commit.
        relay = OutboxRelay(sessions, connection, ConsoleOutboxRow, idle_poll_s=5.0)
        relay.start()
        editions = app.state.editions = await _editions(app.state.console, settings, relay)
        loop = (asyncio.create_task(editions.run(settings.editions_poll_s), name="editions")
                if editions is not None and settings.editions_poll_s > 0 else None)
        freeze_long_lived()
        try:
            yield
        finally:
            if editions is not None:
                editions.stop()
            if loop is not None:
                await asyncio.wait({loop}, timeout=30)
            await relay.stop()
            hub.close()
            await connection.drain()
            await upstream.close()
            await engine.dispose()

    app = FastAPI(title="Rollcall console", version="0.1.0", lifespan=lifespan,
                  description="The command centre's live picture, the daily summary and the "
                              "reporting form for units without a system of their own.")
    app.include_router(metrics_router(live_figures))
    app.include_router(routes.pages)
    app.include_router(routes.api)
    app.add_exception_handler(Refused, on_refused)
    app.add_exception_handler(UpstreamDown, routes.on_upstream_down)
    app.add_exception_handler(routes.Passed, routes.on_passed)

    app.include_router(health_router(lambda request: request.app.state.nats.is_connected))

    return app
