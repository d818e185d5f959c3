"""The projector and the read side on PostgreSQL, case by case: concurrent deliveries of the same
report, corrections that withdraw an extreme, an old revision after a new one, and completeness
with exactly the missing and late units, at every level and with filters."""

import asyncio
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from services.aggregate import expected, views
from services.aggregate.projector import apply_batch
from services.aggregate.queries import Filter
from services.aggregate.views import Span
from shared.catalogue import default_catalogue
from shared.db import make_engine, make_sessionmaker
from shared.deadlines import Moment
from tests.integration.aggregate_support import Unit, demo_children, demo_units, report, under

catalogue = default_catalogue()
NOW = Moment(datetime.now(UTC), ZoneInfo("Asia/Shanghai"))  # these tests' days are all past
LEVELS = ("43", "4306", "430621", "430621108", "430621108001")


def demo_unit(code: str, unit_type: str = "village_clinic", sector: str = "health") -> Unit:
    node = code.split("-")[0]
    return Unit(code, node, unit_type, sector)


CL1 = demo_unit("430621108001-CL")
VC1 = demo_unit("430621108001-VC", "village_committee", "civil_affairs")
CL2 = demo_unit("430621108002-CL")
HC = demo_unit("430621108-HC", "township_health_centre")
OTHER = demo_unit("430621104001-CL")


@pytest.fixture(scope="module")
async def sessions(servers):
    engine = make_engine(servers.database_url, pool_size=4)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def apply(sessions, events) -> None:
    async with sessions() as session, session.begin():
        await apply_batch(session, events, catalogue, datetime.now(UTC))


async def values(sessions, day: date, metric: str) -> dict[str, float]:
    async with sessions() as session:
        rows = await session.execute(text(
            "SELECT node_code, value FROM aggregate.rollups WHERE day = :d AND metric = :m"),
            {"d": day, "m": metric})
        return dict(rows.all())


async def test_a_redelivery_racing_its_first_delivery_counts_once(sessions) -> None:
    day = date(2023, 1, 1)
    async with sessions() as session, session.begin():
        await expected.rebuild(session, {day}, datetime.now(UTC))
    event = report(CL1, day, 1, {"fever": 2})
    first = sessions()
    await first.begin()
    await apply_batch(first, [event], catalogue, datetime.now(UTC))  # not committed yet
    second = asyncio.create_task(apply(sessions, [event]))  # another replica, same message
    await asyncio.sleep(0.5)
    assert not second.done()  # it waits for the first to finish with that unit-day
    await first.commit()
    await first.close()
    await second
    assert (await values(sessions, day, "fever")) == {n: 2 for n in LEVELS}


async def test_corrections_withdrawing_extremes_recompute_every_level(sessions) -> None:
    day = date(2023, 1, 2)
    await apply(sessions, [report(CL1, day, 1, {"max_temperature": 39.5, "supply_days": 2}),
                           report(OTHER, day, 1, {"max_temperature": 38.0, "supply_days": 5}),
                           report(HC, day, 1, {"max_temperature": 38.8, "supply_days": 9})])
    assert (await values(sessions, day, "max_temperature"))["430621"] == 39.5
    assert (await values(sessions, day, "supply_days"))["430621"] == 2
    await apply(sessions, [report(CL1, day, 2, {"max_temperature": 37.0, "supply_days": 20})])
    highs, lows = (await values(sessions, day, "max_temperature"),
                   await values(sessions, day, "supply_days"))
    assert highs == {"43": 38.8, "4306": 38.8, "430621": 38.8, "430621108": 38.8,
                     "430621108001": 37.0, "430621104": 38.0, "430621104001": 38.0}
    assert lows == {"43": 5, "4306": 5, "430621": 5, "430621108": 9, "430621108001": 20,
                    "430621104": 5, "430621104001": 5}
    # A correction that drops the metric altogether, and one that moves the unit elsewhere.
    await apply(sessions, [report(HC, day, 2, {"fever": 1}),
                           report(OTHER, day, 2, {"max_temperature": 38.0, "supply_days": 5},
                                  node="430621108002")])
    highs = await values(sessions, day, "max_temperature")
    assert highs == {"43": 38.0, "4306": 38.0, "430621": 38.0, "430621108": 38.0,
                     "430621108001": 37.0, "430621108002": 38.0}


async def test_an_older_revision_after_a_newer_one_never_wins(sessions) -> None:
    day = date(2023, 1, 3)
    await apply(sessions, [report(CL1, day, 2, {"fever": 5})])
    await apply(sessions, [report(CL1, day, 1, {"fever": 9}), report(CL1, day, 2, {"fever": 5})])
    assert (await values(sessions, day, "fever"))["430621"] == 5
    async with sessions() as session:
        revision = await session.scalar(text(
            "SELECT revision FROM aggregate.unit_days WHERE unit_code = :u AND day = :d"),
            {"u": CL1.code, "d": day})
    assert revision == 2


async def test_completeness_names_exactly_the_missing_and_late_units(sessions) -> None:
    day, next_day = date(2023, 1, 4), date(2023, 1, 5)
    await apply(sessions, [
        report(CL1, day, 1, {"fever": 1, "nat_tests": 10, "nat_positive": 2}),
        report(VC1, day, 1, {}),  # a zero report
        report(CL2, day, 1, {"fever": 2, "nat_tests": 30, "nat_positive": 1}, late=True),
        report(HC, day, 1, {"fever": 4}),
        report(CL1, next_day, 1, {"fever": 3})])
    async with sessions() as session:
        town = await views.node_view(session, "430621108", Span(day, day), catalogue, NOW)
        village = await views.node_view(session, "430621108001", Span(day, day), catalogue,
                                        NOW)
        county = await views.node_view(session, "430621", Span(day, day), catalogue, NOW)
        kids = await views.children_view(session, "430621108", Span(day, day), catalogue, NOW)
        units = await views.children_view(session, "430621108001", Span(day, day), catalogue,
                                          NOW)
        health = await views.node_view(session, "430621108", Span(day, day), catalogue, NOW,
                                       Filter(sector="health"))
        both = await views.node_view(session, "430621108001", Span(day, next_day), catalogue,
                                     NOW)
        series = await views.series_view(session, "430621108001", Span(day, next_day),
                                         catalogue, NOW)
    roster, sent = demo_units(day), {CL1.code, VC1.code, CL2.code, HC.code}
    in_town = {u.code for u in under(roster, "430621108")}
    n = len(in_town)
    c = town["completeness"]
    assert (c["expected"], c["reported"], c["zero"], c["late"], c["missing"]) == (
        n, 4, 1, 1, n - 4)
    assert {u["unit"] for u in c["missing_units"]} == in_town - sent
    assert [u["unit"] for u in c["late_units"]] == ["430621108002-CL"]
    assert c["reporting_rate"] == 4 / n and c["on_time_rate"] == 3 / n
    assert town["values"]["fever"] == 7
    assert town["ratios"]["nat_positivity"] == pytest.approx(3 / 40)  # from sums, not averaged
    assert {u["unit"] for u in village["completeness"]["missing_units"]} == {
        u.code for u in under(roster, "430621108001")} - sent
    n_county = len(under(roster, "430621"))
    assert (county["completeness"]["expected"], county["completeness"]["missing"]) == (
        n_county, n_county - 4)
    assert [k["node"] for k in kids if k["kind"] == "node"] == demo_children("430621108")
    assert {k["unit"]: k["status"] for k in kids if k["kind"] == "unit"} == {
        **{u.code: "missing" for u in roster if u.node == "430621108"}, HC.code: "reported"}
    assert sum(k["completeness"]["reported"] for k in kids if k["kind"] == "node") == 3
    assert {u["unit"]: (u["status"], u["revision"]) for u in units} == {
        **{u.code: ("missing", None) for u in under(roster, "430621108001")},
        CL1.code: ("reported", 1), VC1.code: ("zero", 1)}
    health_units = {u.code for u in under(roster, "430621108", sector="health")}
    h = health["completeness"]
    assert (h["expected"], h["reported"], h["missing"]) == (
        len(health_units), 3, len(health_units) - 3)
    assert {u["unit"] for u in h["missing_units"]} == health_units - sent
    assert both["values"]["fever"] == 4 and both["completeness"]["reported"] == 3
    assert [d["values"].get("fever") for d in series["series"]] == [1, 3]
