"""Aggregate's HTTP API on real servers, its clock fixed: a node for a day or a range, its
children down to the units, filters by sector and unit type, the time series, completeness lists
page by page, and refusals that name the field."""

import asyncio
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from services.aggregate.app import create_app
from services.aggregate.projector import apply_batch
from shared.catalogue import default_catalogue
from shared.db import make_engine, make_sessionmaker
from tests.integration.aggregate_support import Unit, report

D1, D2, D3 = date(2023, 2, 1), date(2023, 2, 2), date(2023, 2, 3)
NOW = datetime(2023, 2, 3, 2, 0, tzinfo=UTC)  # 10:00 on D3 in Asia/Shanghai
TOWN, VILLAGE = "430621105", "430621105001"
CL = Unit(f"{VILLAGE}-CL", VILLAGE, "village_clinic", "health")
VC = Unit(f"{VILLAGE}-VC", VILLAGE, "village_committee", "civil_affairs")
PS = Unit(f"{TOWN}-PS", TOWN, "primary_school", "education")
MS = Unit("430621-MS1", "430621", "middle_school", "education")


@pytest.fixture(scope="module")
def client(servers):
    async def load() -> None:
        engine = make_engine(servers.database_url, pool_size=1)
        async with make_sessionmaker(engine)() as session, session.begin():
            await apply_batch(session, [
                report(CL, D1, 1, {"fever": 2, "nat_tests": 20, "nat_positive": 1}),
                report(VC, D1, 1, {}),
                report(PS, D1, 1, {"sick_absence": 4}, late=True),
                report(CL, D2, 1, {"fever": 1, "nat_tests": 20, "nat_positive": 3}),
                report(MS, D2, 1, {"sick_absence": 7})], default_catalogue(), NOW)
        await engine.dispose()

    asyncio.run(load())
    settings = servers.settings(aggregate_filter="report.accepted.439990.>")
    with TestClient(create_app(settings, clock=lambda: NOW)) as c:
        yield c


def get(client: TestClient, path: str, **params) -> dict | list:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_town_on_a_day_with_its_missing_and_late_units(client) -> None:
    town = get(client, f"/v1/rollups/{TOWN}", day=D1.isoformat())
    assert (town["node"], town["level"], town["day"]) == (TOWN, "town", D1.isoformat())
    assert town["values"] == {"fever": 2, "nat_tests": 20, "nat_positive": 1, "sick_absence": 4}
    assert town["ratios"]["nat_positivity"] == 0.05
    c = town["completeness"]
    assert (c["expected"], c["reported"], c["zero"], c["late"], c["on_time"], c["missing"]) == (
        8, 3, 1, 1, 2, 5)
    assert c["reporting_rate"] == 3 / 8 and c["on_time_rate"] == 2 / 8
    assert [u["unit"] for u in c["late_units"]] == [PS.code]
    assert {u["unit"] for u in c["missing_units"]} == {
        f"{TOWN}-HC", f"{TOWN}002-CL", f"{TOWN}002-VC", f"{TOWN}003-CL", f"{TOWN}003-VC"}


def test_a_range_sums_the_days_and_ratios_come_from_sums(client) -> None:
    village = get(client, f"/v1/rollups/{VILLAGE}", start=D1.isoformat(), end=D2.isoformat())
    assert (village["start"], village["end"], village["days"]) == (
        D1.isoformat(), D2.isoformat(), 2)
    assert village["values"]["fever"] == 3 and village["values"]["nat_tests"] == 40
    assert village["ratios"]["nat_positivity"] == 4 / 40  # not the mean of 1/20 and 3/20
    c = village["completeness"]
    assert (c["expected"], c["reported"], c["missing"]) == (4, 3, 1)  # unit-days
    assert "missing_units" not in c  # lists are for a single day


def test_the_series_has_every_day_of_the_span(client) -> None:
    series = get(client, f"/v1/rollups/{VILLAGE}/series", start=D1.isoformat(),
                 end=D3.isoformat())
    assert [d["day"] for d in series["series"]] == [d.isoformat() for d in (D1, D2, D3)]
    assert [d["values"].get("fever", 0) for d in series["series"]] == [2, 1, 0]
    # D3 has no report yet, but it is today: its units are expected, all missing.
    assert series["series"][2]["completeness"]["expected"] == 2
    assert series["series"][2]["completeness"]["missing"] == 2


def test_drill_down_from_county_to_unit(client) -> None:
    county = get(client, "/v1/rollups/430621/children", day=D2.isoformat())
    nodes = [r for r in county if r["kind"] == "node"]
    units = {r["unit"]: r for r in county if r["kind"] == "unit"}
    assert len(nodes) == 15 and all(r["level"] == "town" for r in nodes)
    assert units["430621-MS1"]["status"] == "reported"
    assert units["430621-HOSP"]["status"] == "missing"
    town = next(r for r in nodes if r["node"] == TOWN)
    assert town["values"]["fever"] == 1 and "missing_units" not in town["completeness"]
    village = get(client, f"/v1/rollups/{VILLAGE}/children", day=D1.isoformat())
    assert {r["unit"]: (r["status"], r["revision"], r["late"]) for r in village} == {
        CL.code: ("reported", 1, False), VC.code: ("zero", 1, False)}


def test_filters_by_sector_and_unit_type(client) -> None:
    education = get(client, "/v1/rollups/430621", day=D2.isoformat(), sector="education")
    assert education["filter"] == {"sector": "education"}
    assert education["values"] == {"sick_absence": 7}
    assert education["completeness"]["expected"] == 16  # the middle school, 15 primary schools
    assert education["completeness"]["reported"] == 1
    clinics = get(client, f"/v1/rollups/{TOWN}/children", day=D1.isoformat(),
                  unit_type="village_clinic")
    reported = {r["node"]: r["completeness"]["reported"] for r in clinics if r["kind"] == "node"}
    assert reported == {f"{TOWN}001": 1, f"{TOWN}002": 0, f"{TOWN}003": 0}
    assert [r for r in clinics if r["kind"] == "unit"] == []  # the town's own are not clinics


def test_completeness_lists_page_through(client) -> None:
    whole = get(client, "/v1/rollups/430621/completeness", day=D1.isoformat())
    missing = whole["completeness"]["missing_units"]
    assert len(missing) == whole["completeness"]["missing"] == 122 - 3
    pages = [get(client, "/v1/rollups/430621/completeness", day=D1.isoformat(), limit=50,
                 offset=o)["completeness"]["missing_units"] for o in (0, 50, 100)]
    assert [u for page in pages for u in page] == missing


@pytest.mark.parametrize("path, params, field", [
    ("/v1/rollups/43062", {}, "node"),
    ("/v1/rollups/430621", {"day": "2023-02-01", "start": "2023-02-01"}, "day"),
    ("/v1/rollups/430621", {"start": "2023-02-03", "end": "2023-02-01"}, "start"),
    ("/v1/rollups/430621", {"start": "2021-01-01", "end": "2023-02-01"}, "start"),
    ("/v1/rollups/430621/children", {"unit_type": "spaceship"}, "unit_type"),
    ("/v1/rollups/430621/series", {"sector": "nowhere"}, "sector"),
])
def test_bad_queries_are_refused_naming_the_field(client, path, params, field) -> None:
    response = client.get(path, params=params)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert field in {e["field"] for e in errors}
    assert all(e["message_zh"] and e["message_en"] and e["code"] for e in errors)


def test_status_names_the_filter_and_durable(client) -> None:
    status = get(client, "/v1/status")
    assert (status["filter"], status["durable"]) == ("report.accepted.439990.>",
                                                     "aggregate-439990")


def test_an_old_day_without_reports_counts_its_expected_units_without_building(client,
                                                                              servers) -> None:
    old = date(2023, 1, 10)  # before the lock window: nothing is built for it on reading
    village = get(client, f"/v1/rollups/{VILLAGE}", day=old.isoformat())
    c = village["completeness"]
    assert (c["expected"], c["reported"], c["missing"]) == (2, 0, 2)
    kids = get(client, f"/v1/rollups/{TOWN}/children", day=old.isoformat())
    assert [r["completeness"]["expected"] for r in kids if r["kind"] == "node"] == [2, 2, 2]

    async def built() -> int:
        engine = make_engine(servers.database_url, pool_size=1)
        async with make_sessionmaker(engine)() as session:
            found = await session.scalar(text(
                "SELECT count(*) FROM aggregate.days WHERE day = :d"), {"d": old})
        await engine.dispose()
        return found

    assert asyncio.run(built()) == 0
