"""The alerts service's composition root: settings → rules and catalogue → engine → broker →
consumers → clock loop → outbox relay → authenticator → routes. Nothing connects at import."""

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from fastapi import FastAPI

from services.alerts import handlers, queries, routes
from services.alerts.models import AlertOutboxRow
from services.alerts.service import AlertsContext
from services.alerts.ticker import Ticker
from shared import unavailable
from shared.bus import make_broker
from shared.catalogue import default_catalogue
from shared.clock import utc_now
from shared.health import health_router
from shared.http_problems import install_problems
from shared.observability import ALERTS_OPEN, ALERTS_OVERDUE, metrics_router
from shared.rules import load_rules
from shared.runtime import Background, connected, running
from shared.settings import Settings


def create_app(settings: Settings | None = None,
               clock: Callable[[], datetime] = utc_now) -> FastAPI:
    settings = settings or Settings()
    nats_url, database_url = settings.require_servers()
    rules = load_rules(settings.rules)  # bad rules stop the start, not the first alert
    catalogue = default_catalogue()
    broker = make_broker(nats_url, "alerts")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        base = await connected(app, broker, settings, database_url, AlertOutboxRow)
        ctx = AlertsContext(settings, clock, base.sessions, rules, base.reference, base.relay,
                            catalogue)
        ticker = Ticker(ctx)
        app.state.alerts, app.state.ticker = ctx, ticker
        clock_loop = ([Background("alerts-clock", lambda: ticker.run(settings.alerts_tick_s),
                                  stop=ticker.stop)] if settings.alerts_tick_s > 0 else [])
        async with running(app, broker, base.engine, consumers=handlers.consumers(base.nc, ctx),
                           relay=base.relay, background=clock_loop,
                           registry_changed=ctx.reload_reference):
            yield

    app = FastAPI(title="Rollcall alerts", version="0.1.0", lifespan=lifespan,
                  description="Fever-case clocks, escalation, outbreaks and missing reports.")
    app.include_router(routes.router)
    app.include_router(health_router())
    app.include_router(metrics_router(_refresh_alert_gauges))
    install_problems(app)  # every refusal in the project's shape, and in the schema
    unavailable.install(app)  # a database that is down or restarting: 503, not 500

    @app.get("/v1/status", tags=["alerts"])
    async def status() -> dict[str, int]:
        """What this service has taken in (case events; unit-days holding a report), and how
        many alerts are not closed."""
        async with app.state.alerts.sessions() as session:
            return await queries.intake(session)

    return app


async def _refresh_alert_gauges(app: FastAPI) -> None:
    ctx = app.state.alerts
    async with ctx.sessions() as session:
        counts = await queries.counts_by_level(session, ctx.clock())
    ALERTS_OPEN.clear()
    ALERTS_OVERDUE.clear()
    for level, (active, overdue) in counts.items():
        ALERTS_OPEN.labels(level).set(active)
        ALERTS_OVERDUE.labels(level).set(overdue)
