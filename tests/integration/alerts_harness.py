"""Running the alerts service in-process with a clock the test moves, on real NATS and
PostgreSQL: replicas are apps started through their lifespan, sharing one durable consumer and
one database of their own (so no other service's clock touches these alerts)."""

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import nats
from sqlalchemy import text

from rollcall.migrate import upgrade
from rollcall.reference import load_demo
from services.alerts.app import create_app
from services.alerts.service import AlertsContext
from services.alerts.ticker import Ticker
from shared import auth
from shared.contracts import CaseReported, ReportAccepted
from shared.db import make_engine, make_sessionmaker
from shared.settings import Settings
from tests.conftest import Servers, _fresh_database

ZONE = ZoneInfo("Asia/Shanghai")
# Days far from today and from other runs on a shared server (stream dedup windows, cutoffs).
BASE_DAY = date(2031, 1, 1) + timedelta(days=random.randrange(0, 20_000, 40))
DURABLE = f"alerts-it-{uuid.uuid4().hex[:8]}"
_database: dict[str, str] = {}


def alerts_database(servers: Servers) -> str:
    """One fresh database for the alerts tests of this session, migrated, with the demo county."""
    if "url" not in _database:
        url = _fresh_database(servers.database_url)
        upgrade(url)

        async def load() -> None:
            engine = make_engine(url, pool_size=1)
            async with make_sessionmaker(engine)() as session, session.begin():
                await load_demo(session)
            await engine.dispose()

        asyncio.run(load())  # called from a synchronous fixture, outside the test loop
        _database["url"] = url
    return _database["url"]


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=ZONE)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now.astimezone(UTC)

    def set(self, now: datetime) -> None:
        self.now = now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Replica:
    ctx: AlertsContext
    ticker: Ticker
    http: httpx.AsyncClient

    async def tick(self) -> int:
        return await self.ticker.tick()


@contextlib.asynccontextmanager
async def replica(servers: Servers, database_url: str, clock: FakeClock,
                  **settings) -> AsyncIterator[Replica]:
    app = create_app(Settings(nats_url=servers.nats_url, database_url=database_url,
                              alerts_durable=DURABLE, **{"alerts_tick_s": 0, **settings}),
                     clock=clock)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://alerts") as http:
        yield Replica(app.state.alerts, app.state.ticker, http)


class Bus:
    """Publishes events as the other services do: to their subject, with their message id."""

    def __init__(self, nc: nats.NATS) -> None:
        self.nc = nc
        self.js = nc.jetstream()

    async def publish(self, event: CaseReported | ReportAccepted) -> None:
        await self.js.publish(event.subject, event.model_dump_json().encode(),
                              headers={"Nats-Msg-Id": event.msg_id})

    async def alert_events(self, alert_ids: set[uuid.UUID]) -> Counter:
        """(alert id, change) → how many messages the ALERTS stream holds for it."""
        sub = await self.js.subscribe("alert.>", ordered_consumer=True)
        seen: Counter = Counter()
        try:
            while True:
                try:
                    msg = await sub.next_msg(timeout=1.0)
                except nats.errors.TimeoutError:
                    return seen
                data = json.loads(msg.data)
                if uuid.UUID(data["alert_id"]) in alert_ids:
                    seen[(uuid.UUID(data["alert_id"]), data["change"])] += 1
        finally:
            await sub.unsubscribe()


def case(unit: str, node: str, unit_type: str, found_at: datetime, *, kind: str = "fever",
         received_at: datetime | None = None, sector: str = "health") -> CaseReported:
    received = received_at or found_at + timedelta(minutes=5)
    return CaseReported(case_id=uuid.uuid4(), unit=unit, node=node, unit_type=unit_type,
                        sector=sector, kind=kind, found_at=found_at.astimezone(UTC),
                        received_at=received.astimezone(UTC),
                        temperature=38.2 if kind == "fever" else None,
                        symptoms=["cough"] if kind == "ili" else [], person_ref="P-1",
                        late=False)


def report(unit: str, node: str, unit_type: str, day: date, values: dict, *,
           revision: int = 1, submitted_at: datetime | None = None) -> ReportAccepted:
    return ReportAccepted(
        report_id=uuid.uuid4(), unit=unit, node=node, unit_type=unit_type, sector="health",
        day=day, revision=revision, values=values, zero=not any(values.values()), late=False,
        submitted_at=(submitted_at or local(day, 8)).astimezone(UTC), reporter="test")


async def issue_operator(database_url: str, scope: str) -> str:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            token, _ = await auth.issue(session, "operator", scope, f"值班员-{scope}",
                                        datetime.now(UTC))
    finally:
        await engine.dispose()
    return token


async def issue_unit(database_url: str, unit: str) -> str:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            token, _ = await auth.issue(session, "unit", unit, unit, datetime.now(UTC))
    finally:
        await engine.dispose()
    return token


async def wait_for(check, within_s: float = 20.0, interval: float = 0.05):
    """Await `check()` until it returns something truthy; the last value otherwise."""
    deadline = time.monotonic() + within_s
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


async def scalar(ctx: AlertsContext, sql: str, **params):
    async with ctx.sessions() as session:
        return (await session.execute(text(sql), params)).scalar()


async def rows(ctx: AlertsContext, sql: str, **params) -> list:
    async with ctx.sessions() as session:
        return list((await session.execute(text(sql), params)).all())


async def alert_of_case(ctx: AlertsContext, event: CaseReported):
    return await scalar(ctx, "SELECT alert_id FROM alerts.alerts WHERE key = :k",
                        k=f"case:{event.case_id}")


async def history(ctx: AlertsContext, alert_id: uuid.UUID) -> list[tuple]:
    """(change, at in local time, actor, responsible-after) of each change, in order."""
    return [(r.change, r.at.astimezone(ZONE), r.actor, r.details.get("to"))
            for r in await rows(ctx, "SELECT change, at, actor, details FROM alerts.transitions "
                                     "WHERE alert_id = :a ORDER BY seq", a=alert_id)]


async def drain(*replicas: Replica) -> None:
    """Publish what the outboxes hold now (the relays also do it by themselves)."""
    for r in replicas:
        await r.ctx.relay.drain()
