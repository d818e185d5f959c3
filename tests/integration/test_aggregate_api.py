"""Aggregate's HTTP API on real servers, its clock fixed: a node for a day or a range, its
children down to the units, filters by sector and unit type, the time series, completeness lists
page by page, refusals that name the field, and reads kept inside the token's area."""

import asyncio
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from services.aggregate.app import create_app
from services.aggregate.projector import apply_batch
from shared.auth import hash_token, revoke
from shared.catalogue import default_catalogue
from shared.clock import utc_now
from shared.db import make_engine, make_sessionmaker
from tests.conftest import issue_token
from tests.integration.aggregate_support import Unit, demo_children, demo_units, report, under

D1, D2, D3 = date(2023, 2, 1), date(2023, 2, 2), date(2023, 2, 3)
NOW = datetime(2023, 2, 3, 2, 0, tzinfo=UTC)  # 10:00 on D3 in Asia/Shanghai
TOWN, VILLAGE = "430621105", "430621105001"
CL = Unit(f"{VILLAGE}-CL", VILLAGE, "village_clinic", "health")
VC = Unit(f"{VILLAGE}-VC", VILLAGE, "village_committee", "civil_affairs")
PS = Unit(f"{TOWN}-PS", TOWN, "primary_school", "education")
MS = Unit("430621-MS1", "430621", "middle_school", "education")
VILLAGE2 = "430621105002"
VC2 = Unit(f"{VILLAGE2}-VC", VILLAGE2, "village_committee", "civil_affairs")
COUNTY = "430621"


def codes(units: list[Unit]) -> set[str]:
    return {u.code for u in units}


@pytest.fixture(scope="module")
def client(servers, auth):
    async def load() -> None:
        engine = make_engine(servers.database_url, pool_size=1)
        async with make_sessionmaker(engine)() as session, session.begin():
            await apply_batch(session, [
                report(CL, D1, 1, {"fever": 2, "nat_tests": 20, "nat_positive": 1}),
                report(VC, D1, 1, {}),
                report(PS, D1, 1, {"sick_absence": 4}, late=True),
                report(CL, D2, 1, {"fever": 1, "nat_tests": 20, "nat_positive": 3}),
                report(MS, D2, 1, {"sick_absence": 7}),
                report(VC2, D2, 1, {"home_observation": 10, "returnees_risk": 2,
                                    "supply_days": 9}),
                report(VC2, D3, 1, {"home_observation": 6, "returnees_risk": 1})],
                default_catalogue(), NOW)
        await engine.dispose()

    asyncio.run(load())
    settings = servers.settings(aggregate_filter="report.accepted.439990.>")
    with TestClient(create_app(settings, clock=lambda: NOW), headers=auth) as c:
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
    n = len(under(demo_units(D1), TOWN))
    assert (c["expected"], c["reported"], c["zero"], c["late"], c["on_time"], c["missing"]) == (
        n, 3, 1, 1, 2, n - 3)
    assert c["reporting_rate"] == 3 / n and c["on_time_rate"] == 2 / n
    assert [u["unit"] for u in c["late_units"]] == [PS.code]
    assert {u["unit"] for u in c["missing_units"]} == codes(under(demo_units(D1), TOWN)) - {
        CL.code, VC.code, PS.code}


def test_a_range_sums_the_days_and_ratios_come_from_sums(client) -> None:
    village = get(client, f"/v1/rollups/{VILLAGE}", start=D1.isoformat(), end=D2.isoformat())
    assert (village["start"], village["end"], village["days"]) == (
        D1.isoformat(), D2.isoformat(), 2)
    assert village["values"]["fever"] == 3 and village["values"]["nat_tests"] == 40
    assert type(village["values"]["fever"]) is int  # a count reads 3, not 3.0
    assert village["ratios"]["nat_positivity"] == 4 / 40  # not the mean of 1/20 and 3/20
    c = village["completeness"]
    n = len(under(demo_units(D1), VILLAGE)) + len(under(demo_units(D2), VILLAGE))  # unit-days
    assert (c["expected"], c["reported"], c["missing"]) == (n, 3, n - 3)
    assert "missing_units" not in c  # lists are for a single day


def test_a_stock_over_a_range_is_its_last_days_figure_and_a_flow_sums(client) -> None:
    """People under home observation are a headcount: 10 then 6 over two days are 6 people,
    not 16; returnees registered are a flow and add up."""
    for node in (VILLAGE2, TOWN):
        view = get(client, f"/v1/rollups/{node}", start=D1.isoformat(), end=D3.isoformat())
        assert view["values"]["home_observation"] == 6
        assert view["values"]["returnees_risk"] == 3
    day = get(client, f"/v1/rollups/{VILLAGE2}", day=D2.isoformat())
    assert day["values"] == {"home_observation": 10, "returnees_risk": 2, "supply_days": 9}
    assert all(type(v) is int for v in day["values"].values())


def test_a_week_or_a_month_ends_today_and_folds_like_a_range(client) -> None:
    """The week of D2 runs from Monday 30 January; today is D3 (a Friday), so it ends there.
    The month of D2 is February, so far D1 to D3. Both fold as a range does."""
    week = get(client, f"/v1/rollups/{VILLAGE2}", period="week", day=D2.isoformat())
    assert (week["start"], week["end"], week["days"]) == ("2023-01-30", D3.isoformat(), 5)
    assert week["values"]["home_observation"] == 6 and week["values"]["returnees_risk"] == 3
    month = get(client, f"/v1/rollups/{TOWN}", period="month", day=D2.isoformat())
    assert (month["start"], month["end"]) == (D1.isoformat(), D3.isoformat())
    assert month["values"] == get(client, f"/v1/rollups/{TOWN}", start=D1.isoformat(),
                                  end=D3.isoformat())["values"]
    children = get(client, f"/v1/rollups/{TOWN}/children", period="month", day=D2.isoformat())
    row = next(r for r in children if r["node"] == VILLAGE2)
    assert row["values"]["home_observation"] == 6 and row["values"]["returnees_risk"] == 3
    refused = client.get(f"/v1/rollups/{TOWN}", params={"period": "week",
                                                        "start": D1.isoformat()})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "period"


def test_the_series_keeps_running_totals_of_the_flows_since_a_chosen_day(client) -> None:
    """累计 since D1, shown from D2: returnees (a flow) 2 then 3, counting D1's; people under
    home observation are a stock: no running total, and the period's total is D3's 6."""
    series = get(client, f"/v1/rollups/{VILLAGE2}/series", start=D2.isoformat(),
                 end=D3.isoformat(), since=D1.isoformat())
    assert series["since"] == D1.isoformat()
    assert [d["day"] for d in series["series"]] == [D2.isoformat(), D3.isoformat()]
    assert [d["running"].get("returnees_risk") for d in series["series"]] == [2, 3]
    assert all("home_observation" not in d["running"] for d in series["series"])
    assert series["totals"]["values"]["home_observation"] == 6
    assert series["totals"]["values"]["returnees_risk"] == 3
    fever = get(client, f"/v1/rollups/{VILLAGE}/series", start=D2.isoformat(),
                end=D3.isoformat(), since=D1.isoformat())
    assert [d["running"]["fever"] for d in fever["series"]] == [3, 3]
    assert [d["values"].get("fever", 0) for d in fever["series"]] == [1, 0]
    assert fever["totals"]["values"]["fever"] == 1  # the period's own, not since D1
    late = client.get(f"/v1/rollups/{VILLAGE}/series",
                      params={"start": D1.isoformat(), "since": D2.isoformat()})
    assert late.status_code == 422 and late.json()["errors"][0]["field"] == "since"


def test_a_node_below_its_minimum_reserve_is_flagged(client) -> None:
    """A unit of the town has 9 days of supplies left: the town is below its 15 days (003:49),
    the county below its two months; the village has no stock level of its own."""
    town = get(client, f"/v1/rollups/{TOWN}", day=D2.isoformat())
    assert [(s["code"], s["value"], s["minimum"]) for s in town["below_minimum"]] == [
        ("town_reserve_15_days", 9, 15)]
    county = get(client, f"/v1/rollups/{COUNTY}/children", day=D2.isoformat())
    flagged = {r["node"]: r["below_minimum"] for r in county if r["kind"] == "node"}
    assert [s["code"] for s in flagged[TOWN]] == ["town_reserve_15_days"]
    assert get(client, f"/v1/rollups/{VILLAGE2}", day=D2.isoformat())["below_minimum"] == []


def test_the_series_has_every_day_of_the_span(client) -> None:
    series = get(client, f"/v1/rollups/{VILLAGE}/series", start=D1.isoformat(),
                 end=D3.isoformat())
    assert [d["day"] for d in series["series"]] == [d.isoformat() for d in (D1, D2, D3)]
    assert [d["values"].get("fever", 0) for d in series["series"]] == [2, 1, 0]
    # D3 has no report yet, but it is today at 10:00:00: its units are expected, and none is
    # due yet (the earliest cutoff is 10:00, and 10:00:00 itself is on time): all pending.
    # The days before are past: nothing pending there.
    n = len(under(demo_units(D3), VILLAGE))
    today = series["series"][2]["completeness"]
    assert (today["expected"], today["pending"], today["missing"]) == (n, n, 0)
    assert today["reporting_rate"] is None and today["final_reporting_rate"] is None
    assert all(d["completeness"]["pending"] == 0 for d in series["series"][:2])


def test_drill_down_from_county_to_unit(client) -> None:
    county = get(client, f"/v1/rollups/{COUNTY}/children", day=D2.isoformat())
    nodes = [r for r in county if r["kind"] == "node"]
    units = {r["unit"]: r for r in county if r["kind"] == "unit"}
    assert [r["node"] for r in nodes] == demo_children(COUNTY)
    assert all(r["level"] == "town" for r in nodes)
    assert set(units) == {u.code for u in demo_units(D2) if u.node == COUNTY}
    assert units["430621-MS1"]["status"] == "reported"
    assert units["430621-HOSP"]["status"] == "missing"
    town = next(r for r in nodes if r["node"] == TOWN)
    assert town["values"]["fever"] == 1 and "missing_units" not in town["completeness"]
    village = get(client, f"/v1/rollups/{VILLAGE}/children", day=D1.isoformat())
    assert {r["unit"]: (r["status"], r["revision"], r["late"]) for r in village} == {
        **{code: ("missing", None, None) for code in codes(under(demo_units(D1), VILLAGE))},
        CL.code: ("reported", 1, False), VC.code: ("zero", 1, False)}


def test_filters_by_sector_and_unit_type(client) -> None:
    education = get(client, f"/v1/rollups/{COUNTY}", day=D2.isoformat(), sector="education")
    assert education["filter"] == {"sector": "education"}
    assert education["values"] == {"sick_absence": 7}
    assert education["completeness"]["expected"] == len(
        under(demo_units(D2), COUNTY, sector="education"))
    assert education["completeness"]["reported"] == 1
    clinics = get(client, f"/v1/rollups/{TOWN}/children", day=D1.isoformat(),
                  unit_type="village_clinic")
    counted = {r["node"]: (r["completeness"]["expected"], r["completeness"]["reported"])
               for r in clinics if r["kind"] == "node"}
    assert counted == {
        v: (len(under(demo_units(D1), v, unit_type="village_clinic")), int(v == VILLAGE))
        for v in demo_children(TOWN)}
    assert [r for r in clinics if r["kind"] == "unit"] == []  # the town's own are not clinics


def test_completeness_lists_page_through(client) -> None:
    whole = get(client, f"/v1/rollups/{COUNTY}/completeness", day=D1.isoformat())
    missing = whole["completeness"]["missing_units"]
    assert len(missing) == whole["completeness"]["missing"] == len(
        under(demo_units(D1), COUNTY)) - 3
    assert {u["unit"] for u in missing} == codes(under(demo_units(D1), COUNTY)) - {
        CL.code, VC.code, PS.code}
    size = 500  # the last page is a partial one
    assert len(missing) % size
    pages = [get(client, f"/v1/rollups/{COUNTY}/completeness", day=D1.isoformat(), limit=size,
                 offset=o)["completeness"]["missing_units"]
             for o in range(0, len(missing), size)]
    assert len(pages) > 2 and [u for page in pages for u in page] == missing


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



@pytest.mark.parametrize("path, params", [
    ("/v1/rollups/430621", {"day": "0.0"}),
    ("/v1/rollups/430621", {"day": "0"}),
    ("/v1/rollups/430621", {"day": "2023-02-01T00:00:00"}),
    ("/v1/rollups/430621", {"start": "86400", "end": "2023-02-01"}),
    ("/v1/rollups/430621/series", {"since": "86400"}),
])
def test_a_day_that_is_not_a_date_is_refused_naming_it(client, path, params) -> None:
    """Read as seconds since 1970, `day=0.0` was 1970-01-01 and answered 200."""
    response = client.get(path, params=params)
    assert response.status_code == 422, response.text
    field = next(iter(params))
    assert [(e["field"], e["code"]) for e in response.json()["errors"]] == [(field, "bad_date")]

def test_status_names_the_filter_and_durable(client) -> None:
    status = get(client, "/v1/status")
    assert (status["filter"], status["durable"]) == ("report.accepted.439990.>",
                                                     "aggregate-439990")


def test_an_old_day_without_reports_counts_its_expected_units_without_building(client,
                                                                              servers) -> None:
    old = date(2023, 1, 10)  # before the lock window: nothing is built for it on reading
    village = get(client, f"/v1/rollups/{VILLAGE}", day=old.isoformat())
    c = village["completeness"]
    n = len(under(demo_units(old), VILLAGE))
    assert (c["expected"], c["reported"], c["missing"]) == (n, 0, n)
    kids = get(client, f"/v1/rollups/{TOWN}/children", day=old.isoformat())
    assert [(r["node"], r["completeness"]["expected"]) for r in kids if r["kind"] == "node"] == [
        (v, len(under(demo_units(old), v))) for v in demo_children(TOWN)]

    async def built() -> int:
        engine = make_engine(servers.database_url, pool_size=1)
        async with make_sessionmaker(engine)() as session:
            found = await session.scalar(text(
                "SELECT count(*) FROM aggregate.days WHERE day = :d"), {"d": old})
        await engine.dispose()
        return found

    assert asyncio.run(built()) == 0


def test_reading_a_recent_day_never_built_writes_nothing(client, servers) -> None:
    """Reads never write: a day that can still receive reports but has had none is counted from
    the registry on the spot; it is built when entered (midnight, its first report), not here."""
    day = date(2023, 1, 30)  # inside the lock window of NOW, no report, never built

    async def tables() -> list[tuple]:
        engine = make_engine(servers.database_url, pool_size=1)
        async with make_sessionmaker(engine)() as session:
            found = [tuple((await session.execute(text(f"""
                SELECT count(*), coalesce(md5(string_agg(CAST(t AS text), ',' ORDER BY
                       CAST(t AS text))), '') FROM {table} t"""))).one())
                for table in ("aggregate.days", "aggregate.node_days")]
        await engine.dispose()
        return found

    before = asyncio.run(tables())
    one_day = {"day": day.isoformat()}
    village = get(client, f"/v1/rollups/{VILLAGE}", **one_day)
    town = get(client, f"/v1/rollups/{TOWN}/completeness", **one_day)
    kids = get(client, f"/v1/rollups/{TOWN}/children", **one_day)
    series = get(client, f"/v1/rollups/{VILLAGE}/series", start="2023-01-29", end=day.isoformat())
    assert asyncio.run(tables()) == before

    expected = under(demo_units(day), VILLAGE)
    c = village["completeness"]
    assert (c["expected"], c["reported"], c["missing"]) == (len(expected), 0, len(expected))
    assert {u["unit"] for u in c["missing_units"]} == codes(expected)
    assert town["completeness"]["missing"] == town["completeness"]["expected"] == len(
        under(demo_units(day), TOWN))
    assert [(r["node"], r["completeness"]["missing"]) for r in kids if r["kind"] == "node"] == [
        (v, len(under(demo_units(day), v))) for v in demo_children(TOWN)]
    assert [d["completeness"]["expected"] for d in series["series"]] == [len(expected)] * 2


READS = [f"/v1/rollups/{COUNTY}", f"/v1/rollups/{COUNTY}/children",
         f"/v1/rollups/{COUNTY}/series", f"/v1/rollups/{COUNTY}/completeness"]


def _refusal(response, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    [error] = response.json()["errors"]
    assert error["field"] == field and error["code"]
    assert error["message_zh"] and error["message_en"]


@pytest.mark.parametrize("path", READS)
def test_reads_need_a_token_inside_the_area(client, servers, path) -> None:
    params = {"start": D1.isoformat()} if path.endswith("/series") else {"day": D1.isoformat()}
    _refusal(client.get(path, params=params, headers={"Authorization": ""}), 401,
             "authorization")
    _refusal(client.get(path, params=params, headers={"Authorization": "Bearer rc_nope"}), 401,
             "authorization")
    # A town's operator reads its town, not the county above it nor a sibling town.
    town = {"Authorization": f"Bearer {issue_token(servers, 'operator', TOWN, '镇值班')}"}
    _refusal(client.get(path, params=params, headers=town), 403, "node")
    sibling = path.replace(COUNTY, "430621104")
    _refusal(client.get(sibling, params=params, headers=town), 403, "node")
    assert client.get(path.replace(COUNTY, TOWN), params=params, headers=town).status_code == 200
    assert client.get(path.replace(COUNTY, VILLAGE), params=params,
                      headers=town).status_code == 200
    # A unit's token reads no rollups, not even its own village's.
    unit = {"Authorization": f"Bearer {issue_token(servers, 'unit', CL.code, '村医')}"}
    _refusal(client.get(path.replace(COUNTY, VILLAGE), params=params, headers=unit), 403,
             "node")


def test_tokens_are_stored_hashed_and_a_revoked_one_reads_nothing(servers) -> None:
    token = issue_token(servers, "operator", COUNTY, "撤销测试")

    async def stored() -> list[tuple]:
        engine = make_engine(servers.database_url, pool_size=1)
        async with make_sessionmaker(engine)() as session:
            rows = (await session.execute(text(
                "SELECT credential_id, token_hash FROM registry.credentials "
                "WHERE holder = '撤销测试'"))).all()
            # No column of the credentials table holds the token itself.
            plain = await session.scalar(text(
                "SELECT count(*) FROM registry.credentials c WHERE strpos(c::text, :t) > 0"),
                {"t": token})
        await engine.dispose()
        assert plain == 0
        return rows

    [(credential_id, token_hash)] = asyncio.run(stored())
    assert token_hash == hash_token(token) and len(token_hash) == 64

    async def revoke_it() -> None:
        engine = make_engine(servers.database_url, pool_size=1)
        async with make_sessionmaker(engine)() as session, session.begin():
            assert await revoke(session, credential_id, utc_now())
        await engine.dispose()

    # No cache, so that the revocation shows at once.
    settings = servers.settings(aggregate_filter="report.accepted.439991.>", auth_cache_s=0)
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(settings, clock=lambda: NOW)) as c:
        assert c.get(f"/v1/rollups/{COUNTY}", params={"day": D1.isoformat()},
                     headers=headers).status_code == 200
        asyncio.run(revoke_it())
        refused = c.get(f"/v1/rollups/{COUNTY}", params={"day": D1.isoformat()},
                        headers=headers)
        _refusal(refused, 401, "authorization")
