"""The ledger of report revisions, the cases and the kept rejections.

Accepting stores the row and its event in the outbox in one transaction; the relay publishes
after commit, so accepted means stored and (eventually, exactly once) published. Batches are
written with one statement per table whatever their size: rows go in as one JSON parameter, the
unique keys decide what is new (`ON CONFLICT DO NOTHING`), and only what was inserted gets an
outbox row. What was not inserted is then read back and classified by `revisions`: a retry, or
a conflict. This module reads and writes; the rules are `revisions`'.
"""

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import Boolean, Date, DateTime, Integer, String, func, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from services.ingest import revisions
from services.ingest.models import CaseRow, OutboxRow, ReportRow
from services.ingest.schemas import CaseReceipt, Receipt
from shared.contracts import (
    ACCEPTED_BATCH_MAX,
    CaseReported,
    ReportAccepted,
    SubmissionRejected,
    accepted_batch,
)
from shared.hierarchy import subject_tokens
from shared.refusals import Refused
from shared.registry.reference import UnitInfo


@dataclass(frozen=True, slots=True)
class Submission:
    unit: UnitInfo
    day: date
    values: dict[str, int | float]
    zero: bool
    late: bool
    reporter: str
    submitted_at: datetime
    report_id: uuid.UUID | None = None
    reason: str | None = None  # set for a correction
    revision: int | None = None  # the revision a correction means to create
    credential_id: uuid.UUID | None = None
    actor: str | None = None
    note: str | None = None  # kept with the revision, never aggregated


@dataclass(frozen=True, slots=True)
class Case:
    """A case to store, as its CaseReported event will say it."""

    event: CaseReported
    deadline: datetime  # when it is due (the two-hour rule), for its receipt
    id_chosen: bool  # the client chose `event.case_id`: a retry may name it
    credential_id: uuid.UUID | None = None
    details: dict | None = None  # the extra fields of the incident form, when given


@dataclass(frozen=True, slots=True)
class Rejection:
    event: SubmissionRejected
    credential_id: uuid.UUID | None
    actor: str | None
    source: str


class _InsertWithEvents:
    """Rows of one table written in one statement whatever their number, each new one with its
    event in the outbox: the rows go in as one JSON parameter (`json_to_recordset`: PostgreSQL
    parses it far faster than the driver encodes a dozen arrays element by element), the
    table's unique keys decide what is new (`ON CONFLICT DO NOTHING`), and only what was
    inserted gets an outbox row. Runs to the keys inserted; what was not inserted is for
    `revisions` to classify. The events, already JSON, go beside the rows as one array of
    bytes and are stored as they are: inside the JSON parameter PostgreSQL would unescape them,
    and a refusal's event may quote a NUL character (`\u0000`), which text cannot hold."""

    EVENT = (("subject", "text"), ("msg_id", "text"))

    def __init__(self, table: str, key: str, columns: Sequence[tuple[str, str | None, str]],
                 created_at: str, batched: bool = False) -> None:
        """`columns`: (stored column, SQL type of its array, or None for a constant, and the
        expression that stores it); `created_at`: the column that dates the event. `batched`:
        the events of one subject go out together, one outbox row (one message, the accepted
        contract's v2, `shared/contracts.py`) per ACCEPTED_BATCH_MAX of them."""
        incoming = [(column, kind) for column, kind, _ in columns if kind] + list(self.EVENT)
        self.names = tuple(name for name, _ in incoming)
        queued = f"""
                INSERT INTO ingest.outbox (subject, msg_id, payload, created_at)
                SELECT i.subject, i.msg_id, i.event, i.{created_at}
                FROM incoming i JOIN stored s USING ({key}) ORDER BY i.n"""
        if batched:
            # The message id is derived from the ids of the reports it carries, as
            # contracts.accepted_batch_id does; the payload is contracts.accepted_batch's.
            queued = f"""
                INSERT INTO ingest.outbox (subject, msg_id, payload, created_at)
                SELECT subject,
                       CASE WHEN count(*) = 1 THEN min(msg_id)
                            ELSE 'reports:' || md5(string_agg(msg_id, ' ' ORDER BY n)) END,
                       convert_to('{{"version"\\:2,"reports"\\:[', 'UTF8')
                         || string_agg(event, convert_to(',', 'UTF8') ORDER BY n)
                         || convert_to(']}}', 'UTF8'),
                       min(at)
                FROM (SELECT i.subject, i.msg_id, i.event, i.n, i.{created_at} AS at,
                             (row_number() OVER (PARTITION BY i.subject ORDER BY i.n) - 1)
                               / {ACCEPTED_BATCH_MAX} AS chunk
                      FROM incoming i JOIN stored s USING ({key})) e
                GROUP BY subject, chunk ORDER BY min(n)"""
        fields = ", ".join(f"t.{n}" for n, _ in incoming)
        self.statement = text(f"""
            WITH incoming AS (
                SELECT {fields}, e.event, t.n
                FROM json_to_recordset(CAST(:rows AS json))
                     AS t({", ".join(f"{n} {k}" for n, k in incoming)}, n int)
                JOIN unnest(CAST(:events AS bytea[])) WITH ORDINALITY AS e(event, n) USING (n)
            ), stored AS (
                INSERT INTO {table} ({", ".join(column for column, _, _ in columns)})
                SELECT {", ".join(expression for _, _, expression in columns)}
                FROM incoming ORDER BY n
                ON CONFLICT DO NOTHING
                RETURNING {key}
            ), queued AS ({queued}
            )
            SELECT {key} FROM stored
        """)

    async def run(self, session: AsyncSession, rows: Sequence[Sequence]) -> set:
        """`rows`: one tuple per row, its values in the order of `names`, the event last (its
        JSON, as bytes)."""
        if not rows:
            return set()
        body = orjson.dumps([{**dict(zip(self.names, row, strict=False)), "n": n}
                             for n, row in enumerate(rows, 1)], default=_uuid_text)
        return set((await session.execute(self.statement, {
            "rows": body.decode(), "events": [row[-1] for row in rows]})).scalars())


def _uuid_text(value: object) -> str:
    """The ids asyncpg hands back (a subclass of UUID, which orjson does not take as one)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _columns(*spec: str) -> list[tuple[str, str | None, str]]:
    """`"name:type"` stored as sent, `"name:type=expression"`, or `"name=constant"`."""
    out = []
    for item in spec:
        head, _, expression = item.partition("=")
        column, _, kind = head.partition(":")
        out.append((column, kind or None, expression or column))
    return out


def _receipt(row, status: str) -> Receipt:
    return Receipt(status=status, report_id=row.report_id, unit=row.unit_code, day=row.day,
                   revision=row.revision, zero=row.zero, late=row.late,
                   submitted_at=row.submitted_at)


def _settled(decision: revisions.Retry | Refused) -> Receipt | Refused:
    """A retry answers with what is stored; a conflict refuses."""
    if isinstance(decision, Refused):
        return decision
    return _receipt(decision.stored, "duplicate")


# -- first reports, in batches ---------------------------------------------------------------

INSERT_FIRST = _InsertWithEvents("ingest.reports", "report_id", _columns(
    "report_id:uuid", "unit_code:text", "day:date", "revision=1", "node_code:text",
    "values:jsonb", "zero:boolean", "late:boolean",
    "submitted_at:timestamptz", "reporter:text", "reason=NULL", "credential_id:uuid",
    "actor:text", "note:text"), created_at="submitted_at", batched=True)

STORED_FIRST = text("""
    SELECT report_id, unit_code, day, revision, values, zero, late, submitted_at, reason, note
    FROM ingest.reports WHERE report_id = ANY(CAST(:ids AS uuid[]))
    UNION ALL
    SELECT r.report_id, r.unit_code, r.day, r.revision, r.values, r.zero, r.late,
           r.submitted_at, r.reason, r.note
    FROM ingest.reports r
    JOIN unnest(CAST(:units AS text[]), CAST(:days AS date[])) AS t(u, d)
      ON r.unit_code = t.u AND r.day = t.d AND r.revision = 1
""").columns(report_id=Uuid(), unit_code=String(), day=Date(), revision=Integer(),
             values=JSONB(), zero=Boolean(), late=Boolean(),
             submitted_at=DateTime(timezone=True), reason=String(), note=String())


def _event(sub: Submission, report_id: uuid.UUID, revision: int, late: bool,
           node: str) -> ReportAccepted:
    # Built from values already validated: construct without validating again.
    return ReportAccepted.model_construct(
        report_id=report_id, unit=sub.unit.code, node=node, unit_type=sub.unit.unit_type,
        sector=sub.unit.sector, day=sub.day, revision=revision, values=sub.values,
        zero=sub.zero, late=late, submitted_at=sub.submitted_at, reporter=sub.reporter,
        reason=sub.reason, actor=sub.actor, note=sub.note)


def accepted_payload(sub: Submission, report_id: uuid.UUID, node: str) -> bytes:
    """A first report's ReportAccepted as JSON, written directly: at bulk volumes building a
    model per report costs more than storing it. Tests hold it equal to the contract's own."""
    return orjson.dumps({
        "report_id": str(report_id), "unit": sub.unit.code, "node": node,
        "unit_type": sub.unit.unit_type, "sector": sub.unit.sector,
        "day": sub.day.isoformat(), "revision": 1, "values": sub.values, "zero": sub.zero,
        "late": sub.late, "submitted_at": sub.submitted_at.isoformat(),
        "reporter": sub.reporter, "reason": None, "actor": sub.actor, "note": sub.note,
    })


def accepted_subject(node: str) -> str:
    return f"report.accepted.{subject_tokens(node)}"


async def record_first_reports(session: AsyncSession, subs: Sequence[Submission]
                               ) -> list[Receipt | Refused]:
    """Store first reports (revision 1) with their events; per submission, a receipt (accepted
    or duplicate) or the conflict that refuses it. The caller commits."""
    ids = [sub.report_id or uuid.uuid4() for sub in subs]
    fresh = revisions.firsts([(sub.unit.code, sub.day) for sub in subs],
                             [sub.report_id for sub in subs])
    rows = []
    for i in fresh:
        sub = subs[i]
        node = sub.unit.node_on(sub.day)
        assert node is not None  # checked at the door
        rows.append((ids[i], sub.unit.code, sub.day, node, sub.values, sub.zero, sub.late,
                     sub.submitted_at, sub.reporter, sub.credential_id, sub.actor,
                     sub.note, accepted_subject(node),
                     f"report:{sub.unit.code}:{sub.day.isoformat()}:1",
                     accepted_payload(sub, ids[i], node)))
    inserted = await INSERT_FIRST.run(session, rows)
    out: list[Receipt | Refused | None] = [None] * len(subs)
    leftovers = []
    for i, sub in enumerate(subs):
        if ids[i] not in inserted:
            leftovers.append(i)
            continue
        # Validating our own, typed values costs a quarter of model_construct (which fills
        # fields in Python): the hot path of a bulk request.
        out[i] = Receipt.model_validate({
            "status": "accepted", "report_id": ids[i], "unit": sub.unit.code, "day": sub.day,
            "revision": 1, "zero": sub.zero, "late": sub.late,
            "submitted_at": sub.submitted_at})
    if leftovers:
        stored = (await session.execute(STORED_FIRST, {
            "ids": [ids[i] for i in leftovers if subs[i].report_id is not None],
            "units": [subs[i].unit.code for i in leftovers],
            "days": [subs[i].day for i in leftovers]})).all()
        by_id = {row.report_id: row for row in stored}
        first = {(row.unit_code, row.day): row for row in stored if row.revision == 1}
        for i in leftovers:
            sub = subs[i]
            out[i] = _settled(revisions.classify_first(
                sub.unit.code, sub.day, sub.values, sub.report_id, by_id,
                first.get((sub.unit.code, sub.day)), sub.note))
    return out  # type: ignore[return-value]


# -- corrections, one at a time -----------------------------------------------------------


async def _lock_unit_day(session: AsyncSession, unit: str, day: date) -> None:
    # Serialises corrections for one unit and day, so revisions are numbered without gaps.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                          {"key": f"{unit}:{day.isoformat()}"})


async def record_correction(session: AsyncSession, sub: Submission) -> Receipt | Refused:
    """Store the next revision with its event, or answer a retry with the stored one
    (`revisions.next_revision`). The caller commits.

    Everything is read once the unit's day is locked: a retry that races its original (the
    same correction sent twice at once) then finds it stored, and answers with it."""
    assert sub.reason is not None
    await _lock_unit_day(session, sub.unit.code, sub.day)
    stored = list((await session.execute(
        select(ReportRow).where(ReportRow.unit_code == sub.unit.code, ReportRow.day == sub.day)
        .order_by(ReportRow.revision))).scalars())
    same_id = None
    if sub.report_id is not None:
        same_id = next((row for row in stored if row.report_id == sub.report_id), None) \
            or await session.get(ReportRow, sub.report_id)
    decision = revisions.next_revision(sub.unit.code, sub.day, sub.values, sub.reason,
                                       sub.report_id, sub.revision, stored, same_id, sub.note)
    if not isinstance(decision, revisions.NextRevision):
        return _settled(decision)
    node = sub.unit.node_on(sub.day)
    assert node is not None
    row = ReportRow(
        report_id=sub.report_id or uuid.uuid4(), unit_code=sub.unit.code, day=sub.day,
        revision=decision.revision, node_code=node, values=sub.values, zero=sub.zero,
        late=decision.late, submitted_at=sub.submitted_at, reporter=sub.reporter,
        reason=sub.reason, credential_id=sub.credential_id, actor=sub.actor, note=sub.note)
    session.add(row)
    event = _event(sub, row.report_id, decision.revision, decision.late, node)
    await add_to_outbox(session, event.subject, event.msg_id,
                        accepted_batch([event.model_dump_json().encode()]), sub.submitted_at)
    await session.flush()
    return _receipt(row, "accepted")


# -- cases, in batches ----------------------------------------------------------------------

INSERT_CASES = _InsertWithEvents("ingest.cases", "case_id", _columns(
    "case_id:uuid", "unit_code:text", "node_code:text", "kind:text", "found_at:timestamptz",
    "received_at:timestamptz", "temperature:float8", "symptoms:text=CAST(symptoms AS jsonb)",
    "person_ref:text", "late:boolean", "credential_id:uuid", "actor:text",
    "details:text=CAST(details AS jsonb)"), created_at="received_at")

STORED_CASES = text("""
    SELECT case_id, unit_code AS unit, kind, found_at, received_at, person_ref, late
    FROM ingest.cases WHERE case_id = ANY(CAST(:ids AS uuid[]))
    UNION ALL
    SELECT c.case_id, c.unit_code AS unit, c.kind, c.found_at, c.received_at, c.person_ref, c.late
    FROM ingest.cases c
    JOIN unnest(CAST(:units AS text[]), CAST(:refs AS text[]), CAST(:found AS timestamptz[]))
      AS t(u, p, f) ON c.unit_code = t.u AND c.person_ref = t.p AND c.found_at = t.f
""").columns(case_id=Uuid(), unit=String(), kind=String(),
             found_at=DateTime(timezone=True), received_at=DateTime(timezone=True),
             person_ref=String(), late=Boolean())


def _case_receipt(row: Any, status: str, deadline: datetime) -> CaseReceipt:
    """A receipt for a case as stored (`row`) or as it is being stored (its event)."""
    return CaseReceipt(status=status, case_id=row.case_id, unit=row.unit, kind=row.kind,
                       found_at=row.found_at, received_at=row.received_at, late=row.late,
                       deadline=deadline)


async def record_cases(session: AsyncSession, cases: Sequence[Case]
                       ) -> list[CaseReceipt | Refused]:
    """Store cases with their CaseReported events; a retry (same id, or the same person found at
    the same unit at the same moment) is a duplicate. The caller commits."""
    keys = [(c.event.unit, c.event.person_ref, c.event.found_at) for c in cases]
    fresh = revisions.firsts(keys, [c.event.case_id if c.id_chosen else None for c in cases])
    rows = []
    for i in fresh:
        c, e = cases[i], cases[i].event
        rows.append((e.case_id, e.unit, e.node, e.kind, e.found_at, e.received_at,
                     e.temperature, json.dumps(e.symptoms), e.person_ref, e.late,
                     c.credential_id, e.actor,
                     json.dumps(c.details, ensure_ascii=False) if c.details else None,
                     e.subject, e.msg_id,
                     e.model_dump_json().encode()))
    inserted = await INSERT_CASES.run(session, rows)
    leftovers = {i for i, c in enumerate(cases) if c.event.case_id not in inserted}
    by_id: dict = {}
    by_key: dict = {}
    if leftovers:
        stored = (await session.execute(STORED_CASES, {
            "ids": [cases[i].event.case_id for i in leftovers if cases[i].id_chosen],
            "units": [keys[i][0] for i in leftovers], "refs": [keys[i][1] for i in leftovers],
            "found": [keys[i][2] for i in leftovers]})).all()
        by_id = {row.case_id: row for row in stored}
        by_key = {(row.unit, row.person_ref, row.found_at): row for row in stored}
    out: list[CaseReceipt | Refused] = []
    for i, c in enumerate(cases):
        if i not in leftovers:
            out.append(_case_receipt(c.event, "accepted", c.deadline))
            continue
        decision = revisions.classify_case(keys[i], c.event.case_id if c.id_chosen else None,
                                           by_id, by_key)
        out.append(decision if isinstance(decision, Refused)
                   else _case_receipt(decision.stored, "duplicate", c.deadline))
    return out


# -- rejections -------------------------------------------------------------------------------

INSERT_REJECTIONS = _InsertWithEvents("ingest.rejections", "rejection_id", _columns(
    "rejection_id:uuid", "kind:text", "unit_code:text", "received_at:timestamptz",
    "errors:text=CAST(errors AS jsonb)", "payload:text=CAST(payload AS jsonb)",
    "credential_id:uuid", "actor:text", "source:text"), created_at="received_at")


def jsonable(value: object) -> object:
    """What was received, made storable as JSONB: no NaN or infinity, no NUL characters."""
    if isinstance(value, str):
        return value.replace("\x00", "\\u0000")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return jsonable(str(value))


async def reject_many(session: AsyncSession, rejections: Sequence[Rejection]) -> None:
    """Keep refused submissions and publish them on the rejected subjects. A rejection id seen
    before (a redelivered bus message) is kept and published once. The caller commits."""
    # Text and JSONB hold no NUL character: what was sent is escaped, as in payloads.
    await INSERT_REJECTIONS.run(session, [(
        r.event.rejection_id, r.event.kind, str(jsonable(r.event.unit or ""))[:32] or None,
        r.event.received_at, json.dumps(jsonable(r.event.errors), ensure_ascii=False),
        json.dumps(r.event.payload, ensure_ascii=False), r.credential_id, r.actor, r.source,
        r.event.subject, r.event.msg_id, r.event.model_dump_json().encode(),
    ) for r in rejections])


async def add_to_outbox(session: AsyncSession, subject: str, msg_id: str, payload: bytes,
                        created_at: datetime) -> None:
    await session.execute(insert(OutboxRow).values(
        subject=subject, msg_id=msg_id, payload=payload, created_at=created_at))


# -- reading ------------------------------------------------------------------------------------


async def history(session: AsyncSession, unit: str, day: date | None = None) -> list[ReportRow]:
    query = select(ReportRow).where(ReportRow.unit_code == unit)
    if day is not None:
        query = query.where(ReportRow.day == day)
    rows = await session.execute(query.order_by(ReportRow.day.desc(), ReportRow.revision))
    return list(rows.scalars())


# The latest revision of each unit's report below a node on a day, where it carries a note.
NOTES = text("""
    SELECT unit_code AS unit, node_code AS node, revision, note, reporter, submitted_at
    FROM (SELECT DISTINCT ON (r.unit_code) r.unit_code, r.node_code, r.revision, r.note,
                 r.reporter, r.submitted_at
          FROM ingest.reports r
          WHERE r.day = :day AND r.node_code ~>=~ CAST(:node AS text)
            AND r.node_code ~<~ (CAST(:node AS text) || '~')
            AND (CAST(:sector AS text) IS NULL OR r.unit_code IN (
                SELECT code FROM registry.units WHERE sector = CAST(:sector AS text)))
          ORDER BY r.unit_code, r.revision DESC) latest
    WHERE note IS NOT NULL
    ORDER BY node, unit LIMIT :limit
""")


async def notes(session: AsyncSession, node: str, day: date, limit: int,
                sector: str | None = None) -> list[dict]:
    """The notes of the day's reports below `node` (of `sector`'s units only, if given), as
    their latest revision says them."""
    rows = await session.execute(NOTES, {"node": node, "day": day, "limit": limit,
                                         "sector": sector})
    return [dict(r._mapping) for r in rows]


async def cases_of(session: AsyncSession, unit: str, since: datetime | None = None,
                   limit: int = 500) -> list[CaseRow]:
    query = select(CaseRow).where(CaseRow.unit_code == unit)
    if since is not None:
        query = query.where(CaseRow.found_at >= since)
    rows = await session.execute(query.order_by(CaseRow.found_at.desc()).limit(limit))
    return list(rows.scalars())


async def outbox_depth(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(OutboxRow))).scalar_one()



# The latest revision of each unit's report below a node over a range of days, with when its
# first revision arrived (a DHIS2 export's `created`; `lastUpdated` is the latest's).
LATEST_IN_RANGE = text("""
    SELECT unit_code, day, revision, values, reporter, note, submitted_at, created
    FROM (SELECT DISTINCT ON (r.unit_code, r.day) r.unit_code, r.day, r.revision, r.values,
                 r.reporter, r.note, r.submitted_at, r.node_code,
                 min(r.submitted_at) OVER (PARTITION BY r.unit_code, r.day) AS created
          FROM ingest.reports r
          WHERE r.day BETWEEN :d0 AND :d1 AND r.node_code ~>=~ CAST(:node AS text)
            AND r.node_code ~<~ (CAST(:node AS text) || '~')
          ORDER BY r.unit_code, r.day, r.revision DESC) latest
    ORDER BY day, unit_code
""")


async def latest_in_range(session: AsyncSession, node: str, start: date, end: date) -> list:
    """Each unit-day's latest revision below `node` from `start` to `end`, day by day."""
    return list(await session.execute(LATEST_IN_RANGE, {"node": node, "d0": start, "d1": end}))


LATEST_OF = text("""
    SELECT DISTINCT ON (r.unit_code, r.day) r.unit_code, r.day, r.revision, r.values, r.note
    FROM ingest.reports r
    JOIN unnest(CAST(:units AS text[]), CAST(:days AS date[])) AS k(unit_code, day)
      ON r.unit_code = k.unit_code AND r.day = k.day
    ORDER BY r.unit_code, r.day, r.revision DESC
""")


async def latest_of(session: AsyncSession, keys: Sequence[tuple[str, date]]) -> dict:
    """The latest revision of each (unit, day) given that has a report."""
    if not keys:
        return {}
    rows = await session.execute(LATEST_OF, {"units": [u for u, _ in keys],
                                             "days": [d for _, d in keys]})
    return {(r.unit_code, r.day): r for r in rows}


RECORD_IMPORT = text("""
    INSERT INTO ingest.dhis2_imports (import_id, received_at, credential_id, actor, scope,
                                      format, data_values, status, summary)
    VALUES (:import_id, :received_at, :credential_id, :actor, :scope, :format, :data_values,
            :status, CAST(:summary AS jsonb))
""")


async def record_import(session: AsyncSession, **row: Any) -> None:
    """A DHIS2 import and its summary, kept (append-only)."""
    await session.execute(RECORD_IMPORT, {**row, "summary": json.dumps(row["summary"],
                                                                       ensure_ascii=False)})


async def import_of(session: AsyncSession, import_id: uuid.UUID) -> Any:
    return (await session.execute(text(
        "SELECT import_id, received_at, actor, scope, format, data_values, status, summary "
        "FROM ingest.dhis2_imports WHERE import_id = :id"), {"id": import_id})).first()
