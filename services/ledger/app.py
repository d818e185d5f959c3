"""The ledger service's composition root (一人一案, people under control; not ingest's ledger of
report revisions): settings → regimes → engine → broker → outbox relay → the daily roll →
authenticator → routes. Nothing connects at import."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import httpx
from fastapi import FastAPI

from services.ledger import routes
from services.ledger.headcounts import HeadcountPublisher
from services.ledger.models import LedgerOutboxRow
from services.ledger.regimes import load_regimes
from services.ledger.service import LedgerContext
from shared import unavailable
from shared.bus import make_broker
from shared.clock import utc_now
from shared.contracts import RegistryChanged
from shared.health import health_router
from shared.http_problems import install_problems
from shared.observability import metrics_router
from shared.runtime import Background, connected, running
from shared.settings import Settings


class DailyRoll:
    """At start and at each new local day, every open file is brought in step with the day
    (`LedgerContext.roll`). It announces countdowns; it never judges a deadline: that is the
    alerts service's clock."""

    def __init__(self, ctx: LedgerContext, interval_s: float) -> None:
        self._ctx, self._interval_s = ctx, interval_s
        self._stop = asyncio.Event()
        self._day = None

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            if self._ctx.today() != self._day:
                try:
                    await self._ctx.roll()
                    self._day = self._ctx.today()
                except Exception:  # the database restarting: try again at the next look
                    import logging

                    logging.getLogger(__name__).exception("ledger: the daily roll failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._stop.wait()


def create_app(settings: Settings | None = None,
               clock: Callable[[], datetime] = utc_now,
               ingest: httpx.AsyncClient | None = None) -> FastAPI:
    """`ingest`: the client the headcounts go to ingest with (tests give their own)."""
    settings = settings or Settings()
    nats_url, database_url = settings.require_servers()
    regimes = load_regimes(settings.ledger_regimes)  # a bad configuration stops the start
    broker = make_broker(nats_url, "ledger")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Parameters hidden from database errors: they may be a person's name or phone number.
        base = await connected(app, broker, settings, database_url, LedgerOutboxRow,
                               hide_parameters=True)
        js = base.nc.jetstream()

        async def announce(what: list[str]) -> None:
            event = RegistryChanged(changed_at=clock(), what=what)
            await js.publish(event.subject, event.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": event.msg_id})

        ctx = LedgerContext(settings, clock, base.sessions, regimes, base.relay, base.reference,
                            announce)
        client = ingest or httpx.AsyncClient(
            base_url=settings.ledger_ingest_url
            or f"http://127.0.0.1:{settings.http_port or settings.ingest_port}", timeout=30)
        token = settings.ledger_ingest_token
        publisher = HeadcountPublisher(ctx, client, settings.ledger_tick_s or 1.0,
                                       token.get_secret_value() if token else None)
        ctx.changed = publisher.wake
        app.state.ledger = ctx
        roll = DailyRoll(ctx, settings.ledger_tick_s)
        app.state.roll, app.state.headcounts = roll, publisher
        loop = ([Background("ledger-roll", roll.run, stop=roll.stop),
                 Background("ledger-headcounts", publisher.run, stop=publisher.stop)]
                if settings.ledger_tick_s > 0 else [])
        try:
            async with running(app, broker, base.engine, relay=base.relay, background=loop,
                               registry_changed=ctx.reload_reference):
                yield
        finally:
            if settings.ledger_tick_s <= 0:
                await publisher.revoke()
            if ingest is None:
                await client.aclose()

    app = FastAPI(title="Rollcall ledger of people under control", version="0.1.0",
                  lifespan=lifespan,
                  description="一人一案: people under control, their regimes, tests, releases "
                              "and 包保 sign-offs; countdowns announced to the alerts service; "
                              "the headcounts of every level.")
    app.include_router(routes.router)
    app.include_router(health_router())
    app.include_router(metrics_router())
    install_problems(app)
    unavailable.install(app)
    return app
