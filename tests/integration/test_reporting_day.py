"""A county's reporting day as its command centre lives it, on PostgreSQL and NATS with the clock
moved by hand: schools (cutoff 10:00) are pending (待报) before their cutoff and at 10:00:00
itself, missing (漏报) from 10:00:00.000001 on, without any report arriving, and the passing is
announced; village committees (14:00) stay pending until 14:00; kindergartens exempted for the
winter vacation (免报) are neither, and a report one sends anyway is counted; aggregate stopped
across cutoffs and started again, and two replicas at one cutoff, come out exact and announce
each cutoff once; reconcile agrees at every instant."""

import asyncio
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import nats
import pytest
from sqlalchemy import text

from rollcall import reconcile
from services.aggregate import views
from services.aggregate.live import Announcer
from services.aggregate.queries import Filter
from services.aggregate.rollup import COUNT_FIELDS, Applied, from_scratch
from services.aggregate.service import AggregateContext
from shared.catalogue import default_catalogue
from shared.contracts import RollupUpdated
from shared.db import make_engine, make_sessionmaker
from shared.registry import calendar
from tests.integration.aggregate_support import (
    county_registry,
    private_database,
    record_ledger,
    report,
    roster,
)

catalogue = default_catalogue()
COUNTY = "439951"
ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 1, 20)  # a Tuesday of the winter vacation
UNITS = county_registry(COUNTY)[1]
BY_CODE = {u.code: u for u in UNITS}
SCHOOL_1, SCHOOL_2 = BY_CODE[f"{COUNTY}001-PS"], BY_CODE[f"{COUNTY}002-PS"]
KINDERGARTEN = BY_CODE[f"{COUNTY}001001-KG"]
VILLAGE_COMMITTEE = BY_CODE[f"{COUNTY}001001-VC"]


def local(hh: int, mm: int, ss: int = 0, us: int = 0) -> datetime:
    return datetime.combine(DAY, time(hh, mm, ss, us), ZONE)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def database(servers) -> str:
    return private_database(servers.database_url, [COUNTY])


@pytest.fixture
async def world(servers, database):
    """Sessions, the hand-moved clock, a replica factory and what was announced on NATS."""
    engine = make_engine(database, pool_size=4)
    sessions = make_sessionmaker(engine)
    connection = await nats.connect(servers.nats_url)
    heard: list[RollupUpdated] = []

    async def hear(msg) -> None:
        heard.append(RollupUpdated.model_validate_json(msg.data))

    await connection.subscribe(f"rollup.updated.{COUNTY}", cb=hear)
    clock = Clock(local(9, 0))

    async def publish(subject: str, data: bytes) -> None:
        await connection.publish(subject, data)

    def replica() -> AggregateContext:
        ctx = AggregateContext(servers.settings(), clock, sessions, catalogue)
        ctx.announcer = Announcer(publish, clock, interval=0)
        return ctx

    yield sessions, clock, replica, heard
    await connection.close()
    await engine.dispose()


async def figures(ctx: AggregateContext, node: str = COUNTY) -> dict:
    async with ctx.sessions() as session:
        return (await views.completeness_view(session, node, DAY, catalogue, ctx.moment(),
                                              Filter(), None, 0))["completeness"]


async def exact(ctx: AggregateContext, applied: list) -> None:
    """The stored figures at the clock's instant are the recompute's, and reconcile agrees."""
    moment = ctx.moment()
    _, want = from_scratch(applied, catalogue, _roster(), moment)
    got = await figures(ctx)
    assert {k: got[k] for k in COUNT_FIELDS} == want[(COUNTY, DAY)].as_dict()
    async with ctx.sessions() as session:
        assert (await reconcile.check(session, DAY, COUNTY, catalogue, moment)).differences == []


def _roster() -> list[tuple]:
    return [(code, day, node, cutoff, code.endswith("-KG"))
            for code, day, node, cutoff, _ in roster(UNITS, DAY)]


async def announce(ctx: AggregateContext, heard: list) -> int:
    """Passes the cutoffs due and flushes the announcer; how many county updates were heard."""
    await ctx.announcer.flush()  # what reports touched before
    await asyncio.sleep(0.3)
    before = len(heard)
    await ctx.pass_cutoffs()
    await ctx.announcer.flush()
    await asyncio.sleep(0.3)
    return len(heard) - before


async def test_the_day_of_a_county(world) -> None:
    sessions, clock, replica, heard = world
    first = replica()
    await first.ensure_today()
    # The county exempts its kindergartens for the winter vacation, from today on.
    async with sessions() as session, session.begin():
        vacation = await calendar.declare(session, calendar.Declaration(
            valid_from=DAY, valid_to=DAY + timedelta(days=27), reason="寒假",
            node_code=COUNTY, unit_type="kindergarten"), COUNTY, "县教育局值班员", clock(), DAY)
    await first.registry_changed()
    reports = [report(SCHOOL_1, DAY, 1, {"sick_absence": 1}),
               report(KINDERGARTEN, DAY, 1, {})]  # exempt, and reports anyway
    await record_ledger(sessions, reports)
    await first.apply(reports)
    applied = [Applied(e.unit, e.day, e.revision, e.node, e.values, e.zero, e.late)
               for e in reports]
    kindergartens = {u.code for u in UNITS if u.unit_type == "kindergarten"}
    schools = {u.code for u in UNITS if u.unit_type == "primary_school"}

    clock.now = local(9, 59)
    c = await figures(first)
    assert c["exempt"] == len(kindergartens) and c["missing"] == 0
    assert c["expected"] == len(UNITS) - len(kindergartens)
    assert c["pending"] == c["expected"] - 1 and c["reported"] == 2  # the kindergarten counts
    assert SCHOOL_2.code in {u["unit"] for u in c["pending_units"]}
    assert {u["unit"] for u in c["exempt_units"]} == kindergartens
    assert {u["reason"] for u in c["exempt_units"]} == {"寒假"}
    assert c["reporting_rate"] == 1.0  # due so far: the one school that has reported
    await exact(first, applied)
    assert await announce(first, heard) == 0

    clock.now = local(10, 0)  # at the cutoff: on time still
    assert (await figures(first))["missing"] == 0
    assert await announce(first, heard) == 0

    clock.now = local(10, 0, 0, 1)  # just after: missing, without any report
    c = await figures(first)
    assert c["missing"] == len(schools) - 1
    assert {u["unit"] for u in c["missing_units"]} == schools - {SCHOOL_1.code}
    assert c["reporting_rate"] == 1 / len(schools)  # due so far: the schools
    assert await announce(first, heard) == 1  # the county's update, published at the cutoff
    await exact(first, applied)

    # Aggregate stops here; 12:00 passes while it is down. Two replicas start at 12:00:01.
    clock.now = local(12, 0, 1)
    second, third = replica(), replica()
    before = len(heard)
    await asyncio.gather(second.pass_cutoffs(), third.pass_cutoffs())
    await second.announcer.flush()
    await third.announcer.flush()
    await asyncio.sleep(0.3)
    assert len(heard) - before == 1  # 12:00 announced once; 10:00 not again
    async with sessions() as session:
        claimed = (await session.execute(text(
            "SELECT cutoff, count(*) FROM aggregate.cutoffs WHERE day = :d GROUP BY cutoff"),
            {"d": DAY})).all()
    assert sorted(claimed) == [(time(10), 1), (time(12), 1)]
    await exact(second, applied)
    c = await figures(second)
    assert VILLAGE_COMMITTEE.code in {u["unit"] for u in c["pending_units"]}

    clock.now = local(14, 0)  # the village committees' cutoff: still pending at 14:00:00
    assert VILLAGE_COMMITTEE.code in {u["unit"] for u in (await figures(second))["pending_units"]}
    clock.now = local(14, 0, 1)
    c = await figures(second)
    assert VILLAGE_COMMITTEE.code in {u["unit"] for u in c["missing_units"]}
    assert c["pending"] == 0
    assert c["final_reporting_rate"] == 1 / c["expected"]
    assert not kindergartens & {u["unit"] for u in c["missing_units"]}
    await exact(second, applied)

    # Ended today, the vacation no longer covers today; it began today, so nothing is left of it
    # (withdrawn). The ending is kept with who and why.
    async with sessions() as session, session.begin():
        ended = await calendar.end(session, vacation.exemption_id, "提前开学", COUNTY, "县教育局",
                                   clock(), DAY)
    assert ended.withdrawn and ended.ended_by == "县教育局" and ended.end_reason == "提前开学"


async def test_the_day_after_has_no_pending_units(world) -> None:
    """Read the next morning, yesterday's unreported units are all missing."""
    _, clock, replica, _ = world
    clock.now = local(9, 0) + timedelta(days=1)
    c = await figures(replica())
    assert c["pending"] == 0 and c["missing"] > 0
