"""Supplies below a stock level, in process against the real PostgreSQL of the fixtures: an
accepted report under a town's (15 days) or a county's (60 days) reserve opens one alert per
node, metric and day naming the units; redelivery opens nothing; corrections that bring every
unit back at the level close it by itself."""

from datetime import timedelta

import pytest
from sqlalchemy import select, text

from services.alerts import detection
from services.alerts.models import AlertRow
from shared.catalogue import default_catalogue
from shared.contracts import ReportAccepted
from shared.db import make_engine, make_sessionmaker
from shared.rules import load_rules
from tests.integration.alerts_harness import BASE_DAY, ZONE, alerts_database, local, report

RULES, CATALOGUE = load_rules(), default_catalogue()
COUNTY, TOWN, OTHER_TOWN = "430621", "430621108", "430621104"
VILLAGE, NEIGHBOUR, FAR = f"{TOWN}061", f"{TOWN}062", f"{OTHER_TOWN}061"


@pytest.fixture(scope="module")
def db(servers) -> str:
    return alerts_database(servers)


@pytest.fixture
async def sessions(db):
    engine = make_engine(db, pool_size=2)
    yield make_sessionmaker(engine)
    await engine.dispose()


def supplies(village: str, day, days: float, revision: int = 1) -> ReportAccepted:
    return report(f"{village}-CL", village, "village_clinic", day, {"supply_days": days},
                  revision=revision, submitted_at=local(day, 8 + revision))


async def apply(sessions, events: list[ReportAccepted]) -> int:
    now = max(e.submitted_at for e in events) + timedelta(minutes=1)
    async with sessions() as session, session.begin():
        return await detection.apply_reports(session, events, RULES, ZONE, now,
                                             catalogue=CATALOGUE)


async def supply_alerts(sessions, day) -> dict[str, AlertRow]:
    async with sessions() as session:
        rows = await session.scalars(select(AlertRow).where(
            AlertRow.kind == "supply_low", AlertRow.day == day))
        return {row.node: row for row in rows}


async def units_below(sessions, row: AlertRow) -> list[str]:
    async with sessions() as session:
        return list((await session.execute(text(
            "SELECT unit FROM alerts.stock_units WHERE alert_id = :a AND below ORDER BY unit"),
            {"a": row.alert_id})).scalars())


async def test_ten_days_of_supplies_opens_the_town_and_the_county_alert_once(sessions) -> None:
    day = BASE_DAY + timedelta(days=300)
    low = supplies(VILLAGE, day, 10)
    assert await apply(sessions, [low]) == 2
    alerts = await supply_alerts(sessions, day)
    assert set(alerts) == {TOWN, COUNTY}
    town = alerts[TOWN]
    assert town.key == f"supply_low:{TOWN}:supply_days:{day.isoformat()}"
    assert town.status == "open" and town.responsible == TOWN
    assert town.recipients == ["command_centre"]
    assert town.deadline == low.submitted_at + timedelta(hours=24)
    assert town.details["units"] == [{"unit": low.unit, "unit_type": "village_clinic",
                                      "value": 10}]
    assert (town.details["minimum"], alerts[COUNTY].details["minimum"]) == (15, 60)

    # Redelivered, alone or with the batch it came in: nothing new.
    assert await apply(sessions, [low]) == 0
    assert await apply(sessions, [low, low]) == 0
    again = await supply_alerts(sessions, day)
    assert {n: r.alert_id for n, r in again.items()} == {n: r.alert_id for n, r in alerts.items()}
    async with sessions() as session:
        opened = (await session.execute(text(
            "SELECT count(*) FROM alerts.transitions t JOIN alerts.alerts a USING (alert_id) "
            "WHERE a.kind = 'supply_low' AND a.day = :d"), {"d": day})).scalar_one()
    assert opened == 2  # one history row each: opened


async def test_twenty_days_opens_only_the_county_alert(sessions) -> None:
    day = BASE_DAY + timedelta(days=301)
    assert await apply(sessions, [supplies(FAR, day, 20)]) == 1
    assert set(await supply_alerts(sessions, day)) == {COUNTY}
    # At the county's two months, nothing at all.
    later = day + timedelta(days=1)
    assert await apply(sessions, [supplies(FAR, later, 60)]) == 0
    assert await supply_alerts(sessions, later) == {}


async def test_corrections_that_bring_every_unit_back_close_the_alert(sessions) -> None:
    day = BASE_DAY + timedelta(days=302)
    assert await apply(sessions, [supplies(VILLAGE, day, 10), supplies(NEIGHBOUR, day, 12)]) == 2
    town = (await supply_alerts(sessions, day))[TOWN]
    assert [u["unit"] for u in town.details["units"]] == [f"{VILLAGE}-CL", f"{NEIGHBOUR}-CL"]

    # One unit back above the town's reserve: the other still holds the town below.
    assert await apply(sessions, [supplies(VILLAGE, day, 70, revision=2)]) == 0
    alerts = await supply_alerts(sessions, day)
    assert alerts[TOWN].status == "open"
    assert await units_below(sessions, alerts[TOWN]) == [f"{NEIGHBOUR}-CL"]

    # The last one back: the town's alert closes by itself; 20 days stays under the county's.
    assert await apply(sessions, [supplies(NEIGHBOUR, day, 20, revision=2)]) == 1
    alerts = await supply_alerts(sessions, day)
    assert (alerts[TOWN].status, alerts[TOWN].outcome, alerts[TOWN].closed_by) == (
        "closed", "replenished", "system")
    assert alerts[COUNTY].status == "open"
    assert await units_below(sessions, alerts[COUNTY]) == [f"{NEIGHBOUR}-CL"]

    # An older revision arriving late reopens nothing; a correction without the figure says
    # nothing is known of the unit's supplies: not below, and the county's closes.
    assert await apply(sessions, [supplies(NEIGHBOUR, day, 12, revision=1)]) == 0
    assert await apply(sessions, [report(f"{NEIGHBOUR}-CL", NEIGHBOUR, "village_clinic", day,
                                         {"fever": 0}, revision=3)]) == 1
    alerts = await supply_alerts(sessions, day)
    assert {n: (r.status, r.outcome) for n, r in alerts.items()} == {
        TOWN: ("closed", "replenished"), COUNTY: ("closed", "replenished")}
