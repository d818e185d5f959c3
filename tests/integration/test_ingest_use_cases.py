"""Ingest's use cases (`services.ingest.submissions`) called in process against real PostgreSQL:
idempotency, corrections, lateness, validation refusals and case receipts, with a clock the test
sets. No HTTP server and no broker: the outbox rows are what would be published, and the relay
is built but never started.

The tests write to a database of their own on the session's server, holding a small test county,
so that no running service publishes (and deletes) their outbox rows meanwhile."""

import asyncio
import dataclasses
import uuid
from datetime import UTC, date, datetime, time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rollcall.migrate import upgrade
from services.ingest import submissions
from services.ingest.schemas import CorrectionCommand, SubmitReport
from services.ingest.service import IngestContext
from services.ingest.submissions import Incoming, Outcome, read
from shared.auth import Principal
from shared.catalogue import default_catalogue
from shared.db import make_engine, make_sessionmaker
from shared.http_auth import Authenticator
from shared.outbox import OutboxRelay
from shared.registry import store
from shared.registry.reference import Reference
from shared.settings import Settings
from tests.conftest import Servers, _fresh_database
from tests.integration.conftest import ZONE

COUNTY = "430698"  # the use-case tests' own county, in their own database
TOWN = f"{COUNTY}100"
VILLAGE = f"{TOWN}001"
OTHER_VILLAGE = f"{TOWN}002"
OPERATOR = Principal(uuid.UUID(int=1), "operator", COUNTY, "县指挥部值班")
# 10:00 local time on a day far from the other tests' days.
NOW = datetime(2025, 6, 10, 2, 0, tzinfo=UTC)
TODAY = NOW.astimezone(ZONE).date()


def clinic(n: int) -> str:
    return f"{VILLAGE}-C{n:03d}"


def school(n: int) -> str:
    return f"{VILLAGE}-S{n:03d}"


@dataclasses.dataclass
class World:
    sessions: async_sessionmaker[AsyncSession]
    base: IngestContext

    def ctx(self, now: datetime = NOW, **settings) -> IngestContext:
        """The context at the instant `now`, with its own rate limiter."""
        chosen = self.base.settings.model_copy(update=settings)
        return dataclasses.replace(self.base, settings=chosen, clock=lambda: now,
                                   limiter=None)  # type: ignore[arg-type]

    async def sql(self, query: str, **params) -> list:
        async with self.sessions() as session:
            return list((await session.execute(text(query), params)).all())


async def _load_county(sessions: async_sessionmaker[AsyncSession]) -> None:
    units = [{"code": clinic(n), "name": f"测试卫生室{n}", "unit_type": "village_clinic",
              "sector": "health", "node": VILLAGE, "cutoff": time(14)} for n in range(200)]
    units += [{"code": school(n), "name": f"测试小学{n}", "unit_type": "primary_school",
               "sector": "education", "node": VILLAGE, "cutoff": time(10)} for n in range(50)]
    units.append({"code": f"{OTHER_VILLAGE}-C000", "name": "邻村卫生室",
                  "unit_type": "village_clinic", "sector": "health", "node": OTHER_VILLAGE,
                  "cutoff": time(14)})
    async with sessions() as session, session.begin():
        await store.upsert_nodes(session, [("43", "湖南省"), ("4306", "岳阳市"),
                                           (COUNTY, "用例县"), (TOWN, "用例镇"),
                                           (VILLAGE, "用例村"), (OTHER_VILLAGE, "邻村")])
        await store.upsert_units(session, units)


@pytest.fixture(scope="session")
async def world(servers: Servers) -> World:
    url = await asyncio.to_thread(_fresh_database, servers.database_url)
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url, pool_size=4)
    sessions = make_sessionmaker(engine)
    await _load_county(sessions)
    async with sessions() as session:
        reference = await Reference.load(session)
    settings = Settings(nats_url=servers.nats_url, database_url=url, submit_rate_burst=0)
    relay = OutboxRelay(sessions, None, "ingest.outbox")  # type: ignore[arg-type]  # never run
    base = IngestContext(settings, lambda: NOW, sessions, default_catalogue(), reference, relay,
                         Authenticator(sessions))
    yield World(sessions, base)
    await engine.dispose()


def report(unit: str, day: date = TODAY, principal: Principal = OPERATOR, **fields) -> Incoming:
    body = {"unit": unit, "day": day.isoformat(), "reporter": "周", **fields}
    return read(SubmitReport, body, principal)


def correction(unit: str, day: date = TODAY, principal: Principal = OPERATOR,
               **fields) -> Incoming:
    body = {"unit": unit, "day": day.isoformat(), "reporter": "周", "reason": "更正", **fields}
    return read(CorrectionCommand, body, principal)


def errors_of(outcome: Outcome) -> set[tuple[str, str]]:
    return {(e.field, e.code) for e in outcome.errors}


async def outbox(world: World, msg_id_like: str) -> list[str]:
    return [row.msg_id for row in await world.sql(
        "SELECT msg_id FROM ingest.outbox WHERE msg_id LIKE :like ORDER BY id", like=msg_id_like)]


# -- corrections that race ----------------------------------------------------------------


async def test_identical_corrections_at_the_same_moment_are_one_revision(world: World) -> None:
    """A retry answers 200 with the stored result however it races: two identical corrections
    naming only their report_id, sent at once, store one revision."""
    ctx = world.ctx()
    for attempt in range(6):
        unit = clinic(100 + attempt)
        [first] = await submissions.submit_reports(ctx, [report(unit, values={"fever": 1})])
        assert first.code == 201
        report_id = str(uuid.uuid4())
        both = await asyncio.gather(*(submissions.correct_reports(ctx, [correction(
            unit, values={"fever": 0}, report_id=report_id)]) for _ in range(2)))
        outcomes = sorted((o for [o] in both), key=lambda o: o.code)
        assert [(o.status, o.code) for o in outcomes] == [("duplicate", 200), ("accepted", 201)]
        assert {str(o.receipt.report_id) for o in outcomes} == {report_id}
        assert {o.receipt.revision for o in outcomes} == {2}
        assert await outbox(world, f"report:{unit}:%") == [
            f"report:{unit}:{TODAY.isoformat()}:1", f"report:{unit}:{TODAY.isoformat()}:2"]
