"""The signoff service's composition root: settings → rules and catalogue → engine → broker →
consumer → outbox relay → authenticator → routes. Nothing connects at import."""

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from fastapi import FastAPI

from services.signoff import handlers, routes
from services.signoff.models import SignoffOutboxRow
from services.signoff.service import SignoffContext
from shared import unavailable
from shared.aggregation import over_units
from shared.bus import make_broker
from shared.catalogue import default_catalogue
from shared.clock import utc_now
from shared.health import health_router
from shared.http_problems import install_problems
from shared.observability import metrics_router
from shared.runtime import connected, running
from shared.settings import Settings
from shared.signoff_rules import load_signoff_rules


def create_app(settings: Settings | None = None,
               clock: Callable[[], datetime] = utc_now) -> FastAPI:
    settings = settings or Settings()
    nats_url, database_url = settings.require_servers()
    rules = load_signoff_rules(settings.signoff_config)  # bad rules stop the start
    kinds = over_units(default_catalogue())
    broker = make_broker(nats_url, "signoff")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        base = await connected(app, broker, settings, database_url, SignoffOutboxRow)
        ctx = SignoffContext(settings, clock, base.sessions, rules, kinds, base.reference,
                             base.relay)
        app.state.signoff = ctx
        async with running(app, broker, base.engine, consumers=handlers.consumers(base.nc, ctx),
                           relay=base.relay, registry_changed=ctx.reload_reference):
            yield

    app = FastAPI(title="Rollcall signoff", version="0.1.0", lifespan=lifespan,
                  description="逐级审核上报: review, send back, confirm the day; corrections "
                              "after a confirmation reopen it.")
    app.include_router(routes.router)
    app.include_router(health_router())
    app.include_router(metrics_router())
    install_problems(app)
    unavailable.install(app)
    return app
