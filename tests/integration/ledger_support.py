"""Running the ledger of people under control in-process beside an alerts replica, with one
clock the test moves, on real NATS and PostgreSQL (the alerts tests' own database)."""

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import nats
from sqlalchemy import text

from services.ledger.app import create_app
from services.ledger.headcounts import HeadcountPublisher
from services.ledger.service import LedgerContext
from shared.db import make_engine, make_sessionmaker
from shared.registry import store as registry
from shared.settings import Settings
from tests.conftest import Servers
from tests.integration.alerts_harness import FakeClock


@dataclass
class Ledger:
    ctx: LedgerContext
    http: httpx.AsyncClient
    publisher: HeadcountPublisher

    async def drain(self) -> int:
        return await self.ctx.relay.drain()


@contextlib.asynccontextmanager
async def ledger(servers: Servers, database_url: str, clock: FakeClock,
                 ingest: httpx.AsyncClient | None = None, **settings) -> AsyncIterator[Ledger]:
    """`ingest`: where the headcounts go (none given: nowhere that answers, and the tests
    that do not look at them never publish)."""
    app = create_app(Settings(nats_url=servers.nats_url, database_url=database_url,
                              **{"ledger_tick_s": 0, **settings}), clock=clock,
                     ingest=ingest or httpx.AsyncClient(base_url="http://127.0.0.1:1"))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://ledger") as http:
        yield Ledger(app.state.ledger, http, app.state.headcounts)


async def control_messages(nats_url: str, person_keys: str) -> list[dict]:
    """Every message of the CONTROL stream whose key names `person_keys` (a person id)."""
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe("control.>", ordered_consumer=True)
        out = []
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                break
            if person_keys in msg.data.decode():
                out.append({"subject": msg.subject, "raw": msg.data.decode(),
                            **json.loads(msg.data)})
        await sub.unsubscribe()
        return out
    finally:
        await nc.close()


async def add_village(database_url: str, village: str) -> None:
    """A county, town and village of a test's own (codes no other test uses), so that the
    alerts its countdowns open are seen by no other test of the same database."""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await registry.upsert_nodes(session, [(village[:6], "台账县"),
                                                  (village[:9], "台账镇"), (village, "台账村")])
    finally:
        await engine.dispose()


async def drop_units(database_url: str, county: str) -> None:
    """The units of a test's own county (the ledger units it made), out of the registry."""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            for table in ("registry.placements", "registry.units"):
                column = "unit_code" if table.endswith("placements") else "code"
                await session.execute(text(f"DELETE FROM {table} WHERE {column} LIKE :c"),
                                      {"c": f"{county}%"})
    finally:
        await engine.dispose()
