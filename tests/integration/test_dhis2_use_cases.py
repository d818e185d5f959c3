"""DHIS2 data value sets in process against real PostgreSQL: ingest's import through the door
(`services.ingest.dhis2`), the units' export, and aggregate's node export fed by the events the
import stored. Two Rollcalls of their own (two databases with the same registry): figures
exported from one and imported into the other, empty, come out equal.

No HTTP server and no broker: the outbox rows are what the relay would publish, and aggregate
applies them as its consumer would (`AggregateContext.apply`). The wire is tested in
test_dhis2_api.py."""

import asyncio
import dataclasses
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rollcall.migrate import upgrade
from services.aggregate import dhis2 as aggregate_dhis2
from services.aggregate.service import AggregateContext
from services.aggregate.views import Span
from services.ingest import dhis2 as ingest_dhis2
from services.ingest import submissions
from services.ingest.models import OutboxRow
from services.ingest.schemas import CorrectionCommand, SubmitReport
from services.ingest.service import IngestContext
from shared import dhis2
from shared.auth import Principal
from shared.catalogue import default_catalogue
from shared.contracts import reports_of
from shared.db import make_engine, make_sessionmaker
from shared.http_auth import Authenticator
from shared.outbox import OutboxRelay
from shared.registry import store
from shared.registry.reference import Reference
from shared.settings import Settings
from tests.conftest import Servers, _fresh_database
from tests.dhis2 import errors_of_export, errors_of_summary
from tests.integration.conftest import ZONE

COUNTY = "430696"  # these tests' own county, in their own databases
TOWN = f"{COUNTY}100"
VILLAGES = [f"{TOWN}001", f"{TOWN}002"]
CLINICS = [f"{v}-C{n}" for v in VILLAGES for n in range(3)]
SCHOOL = f"{VILLAGES[0]}-PS"
OPERATOR = Principal(uuid.UUID(int=21), "operator", COUNTY, "县指挥部")
NOW = datetime(2025, 7, 10, 8, 0, tzinfo=UTC)  # 16:00 in Shanghai
TODAY = NOW.astimezone(ZONE).date()
DAYS = [TODAY - timedelta(days=n) for n in (3, 2, 1)]


def uid(n: int, prefix: str = "R") -> str:
    return f"{prefix}{n:010d}"


METRICS = ["fever", "ili", "nat_tests", "nat_positive", "max_temperature", "enrolled",
           "morning_checks", "noon_checks", "sick_absence"]
CODES = [COUNTY, TOWN, *VILLAGES, *CLINICS, SCHOOL]
MAPPING = "\n".join(
    ["[data_elements]"] + [f'{m} = "{uid(i, "D")}"' for i, m in enumerate(METRICS)]
    + ["[org_units]"] + [f'"{c}" = "{uid(i, "O")}"' for i, c in enumerate(CODES)]) + "\n"


@dataclasses.dataclass
class Rollcall:
    """One Rollcall: its database, ingest's and aggregate's contexts."""

    sessions: async_sessionmaker[AsyncSession]
    ingest: IngestContext
    aggregate: AggregateContext

    async def sql(self, query: str, **params) -> list:
        async with self.sessions() as session:
            return list((await session.execute(text(query), params)).all())

    async def roll_up(self) -> int:
        """What the relay would publish, applied by aggregate as its consumer would."""
        async with self.sessions() as session, session.begin():
            rows = (await session.execute(text(
                "DELETE FROM ingest.outbox WHERE subject LIKE 'report.accepted.%' "
                "RETURNING id, payload"))).all()
        events = [e for _, p in sorted(rows) for e in reports_of(p)]
        if events:
            await self.aggregate.apply(events)
        return len(events)

    async def units_export(self, start: date = DAYS[0], end: date = DAYS[-1]) -> dict:
        figures = await ingest_dhis2.unit_figures(self.ingest, COUNTY, start, end)
        values, unmapped = dhis2.data_values(figures, self.ingest.dhis2)
        assert not unmapped
        return dhis2.data_value_set(values, self.ingest.dhis2)

    async def nodes_export(self, node: str, children: bool = False) -> dict:
        async with self.sessions() as session:
            figures = await aggregate_dhis2.node_figures(
                session, node, Span(DAYS[0], DAYS[-1]), self.aggregate.catalogue,
                self.aggregate.moment(), children)
        values, unmapped = dhis2.data_values(figures, self.aggregate.dhis2)
        assert not unmapped
        return dhis2.data_value_set(values, self.aggregate.dhis2)

    async def import_(self, payload: object, principal: Principal = OPERATOR) -> dict:
        summary = await ingest_dhis2.import_values(self.ingest, payload, principal,
                                                   self.ingest.dhis2)
        status, body = summary.web_message()
        assert errors_of_summary(body) == []
        assert status == body["httpStatusCode"]
        return body["response"]


async def _rollcall(servers: Servers, mapping: Path) -> Rollcall:
    url = await asyncio.to_thread(_fresh_database, servers.database_url)
    await asyncio.to_thread(upgrade, url)
    sessions = make_sessionmaker(make_engine(url, pool_size=4))
    units = [{"code": c, "name": f"测试卫生室{c}", "unit_type": "village_clinic",
              "sector": "health", "node": c.split("-")[0], "cutoff": time(14)} for c in CLINICS]
    units.append({"code": SCHOOL, "name": "测试小学", "unit_type": "primary_school",
                  "sector": "education", "node": VILLAGES[0], "cutoff": time(10)})
    async with sessions() as session, session.begin():
        await store.upsert_nodes(session, [("43", "湖南省"), ("4306", "岳阳市"),
                                           (COUNTY, "导入县"), (TOWN, "导入镇"),
                                           (VILLAGES[0], "一村"), (VILLAGES[1], "二村")])
        await store.upsert_units(session, units, date(2020, 1, 1))
    async with sessions() as session:
        reference = await Reference.load(session)
    settings = Settings(nats_url=servers.nats_url, database_url=url, dhis2_mapping=mapping)
    relay = OutboxRelay(sessions, None, OutboxRow)  # type: ignore[arg-type]  # never run
    catalogue = default_catalogue()
    ingest = IngestContext(settings, lambda: NOW, sessions, catalogue, reference, relay,
                           Authenticator(sessions))
    return Rollcall(sessions, ingest, AggregateContext(settings, lambda: NOW, sessions,
                                                       catalogue))


@pytest.fixture(scope="module")
async def pair(servers: Servers, tmp_path_factory: pytest.TempPathFactory):
    """Rollcall A, with the county's reports of three days, and Rollcall B, empty."""
    path = tmp_path_factory.mktemp("dhis2") / "mapping.toml"
    path.write_text(MAPPING, encoding="utf-8")
    a, b = await _rollcall(servers, path), await _rollcall(servers, path)
    await _fill(a)
    yield a, b


def report(unit: str, day: date, values: dict, **fields):
    body = {"unit": unit, "day": day.isoformat(), "reporter": f"报告人{unit[-2:]}",
            "values": values, **fields}
    return submissions.read(SubmitReport, body, OPERATOR)


async def _fill(a: Rollcall) -> None:
    items = []
    for d, day in enumerate(DAYS):
        for n, clinic in enumerate(CLINICS):
            values = {"fever": (n + d) % 3, "ili": n % 2}
            if n == 1:
                values.update(nat_tests=10 + d, nat_positive=d,
                              max_temperature=[38.5, 38.6, 38.7][d])
            if n == 5:
                values = {"fever": 0, "ili": 0}  # a zero report, its zeros said
            items.append(report(clinic, day, values, **({"note": "今日停诊半天"} if n == 2
                                                         else {})))
        items.append(report(SCHOOL, day, {"enrolled": 420, "morning_checks": 418,
                                          "noon_checks": 417, "sick_absence": 2 + d}))
    outcomes = await submissions.submit_reports(a.ingest, items)
    assert {o.status for o in outcomes} == {"accepted"}, [o.errors for o in outcomes]
    # A correction: the export carries the latest revision only.
    [fixed] = await submissions.correct_reports(a.ingest, [submissions.read(
        CorrectionCommand, {"unit": CLINICS[0], "day": DAYS[1].isoformat(), "reporter": "周",
                            "reason": "漏报一例", "values": {"fever": 4, "ili": 1}},
        OPERATOR)])
    assert fixed.status == "accepted"
    await a.roll_up()


def without_times(payload: dict) -> list[dict]:
    return [{k: v for k, v in dv.items() if k not in ("created", "lastUpdated")}
            for dv in payload["dataValues"]]


async def test_exported_from_one_rollcall_and_imported_into_an_empty_one_the_figures_are_equal(
        pair) -> None:
    a, b = pair
    exported = await a.units_export()
    assert errors_of_export(exported) == []
    values = exported["dataValues"]
    assert len(values) == 3 * (6 * 2 + 3 + 4)
    corrected = [dv for dv in values if dv["orgUnit"] == uid(CODES.index(CLINICS[0]), "O")
                 and dv["period"] == DAYS[1].strftime("%Y%m%d")]
    assert {(dv["dataElement"], dv["value"], dv["storedBy"]) for dv in corrected} == {
        (uid(0, "D"), "4", "周"), (uid(1, "D"), "1", "周")}
    assert {dv.get("comment") for dv in values if dv["orgUnit"] == uid(CODES.index(CLINICS[2]),
                                                                      "O")} == {"今日停诊半天"}
    assert {dv["value"] for dv in values if dv["dataElement"] == uid(4, "D")} == {
        "38.5", "38.6", "38.7"}

    summary = await b.import_(exported)
    assert summary["status"] == "SUCCESS", summary["conflicts"]
    assert summary["importCount"] == {"imported": len(values), "updated": 0, "ignored": 0,
                                      "deleted": 0}
    assert await b.roll_up() == 3 * (len(CLINICS) + 1)

    again = await b.units_export()
    assert errors_of_export(again) == []
    assert without_times(again) == without_times(exported)
    for node, children in ((COUNTY, False), (COUNTY, True), (TOWN, True), (VILLAGES[0], False)):
        from_a, from_b = await a.nodes_export(node, children), await b.nodes_export(node,
                                                                                    children)
        assert errors_of_export(from_a) == []
        assert from_a["dataValues"], node
        assert without_times(from_b) == without_times(from_a), (node, children)
    county = {(dv["period"], dv["dataElement"]): dv["value"]
              for dv in (await b.nodes_export(COUNTY))["dataValues"]}
    # Figures the test computes itself: the county's fever on the last day, its highest
    # temperature (a max, not a sum).
    assert county[(DAYS[2].strftime("%Y%m%d"), uid(0, "D"))] == str(
        sum((n + 2) % 3 for n in range(5)))
    assert county[(DAYS[2].strftime("%Y%m%d"), uid(4, "D"))] == "38.7"

    # Imported again, nothing changes: every value ignored, no revision, no event; the import
    # itself is kept all the same, under its summary's reference.
    reports = await b.sql("SELECT count(*) FROM ingest.reports")
    repeat = await b.import_(exported)
    [kept] = await b.sql("SELECT actor, scope, format, data_values, status, summary "
                         "FROM ingest.dhis2_imports WHERE import_id = :id",
                         id=uuid.UUID(repeat["reference"]))
    assert (kept.actor, kept.scope, kept.format, kept.data_values, kept.status) == (
        "operator:县指挥部", COUNTY, "json", len(values), "SUCCESS")
    assert kept.summary == repeat
    with pytest.raises(Exception, match="append-only"):
        await b.sql("DELETE FROM ingest.dhis2_imports")
    assert repeat["importCount"] == {"imported": 0, "updated": 0, "ignored": len(values),
                                     "deleted": 0}
    assert repeat["status"] == "SUCCESS" and repeat["conflicts"] == []
    assert await b.sql("SELECT count(*) FROM ingest.reports") == reports
    assert await b.roll_up() == 0


async def test_a_bad_value_is_a_conflict_and_the_good_ones_are_kept(pair) -> None:
    _, b = pair
    day = TODAY - timedelta(days=6)
    period = day.strftime("%Y%m%d")
    clinic, school = uid(CODES.index(CLINICS[3]), "O"), uid(CODES.index(SCHOOL), "O")

    def dv(element: str, org_unit: str, value: str, p: str = period) -> dict:
        return {"dataElement": element, "period": p, "orgUnit": org_unit, "value": value}

    payload = {"dataValues": [
        dv(uid(0, "D"), clinic, "2"),                       # 0 good
        dv(uid(1, "D"), clinic, "-1"),                      # 1 negative
        dv("Zz000000000", clinic, "5"),                     # 2 unknown data element
        dv(uid(0, "D"), "Qq000000000", "1"),                # 3 unknown org unit
        dv(uid(0, "D"), school, "1", "2025W20"),            # 4 not a daily period
        dv(uid(0, "D"), school, "1", (TODAY + timedelta(days=1)).strftime("%Y%m%d")),  # 5
        dv(uid(5, "D"), school, "abc"),                     # 6 not a number
        dv(uid(6, "D"), school, "400"), dv(uid(6, "D"), school, "401"),  # 7, 8 the same value
        dv(uid(7, "D"), school, "399"),                     # 9 good
        dv(uid(8, "D"), school, "3"),                       # 10 good
    ]}
    rejections = await b.sql("SELECT count(*) FROM ingest.rejections")
    summary = await b.import_(payload)
    assert summary["status"] == "WARNING"
    by_index = {i: c for c in summary["conflicts"] for i in c["indexes"]}
    assert {i: c.get("errorCode") for i, c in by_index.items()} == {
        1: "E8122", 2: "E8103", 3: "E8107", 4: "E7611", 5: "E8031", 6: "E8122", 7: "E8128",
        8: "E8128"}
    assert by_index[1]["objects"]["code"] == "negative" and by_index[1]["object"] == uid(1, "D")
    assert by_index[3]["objects"]["code"] == "unknown_unit"
    assert by_index[5]["objects"]["code"] == "future_day"
    assert by_index[4]["value"] == ("Period not valid: `2025W20`: Rollcall takes daily periods "
                                    "(yyyyMMdd)")
    assert summary["rejectedIndexes"] == sorted(by_index)
    assert summary["importCount"]["imported"] == 11 - len(by_index)
    assert summary["importCount"]["ignored"] == len(by_index)
    # The good values went in, each with its unit and day; refusals were kept (the door's).
    stored = {(u, d): v for u, d, v in await b.sql(
        "SELECT unit_code, day, values FROM ingest.reports WHERE day = :day", day=day)}
    assert stored[(CLINICS[3], day)] == {"fever": 2}
    assert await b.sql("SELECT count(*) FROM ingest.rejections") > rejections

    # The same payload again: the same conflicts, nothing written.
    reports = await b.sql("SELECT count(*) FROM ingest.reports")
    repeat = await b.import_(payload)
    assert repeat["importCount"]["imported"] == 0 and repeat["importCount"]["updated"] == 0
    # The good values are stored as sent: a warning, not an error (DHIS2 counts them written).
    assert repeat["status"] == "WARNING" and repeat["importCount"]["ignored"] == 11
    assert sorted(repeat["rejectedIndexes"]) == sorted(by_index)
    assert await b.sql("SELECT count(*) FROM ingest.reports") == reports


async def test_a_changed_value_is_an_update_recorded_as_a_correction(pair) -> None:
    _, b = pair
    day = TODAY - timedelta(days=8)
    clinic = uid(CODES.index(CLINICS[4]), "O")

    def payload(fever: str, **more: str) -> dict:
        values = [{"dataElement": uid(0, "D"), "period": day.strftime("%Y%m%d"),
                   "orgUnit": clinic, "value": fever, "storedBy": "dhis2-user"}]
        values += [{"dataElement": uid(METRICS.index(m), "D"), "period": day.strftime("%Y%m%d"),
                    "orgUnit": clinic, "value": v} for m, v in more.items()]
        return {"dataValues": values}

    assert (await b.import_(payload("2")))["importCount"]["imported"] == 1
    summary = await b.import_(payload("3", ili="1"))
    assert summary["importCount"] == {"imported": 1, "updated": 1, "ignored": 0, "deleted": 0}
    rows = await b.sql("SELECT revision, values, reporter, reason, actor FROM ingest.reports "
                       "WHERE unit_code = :u AND day = :d ORDER BY revision",
                       u=CLINICS[4], d=day)
    assert [(r.revision, r.values, r.reporter) for r in rows] == [
        (1, {"fever": 2}, "dhis2-user"), (2, {"fever": 3, "ili": 1}, "dhis2-user")]
    assert rows[1].reason == ingest_dhis2.REASON and rows[1].actor == "operator:县指挥部"
    # A value DHIS2 leaves out is kept (DHIS2 upserts value by value).
    summary = await b.import_(payload("3"))
    assert summary["importCount"] == {"imported": 0, "updated": 0, "ignored": 1, "deleted": 0}


async def test_what_is_not_a_data_value_set_is_refused_whole_and_kept(pair) -> None:
    _, b = pair
    rejections = await b.sql("SELECT count(*) FROM ingest.rejections")
    for payload in ([1, 2], {"values": []}, "text"):
        summary = await b.import_(payload)
        assert summary["status"] == "ERROR"
        assert summary["conflicts"][0]["objects"]["code"] == "not_a_data_value_set"
    [[after]] = await b.sql("SELECT count(*) FROM ingest.rejections")
    assert after == rejections[0][0] + 3


async def test_an_operator_imports_only_inside_its_area(pair) -> None:
    _, b = pair
    town_operator = Principal(uuid.UUID(int=22), "operator", f"{COUNTY}199", "别镇值班")
    summary = await b.import_({"dataValues": [{
        "dataElement": uid(0, "D"), "period": (TODAY - timedelta(days=9)).strftime("%Y%m%d"),
        "orgUnit": uid(CODES.index(CLINICS[0]), "O"), "value": "1"}]}, town_operator)
    assert summary["status"] == "ERROR"
    [conflict] = summary["conflicts"]
    assert (conflict["errorCode"], conflict["objects"]["code"]) == ("E8011", "outside_area")
