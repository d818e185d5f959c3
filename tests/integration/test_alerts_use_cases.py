"""The alerts' use cases called in process against the real PostgreSQL of the fixtures, without
HTTP or a broker: opening from cases, the clock's claims and steps, acknowledge and close with
their history and outbox rows; the one boundary of "past the deadline" in SQL and in Python;
and a case arriving exactly at its deadline, on time at the door and in its alert."""

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import literal, select, text

from services.alerts import detection, queries, repository
from services.alerts.machine import WrongState
from services.alerts.models import TZ, AlertRow
from services.ingest import submissions
from services.ingest.schemas import SubmitCase
from services.ingest.service import IngestContext
from shared import auth, deadlines
from shared.catalogue import default_catalogue
from shared.contracts import CaseReported
from shared.db import make_engine, make_sessionmaker
from shared.http_auth import Authenticator
from shared.registry.reference import Reference
from shared.rules import load_rules
from shared.settings import Settings
from tests.integration.alerts_harness import (
    BASE_DAY,
    ZONE,
    alerts_database,
    case,
    issue_operator,
    local,
)

VILLAGE, TOWN, OTHER_TOWN = "430621108001", "430621108", "430621104"
CLINIC = f"{VILLAGE}-CL"
RULES = load_rules()
MIN, SEC, TICK = timedelta(minutes=1), timedelta(seconds=1), timedelta(microseconds=1)


@pytest.fixture(scope="module")
def db(servers) -> str:
    return alerts_database(servers)


@pytest.fixture
async def sessions(db):
    engine = make_engine(db, pool_size=2)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def principal(sessions, db: str, scope: str) -> auth.Principal:
    token = await issue_operator(db, scope)
    async with sessions() as session:
        who = await auth.authenticate(session, token)
    assert who is not None
    return who


async def changes_of(sessions, alert_id: uuid.UUID) -> list[tuple]:
    """(change, at, actor, reason) of each history row, and whether the outbox holds its
    event."""
    async with sessions() as session:
        rows = (await session.execute(text(
            "SELECT t.change, t.at, t.actor, t.reason, o.id IS NOT NULL AS queued "
            "FROM alerts.transitions t LEFT JOIN alerts.outbox o "
            "ON o.msg_id = 'alert:' || t.alert_id || ':' || t.seq "
            "WHERE t.alert_id = :a ORDER BY t.seq"), {"a": alert_id})).all()
    return [(r.change, r.at.astimezone(ZONE), r.actor, r.reason, r.queued) for r in rows]


async def test_past_the_deadline_means_the_same_in_sql_and_in_python(sessions) -> None:
    found = local(BASE_DAY + timedelta(days=100), 9)
    deadline = found + 120 * MIN
    alone = "430621108099"  # a village of this test's own
    async with sessions() as session, session.begin():
        [opened] = await detection.apply_cases(
            session, [case(f"{alone}-CL", alone, "village_clinic", found)], RULES, ZONE, found)
    assert opened.deadline == deadline
    only = queries.Selection(alone, exact=True, status="open")
    for moment in (deadline - TICK, deadline, deadline + TICK):
        expected = deadlines.is_past(deadline, moment)
        async with sessions() as session:
            in_sql = await session.scalar(select(queries.is_past_sql(literal(deadline, TZ),
                                                                     moment)))
            row = await session.get(AlertRow, opened.alert_id)
            assert row is not None
            counted = [(c.alerts, c.overdue) for c in await queries.counts(session, only, moment)]
            in_view = queries.view(row, moment).overdue
            # The clock's claim, at the same distance from the warning's moment.
            claimable = row in await repository.claim_due(session, moment - 30 * MIN, 10_000)
        assert in_sql is expected and in_view is expected, moment
        assert claimable is expected and counted == [(1, int(expected))], moment


async def test_acknowledge_and_close_in_process_with_history_and_events(sessions, db) -> None:
    found = local(BASE_DAY + timedelta(days=102), 9)
    town, other = await principal(sessions, db, TOWN), await principal(sessions, db, OTHER_TOWN)
    async with sessions() as session, session.begin():
        [opened] = await detection.apply_cases(
            session, [case(CLINIC, VILLAGE, "village_clinic", found)], RULES, ZONE,
            found + 5 * MIN)
    alert_id = opened.alert_id

    # The clock claims the alert once the warning's moment has passed, not at it.
    for moment, taken in ((found + 90 * MIN, 0), (found + 90 * MIN + SEC, 1)):
        async with sessions() as session, session.begin():
            rows = [r for r in await repository.claim_due(session, moment, 10_000)
                    if r.alert_id == alert_id]
            assert await repository.advance(session, rows, moment, RULES) == taken

    with pytest.raises(repository.OutsideArea):
        async with sessions() as session, session.begin():
            await repository.acknowledge(session, alert_id, other, None, found + 100 * MIN,
                                         RULES)
    with pytest.raises(repository.AlertNotFound):
        async with sessions() as session, session.begin():
            await repository.close(session, uuid.uuid4(), town, "other", "x", found, RULES)
    # At the deadline itself the operator is in time: nothing escalates first.
    async with sessions() as session, session.begin():
        acked = await repository.acknowledge(session, alert_id, town, "已联系村委会",
                                             found + 120 * MIN, RULES)
    assert acked.status == "acknowledged" and acked.responsible == VILLAGE
    with pytest.raises(WrongState):
        async with sessions() as session, session.begin():
            await repository.acknowledge(session, alert_id, town, None, found + 121 * MIN,
                                         RULES)
    async with sessions() as session, session.begin():
        closed = await repository.close(session, alert_id, town, "referred", "已转诊",
                                        found + 130 * MIN, RULES)
    assert closed.status == "closed" and closed.next_at is None

    operator = f"值班员-{TOWN}"
    assert await changes_of(sessions, alert_id) == [
        ("opened", found + 5 * MIN, "system", None, True),
        ("warned", found + 90 * MIN + SEC, "system", "30 minutes left", True),
        ("acknowledged", found + 120 * MIN, operator, "已联系村委会", True),
        ("closed", found + 130 * MIN, operator, "已转诊", True)]
    async with sessions() as session:
        row = await session.get(AlertRow, alert_id)
    assert row is not None and (row.seq, row.stage, row.outcome) == (4, 1, "referred")


class _Unpublished:
    """Ingest's relay for a test that reads the outbox instead: nothing is published."""

    def wake(self) -> None:
        pass


async def test_a_case_arriving_exactly_two_hours_after_it_was_found_is_on_time_everywhere(
        servers, sessions, db) -> None:
    """The door's receipt and the alert agree, at the deadline and one second after it."""
    found = local(BASE_DAY + timedelta(days=104), 9)
    moments = {"on_time": found + 120 * MIN, "late": found + 120 * MIN + SEC}
    who = await principal(sessions, db, "430621")
    async with sessions() as session:
        reference = await Reference.load(session)
    settings = Settings(nats_url=servers.nats_url, database_url=db)
    events: dict[str, CaseReported] = {}
    for name, arrival in moments.items():
        ingest = IngestContext(settings, lambda arrival=arrival: arrival, sessions,
                               default_catalogue(), reference, _Unpublished(),  # type: ignore[arg-type]
                               Authenticator(sessions))
        body = {"unit": CLINIC, "kind": "fever", "found_at": found.isoformat(),
                "temperature": 38.4, "person_ref": f"P-{name}"}
        [outcome] = await submissions.report_cases(
            ingest, [submissions.read(SubmitCase, body, who)])
        assert outcome.status == "accepted", outcome.errors
        receipt = outcome.receipt
        assert receipt is not None and receipt.late is (name == "late")
        async with sessions() as session:
            payloads = (await session.execute(text(
                "SELECT payload FROM ingest.outbox WHERE subject LIKE 'case.reported.%'"))
            ).scalars()
            events[name] = next(e for e in map(CaseReported.model_validate_json, payloads)
                                if e.case_id == receipt.case_id)

    for name, arrival in moments.items():
        async with sessions() as session, session.begin():
            [alert] = await detection.apply_cases(session, [events[name]], RULES, ZONE,
                                                  arrival)
        late = name == "late"
        assert alert.late is late and events[name].late is late
        assert [(c, reason) for c, _, _, reason, _ in await changes_of(sessions, alert.alert_id)
                ] == ([("opened", "late"), ("escalated", "late")] if late
                      else [("opened", None), ("warned", "0 minutes left")])
