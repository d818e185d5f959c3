"""Ingest's use cases (`services.ingest.submissions`) called in process against real PostgreSQL:
idempotency, corrections, lateness, validation refusals and case receipts, with a clock the test
sets. No HTTP server and no broker: the outbox rows are what would be published, and the relay
is built but never started.

The tests write to a database of their own on the session's server, holding a small test county,
so that no running service publishes (and deletes) their outbox rows meanwhile."""

import asyncio
import dataclasses
import json
import uuid
from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rollcall.migrate import upgrade
from services.ingest import ledger, submissions
from services.ingest.models import OutboxRow
from services.ingest.schemas import CorrectionCommand, SubmitCase, SubmitReport
from services.ingest.service import IngestContext
from services.ingest.submissions import Incoming, Outcome, read, read_json
from shared.auth import Principal
from shared.catalogue import default_catalogue
from shared.contracts import ACCEPTED_BATCH_MAX, accepted_batch_id, reports_of
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
    units.append({"code": f"{VILLAGE}-LATER", "name": "后年启用的诊所",
                  "unit_type": "private_clinic", "sector": "health", "node": VILLAGE,
                  "active_from": date(2030, 1, 1)})
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
    relay = OutboxRelay(sessions, None, OutboxRow)  # type: ignore[arg-type]  # never run
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


@pytest.mark.parametrize("identity", ["report_id", "revision", "neither"])
async def test_identical_corrections_at_the_same_moment_are_one_revision(
        world: World, identity: str) -> None:
    """A retry answers 200 with the stored result however it races: two identical corrections
    sent at once (naming their report_id, their revision, or neither) store one revision."""
    ctx = world.ctx()
    for attempt in range(6):
        unit = clinic(100 + 10 * ["report_id", "revision", "neither"].index(identity) + attempt)
        [first] = await submissions.submit_reports(ctx, [report(unit, values={"fever": 1})])
        assert first.code == 201
        names = {"report_id": {"report_id": str(uuid.uuid4())}, "revision": {"revision": 2},
                 "neither": {}}[identity]
        both = await asyncio.gather(*(submissions.correct_reports(ctx, [correction(
            unit, values={"fever": 0}, **names)]) for _ in range(2)))
        outcomes = sorted((o for [o] in both), key=lambda o: o.code)
        assert [(o.status, o.code) for o in outcomes] == [("duplicate", 200), ("accepted", 201)]
        assert len({o.receipt.report_id for o in outcomes}) == 1
        assert {o.receipt.revision for o in outcomes} == {2}
        assert await outbox(world, f"report:{unit}:%") == [
            f"report:{unit}:{TODAY.isoformat()}:1", f"report:{unit}:{TODAY.isoformat()}:2"]


async def rejection(world: World, outcome: Outcome) -> dict:
    """The kept rejection of a refused outcome, and whether its event is queued."""
    assert outcome.status == "rejected" and outcome.rejection_id is not None
    [row] = await world.sql(
        "SELECT r.kind, r.unit_code, r.errors, r.payload, r.actor, r.source, "
        "       (SELECT count(*) FROM ingest.outbox o WHERE o.msg_id = :msg_id) AS queued "
        "FROM ingest.rejections r WHERE r.rejection_id = :id",
        id=outcome.rejection_id, msg_id=f"rejected:{outcome.rejection_id}")
    return row._asdict()


def assert_bilingual(outcome: Outcome) -> None:
    assert outcome.errors
    for e in outcome.errors:
        assert e.field and e.code and e.message_zh and e.message_en, e
        assert e.message_zh != e.message_en, e


# -- idempotency --------------------------------------------------------------------------


async def test_a_retry_returns_the_original_and_queues_nothing(world: World) -> None:
    ctx, unit = world.ctx(), clinic(1)
    report_id = str(uuid.uuid4())
    sent = {"values": {"fever": 3}, "report_id": report_id}
    [first] = await submissions.submit_reports(ctx, [report(unit, **sent)])
    assert (first.status, first.code) == ("accepted", 201)
    later = world.ctx(NOW + timedelta(minutes=5))
    for retry in (report(unit, **sent), report(unit, values={"fever": 3})):  # by id, by content
        [again] = await submissions.submit_reports(later, [retry])
        assert (again.status, again.code) == ("duplicate", 200)
        assert str(again.receipt.report_id) == report_id
        assert again.receipt.submitted_at == first.receipt.submitted_at
    [reused] = await submissions.submit_reports(ctx, [report(clinic(2), **sent)])
    assert reused.code == 409 and errors_of(reused) == {("report_id", "id_reused")}
    [other] = await submissions.submit_reports(ctx, [report(unit, values={"fever": 4})])
    assert other.code == 409 and errors_of(other) == {("day", "already_reported")}
    assert_bilingual(other)
    assert (await rejection(world, other))["queued"] == 1  # a conflict is kept like any refusal
    assert await outbox(world, f"report:{unit}:%") == [f"report:{unit}:{TODAY}:1"]


async def test_repeats_within_one_batch_are_judged_against_the_first(world: World) -> None:
    ctx, unit = world.ctx(), clinic(3)
    outcomes = await submissions.submit_reports(ctx, [
        report(unit, values={"fever": 1}), report(unit, values={"fever": 1}),
        report(unit, values={"fever": 2}), report(clinic(4), values={})])
    assert [(o.status, o.code) for o in outcomes] == [
        ("accepted", 201), ("duplicate", 200), ("rejected", 409), ("accepted", 201)]
    assert outcomes[1].receipt.report_id == outcomes[0].receipt.report_id
    assert outcomes[3].receipt.zero is True


# -- accepted events: a village's batch in one message ------------------------------------


async def test_a_villages_reports_of_one_transaction_travel_in_one_bounded_message(
        world: World) -> None:
    """One outbox row (one `report.accepted` message, the contract's v2) per village and
    transaction, at most ACCEPTED_BATCH_MAX reports each, its id derived from the reports it
    carries; a retry of the batch queues nothing."""
    ctx = world.ctx()
    days = [TODAY - timedelta(days=d) for d in (3, 4)]
    units = [clinic(n) for n in range(200)] + [school(n) for n in range(50)]
    mine = [report(u, d, values={"fever": 1}) for d in days for u in units]
    neighbour = report(f"{OTHER_VILLAGE}-C000", days[0], values={})
    [(before,)] = await world.sql("SELECT coalesce(max(id), 0) FROM ingest.outbox")
    outcomes = await submissions.submit_reports(ctx, [*mine, neighbour])
    assert {o.code for o in outcomes} == {201}
    rows = await world.sql(
        "SELECT subject, msg_id, payload FROM ingest.outbox WHERE subject LIKE :s AND id > :id "
        "ORDER BY id", s=f"report.accepted.{COUNTY}.{TOWN}.%", id=before)
    carried = {row.subject: [] for row in rows}
    for row in rows:
        reports = reports_of(row.payload)
        assert 1 <= len(reports) <= ACCEPTED_BATCH_MAX
        assert {r.subject for r in reports} == {row.subject}
        assert row.msg_id == accepted_batch_id([r.msg_id for r in reports])
        carried[row.subject] += reports
    mine_subject = f"report.accepted.{COUNTY}.{TOWN}.{VILLAGE}"
    assert [len(reports_of(r.payload)) for r in rows if r.subject == mine_subject] == [
        ACCEPTED_BATCH_MAX, len(mine) - ACCEPTED_BATCH_MAX]
    assert [(r.unit, r.day) for r in carried[mine_subject]] == [
        (i.parsed.unit, i.parsed.day) for i in mine]  # in the order they were sent
    [lone] = [r for r in rows if r.subject != mine_subject]
    assert lone.msg_id == f"report:{OTHER_VILLAGE}-C000:{days[0].isoformat()}:1"
    again = await submissions.submit_reports(world.ctx(NOW + timedelta(minutes=1)), mine)
    assert {o.status for o in again} == {"duplicate"}
    assert len(await world.sql("SELECT 1 FROM ingest.outbox WHERE id > :id",
                               id=before)) == len(rows)


# -- corrections --------------------------------------------------------------------------


async def test_a_correction_is_a_new_revision_with_who_and_why(world: World) -> None:
    unit, day = clinic(10), TODAY - timedelta(days=1)
    ctx = world.ctx()
    [first] = await submissions.submit_reports(ctx, [report(
        unit, day, values={"home_observation": 4})])
    assert first.receipt.late is True  # a day after its cutoff: 迟报
    fix = {"values": {"home_observation": 2}, "reason": "两人解除观察", "revision": 2}
    [second] = await submissions.correct_reports(ctx, [correction(unit, day, **fix)])
    assert (second.code, second.receipt.revision) == (201, 2)
    assert second.receipt.late is True  # timeliness is the first report's
    [retry] = await submissions.correct_reports(ctx, [correction(unit, day, **fix)])
    assert retry.code == 200 and retry.receipt.report_id == second.receipt.report_id
    [clash] = await submissions.correct_reports(ctx, [correction(
        unit, day, **{**fix, "values": {"home_observation": 1}})])
    assert clash.code == 409 and errors_of(clash) == {("revision", "revision_conflict")}
    [skip] = await submissions.correct_reports(ctx, [correction(unit, day, **{**fix,
                                                                        "revision": 7})])
    assert skip.code == 409 and errors_of(skip) == {("revision", "revision_conflict")}
    unnumbered = {"values": {"home_observation": 1}, "reason": "又解除一人"}
    [third] = await submissions.correct_reports(ctx, [correction(unit, day, **unnumbered)])
    assert (third.code, third.receipt.revision) == (201, 3)
    [again] = await submissions.correct_reports(ctx, [correction(unit, day, **unnumbered)])
    assert (again.status, again.receipt.revision) == ("duplicate", 3)
    [nothing] = await submissions.correct_reports(ctx, [correction(unit, TODAY, **unnumbered)])
    assert nothing.code == 404 and errors_of(nothing) == {("day", "no_report")}
    async with world.sessions() as session:
        history = await ledger.history(session, unit, day)
    assert [(r.revision, r.values, r.reason, r.actor) for r in history] == [
        (1, {"home_observation": 4}, None, "operator:县指挥部值班"),
        (2, {"home_observation": 2}, "两人解除观察", "operator:县指挥部值班"),
        (3, {"home_observation": 1}, "又解除一人", "operator:县指挥部值班")]
    assert await outbox(world, f"report:{unit}:%") == [
        f"report:{unit}:{day}:{n}" for n in (1, 2, 3)]


async def test_past_the_lock_window_only_an_operator_writes(world: World) -> None:
    unit, ctx = clinic(11), world.ctx()
    own = Principal(uuid.uuid4(), "unit", unit, "黄医生")
    old = TODAY - timedelta(days=ctx.settings.lock_days + 1)
    [locked] = await submissions.submit_reports(ctx, [report(unit, old, own)])
    assert locked.code == 422 and errors_of(locked) == {("day", "day_locked")}
    [written] = await submissions.submit_reports(ctx, [report(unit, old)])
    assert written.code == 201
    fix = {"values": {"fever": 0}, "reason": "误报"}
    [refused] = await submissions.correct_reports(ctx, [correction(unit, old, own, **fix)])
    assert errors_of(refused) == {("day", "day_locked")}
    [corrected] = await submissions.correct_reports(ctx, [correction(unit, old, **fix)])
    assert corrected.code == 201


# -- lateness ------------------------------------------------------------------------------


async def test_a_report_at_its_cutoff_is_on_time_and_after_it_late(world: World) -> None:
    """迟报 means after the cutoff: a school's 10:00 includes 10:00:00 itself. A zero report
    after the cutoff is late too, like any report (it still counts as reported)."""
    at_cutoff = datetime.combine(TODAY, time(10), tzinfo=ZONE)
    [on_time] = await submissions.submit_reports(world.ctx(at_cutoff), [report(school(1))])
    assert (on_time.code, on_time.receipt.late, on_time.receipt.zero) == (201, False, True)
    just_after = at_cutoff + timedelta(microseconds=1)
    [late] = await submissions.submit_reports(world.ctx(just_after), [
        report(school(2), values={"fever": 0, "sick_absence": 0})])
    assert (late.code, late.receipt.late, late.receipt.zero) == (201, True, True)
    [fixed] = await submissions.correct_reports(world.ctx(at_cutoff + timedelta(hours=3)), [
        correction(school(1), values={"sick_absence": 2})])
    assert (fixed.receipt.revision, fixed.receipt.late) == (2, False)


# -- who may write --------------------------------------------------------------------------


async def test_a_credential_writes_only_within_its_area_and_the_refusal_is_kept(
        world: World) -> None:
    ctx = world.ctx()
    own = Principal(uuid.uuid4(), "unit", clinic(20), "毛田镇医生")
    village = Principal(uuid.uuid4(), "operator", VILLAGE, "村值班")
    [mine] = await submissions.submit_reports(ctx, [report(clinic(20), principal=own)])
    assert mine.code == 201
    for principal, unit in ((own, clinic(21)), (village, f"{OTHER_VILLAGE}-C000")):
        [refused] = await submissions.submit_reports(ctx, [report(unit, principal=principal)])
        assert refused.code == 403 and errors_of(refused) == {("unit", "outside_area")}
        kept = await rejection(world, refused)
        assert (kept["unit_code"], kept["payload"]["unit"], kept["queued"]) == (unit, unit, 1)
        assert kept["actor"] == f"{principal.kind}:{principal.holder}"
    [inside] = await submissions.submit_reports(ctx, [report(clinic(22), principal=village)])
    assert inside.code == 201


async def test_without_a_credential_nothing_is_stored(world: World) -> None:
    [outcome] = await submissions.submit_reports(world.ctx(), [report(clinic(23),
                                                                      principal=None)])
    assert outcome.code == 401 and errors_of(outcome) == {("authorization", "unauthenticated")}
    assert await outbox(world, f"report:{clinic(23)}:%") == []


# -- validation: every refusal names the field and is kept ---------------------------------


@pytest.mark.parametrize("change, expected", [
    ({"unit": "430698199001-XX"}, {("unit", "unknown_unit")}),
    ({"unit": f"{VILLAGE}-LATER"}, {("unit", "unit_inactive")}),
    ({"values": {"fevers": 1}}, {("values.fevers", "unknown_metric")}),
    ({"values": {"fever": -2}}, {("values.fever", "negative")}),
    ({"values": {"fever": 1.5}}, {("values.fever", "not_integer")}),
    ({"values": {"fever": "3"}}, {("values.fever", "not_a_number")}),
    ({"values": {"fever": True}}, {("values.fever", "not_a_number")}),
    ({"values": {"nat_tests": 3, "nat_positive": 4}},
     {("values.nat_positive", "positives_le_tests")}),
    ({"values": {"max_temperature": 47.5}}, {("values.max_temperature", "out_of_range")}),
    ({"day": (TODAY + timedelta(days=1)).isoformat()}, {("day", "future_day")}),
    ({"day": "2026-02-30"}, {("day", "bad_date")}),
    ({"reporter": ""}, {("reporter", "too_short")}),
    ({"reporter": "a\x00b"}, {("reporter", "bad_characters")}),
    ({"surprise": 1}, {("surprise", "unknown_field")}),
    ({"report_id": "not-a-uuid"}, {("report_id", "bad_uuid")}),
])
async def test_bad_reports_name_field_and_code_and_are_kept(world: World, change: dict,
                                                            expected: set) -> None:
    body = {"unit": clinic(30), "day": TODAY.isoformat(), "reporter": "x",
            "values": {"fever": 1}, **change}
    item = read_json(SubmitReport, json.dumps(body).encode(), OPERATOR)
    [outcome] = await submissions.submit_reports(world.ctx(), [item])
    assert outcome.code == 422 and errors_of(outcome) == expected
    assert_bilingual(outcome)
    kept = await rejection(world, outcome)
    assert kept["payload"] == json.loads(json.dumps(body).replace("\\u0000", "\\\\u0000"))
    assert {(e["field"], e["code"]) for e in kept["errors"]} == expected
    assert (kept["kind"], kept["source"], kept["queued"]) == ("report", "http", 1)


async def test_a_body_that_is_not_json_is_refused_and_kept(world: World) -> None:
    item = read_json(SubmitReport, b'{"unit": "x", "day": ', OPERATOR)
    [outcome] = await submissions.submit_reports(world.ctx(), [item])
    assert outcome.code == 422 and errors_of(outcome) == {("body", "invalid_json")}
    kept = await rejection(world, outcome)
    assert kept["payload"] == {"raw": '{"unit": "x", "day": ', "bytes": 21}
    fix = read_json(CorrectionCommand, b"[1, 2]", OPERATOR,
                    path={"unit": clinic(31), "day": "2026-13-01"})
    [outcome] = await submissions.correct_reports(world.ctx(), [fix])
    assert errors_of(outcome) == {("body", "not_an_object")}
    kept = await rejection(world, outcome)
    assert kept["payload"] == {"body": [1, 2], "unit": clinic(31), "day": "2026-13-01"}


async def test_a_correction_names_its_unit_and_day_in_the_address_only(world: World) -> None:
    body = {"unit": clinic(32), "reporter": "x", "reason": "误报", "values": {}}
    item = read_json(CorrectionCommand, json.dumps(body).encode(), OPERATOR,
                     path={"unit": clinic(33), "day": "not-a-day"})
    [outcome] = await submissions.correct_reports(world.ctx(), [item])
    assert errors_of(outcome) == {("unit", "unknown_field"), ("day", "bad_date")}


# -- cases --------------------------------------------------------------------------------


def case(unit: str, found_at: datetime | str, **fields) -> Incoming:
    body = {"unit": unit, "kind": "fever", "temperature": 38.6, "symptoms": ["cough"],
            "person_ref": "P-7f3a9c", **fields,
            "found_at": found_at if isinstance(found_at, str) else found_at.isoformat()}
    return read(SubmitCase, body, OPERATOR)


async def test_cases_open_the_two_hour_clock(world: World) -> None:
    """A case found more than two hours before it arrives is late; at exactly two hours it met
    the rule. A retry answers with the stored case and queues nothing."""
    ctx, unit = world.ctx(), clinic(40)
    fresh = case(unit, NOW - timedelta(minutes=30))
    stale = case(unit, (NOW - timedelta(hours=3)).astimezone(ZONE).replace(tzinfo=None)
                 .isoformat(), kind="ili", temperature=None, person_ref="P-0001",
                 symptoms=["cough", "sore_throat"])  # no offset: local time, as clinics write
    exactly = case(unit, NOW - timedelta(hours=2), person_ref="P-0002")
    first, late, on_the_dot = await submissions.report_cases(ctx, [fresh, stale, exactly])
    assert (first.code, first.receipt.late) == (201, False)
    assert (late.code, late.receipt.late) == (201, True)
    assert (on_the_dot.code, on_the_dot.receipt.late) == (201, False)
    assert first.receipt.deadline == first.receipt.found_at + timedelta(hours=2)
    assert late.receipt.found_at == NOW - timedelta(hours=3)
    [retry] = await submissions.report_cases(world.ctx(NOW + timedelta(minutes=1)), [fresh])
    assert (retry.code, retry.receipt.case_id) == (200, first.receipt.case_id)
    assert retry.receipt.received_at == NOW
    rows = await world.sql("SELECT msg_id, subject, payload FROM ingest.outbox "
                           "WHERE msg_id = ANY(:ids) ORDER BY id", ids=[
                               f"case:{o.receipt.case_id}" for o in (first, late, on_the_dot)])
    assert [r.subject for r in rows] == [f"case.reported.{COUNTY}.{TOWN}.{VILLAGE}"] * 3
    event = json.loads(rows[0].payload)
    assert (event["node"], event["temperature"], event["person_ref"]) == (
        VILLAGE, 38.6, "P-7f3a9c")
    assert json.loads(rows[1].payload)["late"] is True


async def test_a_case_id_used_for_another_case_is_refused(world: World) -> None:
    ctx, case_id = world.ctx(), str(uuid.uuid4())
    [first] = await submissions.report_cases(ctx, [case(clinic(41), NOW, case_id=case_id)])
    assert first.code == 201
    [other] = await submissions.report_cases(ctx, [case(clinic(41), NOW, case_id=case_id,
                                                        person_ref="P-2")])
    assert other.code == 409 and errors_of(other) == {("case_id", "id_reused")}


@pytest.mark.parametrize("change, expected", [
    ({"person_ref": "张三"}, {("person_ref", "not_pseudonymous")}),
    ({"person_ref": "43062119900101123X"}, {("person_ref", "not_pseudonymous")}),
    ({"person_ref": "13812345678"}, {("person_ref", "not_pseudonymous")}),
    ({"temperature": 51.0}, {("temperature", "temperature_out_of_range")}),
    ({"temperature": 25}, {("temperature", "temperature_out_of_range")}),
    ({"temperature": 36.6}, {("temperature", "not_a_fever")}),
    ({"temperature": None}, {("temperature", "missing")}),
    ({"kind": "ili", "symptoms": []}, {("symptoms", "missing")}),
    ({"kind": "cold"}, {("kind", "not_allowed")}),
    ({"found_at": (NOW + timedelta(hours=1)).isoformat()}, {("found_at", "future_time")}),
    ({"found_at": "yesterday"}, {("found_at", "bad_time")}),
    ({"unit": "nowhere"}, {("unit", "unknown_unit")}),
    ({"name": "张三"}, {("name", "unknown_field")}),
    ({"second_temperature": 47.0}, {("second_temperature", "temperature_out_of_range")}),
    ({"kind": "ili", "symptoms": ["rash"], "temperature": None, "second_temperature": 37.0},
     {("second_temperature", "without_first")}),
    ({"travel_risk_area": "maybe"}, {("travel_risk_area", "not_a_boolean")}),
    ({"action": "ignored"}, {("action", "not_allowed")}),
])
async def test_bad_cases_name_field_and_code_and_are_kept(world: World, change: dict,
                                                          expected: set) -> None:
    fields = {"unit": clinic(42), "found_at": NOW.isoformat(), **change}
    [outcome] = await submissions.report_cases(world.ctx(), [case(**fields)])
    assert outcome.code == 422 and errors_of(outcome) == expected
    assert_bilingual(outcome)
    kept = await rejection(world, outcome)
    assert (kept["kind"], kept["queued"]) == ("case", 1)
