"""The ledger of report revisions, the cases and the kept rejections.

Accepting stores the row and its event in the outbox in one transaction; the relay publishes
after commit, so accepted means stored and (eventually, exactly once) published. Batches are
written with one statement per table whatever their size: rows go in as arrays (`unnest`), the
unique keys decide what is new (`ON CONFLICT DO NOTHING`), and only what was inserted gets an
outbox row. What was not inserted is then classified: a retry, or a conflict.
"""

import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Boolean, Date, DateTime, Integer, String, func, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Uuid

from services.ingest.models import CaseRow, OutboxRow, ReportRow
from services.ingest.schemas import CaseReceipt, Receipt
from shared.contracts import CaseReported, ReportAccepted, SubmissionRejected
from shared.errors import FieldError
from shared.hierarchy import subject_tokens
from shared.registry.reference import UnitInfo


class Refusal(Exception):
    """A submission the ledger cannot take as it stands: a conflict with what is stored."""

    def __init__(self, status: int, error: FieldError) -> None:
        super().__init__(error.message_en)
        self.status, self.error = status, error


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


@dataclass(frozen=True, slots=True)
class Case:
    unit: UnitInfo
    node: str
    kind: str
    found_at: datetime
    received_at: datetime
    temperature: float | None
    symptoms: list[str]
    person_ref: str
    late: bool
    deadline: timedelta
    case_id: uuid.UUID | None = None
    credential_id: uuid.UUID | None = None
    actor: str | None = None


@dataclass(frozen=True, slots=True)
class Rejection:
    event: SubmissionRejected
    credential_id: uuid.UUID | None
    actor: str | None
    source: str


def _receipt(row, status: str) -> Receipt:
    return Receipt(status=status, report_id=row.report_id, unit=row.unit_code, day=row.day,
                   revision=row.revision, zero=row.zero, late=row.late,
                   submitted_at=row.submitted_at)


def already_reported(day: date, revision: int) -> Refusal:
    return Refusal(409, FieldError(
        "day", "already_reported", f"该单位当日已报告(第 {revision} 版),请提交更正",
        f"this unit already reported for {day} (revision {revision}); send a correction"))


def _id_reused(field: str) -> Refusal:
    return Refusal(409, FieldError(
        field, "id_reused", "此编号已用于另一份内容不同的报送",
        "this id was already used for a different submission"))


# -- first reports, in batches ---------------------------------------------------------------

INSERT_FIRST = text("""
    WITH incoming AS (
        SELECT * FROM unnest(
            CAST(:report_id AS uuid[]), CAST(:unit AS text[]), CAST(:day AS date[]),
            CAST(:node AS text[]), CAST(:values AS text[]), CAST(:zero AS boolean[]),
            CAST(:late AS boolean[]), CAST(:submitted_at AS timestamptz[]),
            CAST(:reporter AS text[]), CAST(:credential_id AS uuid[]), CAST(:actor AS text[]),
            CAST(:subject AS text[]), CAST(:msg_id AS text[]), CAST(:payload AS bytea[]))
        WITH ORDINALITY AS t(report_id, unit, day, node, values, zero, late, submitted_at,
                             reporter, credential_id, actor, subject, msg_id, payload, n)
    ), stored AS (
        INSERT INTO ingest.reports (report_id, unit_code, day, revision, node_code, values,
            zero, late, submitted_at, reporter, reason, credential_id, actor)
        SELECT report_id, unit, day, 1, node, CAST(values AS jsonb), zero, late, submitted_at,
            reporter, NULL, credential_id, actor
        FROM incoming ORDER BY n
        ON CONFLICT DO NOTHING
        RETURNING report_id
    ), queued AS (
        INSERT INTO ingest.outbox (subject, msg_id, payload, created_at)
        SELECT i.subject, i.msg_id, i.payload, i.submitted_at
        FROM incoming i JOIN stored s USING (report_id) ORDER BY i.n
    )
    SELECT report_id FROM stored
""")

STORED_FIRST = text("""
    SELECT report_id, unit_code, day, revision, values, zero, late, submitted_at, reason
    FROM ingest.reports WHERE report_id = ANY(CAST(:ids AS uuid[]))
    UNION ALL
    SELECT r.report_id, r.unit_code, r.day, r.revision, r.values, r.zero, r.late,
           r.submitted_at, r.reason
    FROM ingest.reports r
    JOIN unnest(CAST(:units AS text[]), CAST(:days AS date[])) AS t(u, d)
      ON r.unit_code = t.u AND r.day = t.d AND r.revision = 1
""").columns(report_id=Uuid(), unit_code=String(), day=Date(), revision=Integer(),
             values=JSONB(), zero=Boolean(), late=Boolean(),
             submitted_at=DateTime(timezone=True), reason=String())


def _event(sub: Submission, report_id: uuid.UUID, revision: int, late: bool,
           node: str) -> ReportAccepted:
    # Built from values already validated: construct without validating again.
    return ReportAccepted.model_construct(
        report_id=report_id, unit=sub.unit.code, node=node, unit_type=sub.unit.unit_type,
        sector=sub.unit.sector, day=sub.day, revision=revision, values=sub.values,
        zero=sub.zero, late=late, submitted_at=sub.submitted_at, reporter=sub.reporter,
        reason=sub.reason, actor=sub.actor)


def accepted_payload(sub: Submission, report_id: uuid.UUID, node: str) -> bytes:
    """A first report's ReportAccepted as JSON, written directly: at bulk volumes building a
    model per report costs more than storing it. Tests hold it equal to the contract's own."""
    return json.dumps({
        "report_id": str(report_id), "unit": sub.unit.code, "node": node,
        "unit_type": sub.unit.unit_type, "sector": sub.unit.sector,
        "day": sub.day.isoformat(), "revision": 1, "values": sub.values, "zero": sub.zero,
        "late": sub.late, "submitted_at": sub.submitted_at.isoformat(),
        "reporter": sub.reporter, "reason": None, "actor": sub.actor,
    }, ensure_ascii=False).encode()


def accepted_subject(node: str) -> str:
    return f"report.accepted.{subject_tokens(node)}"


async def record_first_reports(session: AsyncSession, subs: Sequence[Submission]
                               ) -> list[Receipt | Refusal]:
    """Store first reports (revision 1) with their events; per submission, a receipt (accepted
    or duplicate) or the conflict that refuses it. The caller commits."""
    ids = [sub.report_id or uuid.uuid4() for sub in subs]
    out: list[Receipt | Refusal | None] = [None] * len(subs)
    fresh: list[int] = []
    seen_keys: set[tuple[str, date]] = set()
    seen_ids: set[uuid.UUID] = set()
    for i, sub in enumerate(subs):
        key = (sub.unit.code, sub.day)
        if key in seen_keys or ids[i] in seen_ids:
            continue  # a repeat within the request: judged against the first, once stored
        seen_keys.add(key)
        seen_ids.add(ids[i])
        fresh.append(i)
    inserted: set[uuid.UUID] = set()
    if fresh:
        columns: dict[str, list] = {k: [] for k in (
            "report_id", "unit", "day", "node", "values", "zero", "late", "submitted_at",
            "reporter", "credential_id", "actor", "subject", "msg_id", "payload")}
        for i in fresh:
            sub = subs[i]
            node = sub.unit.node_on(sub.day)
            assert node is not None  # checked at the door
            for name, value in (
                ("report_id", ids[i]), ("unit", sub.unit.code), ("day", sub.day),
                ("node", node), ("values", json.dumps(sub.values)), ("zero", sub.zero),
                ("late", sub.late), ("submitted_at", sub.submitted_at),
                ("reporter", sub.reporter), ("credential_id", sub.credential_id),
                ("actor", sub.actor), ("subject", accepted_subject(node)),
                ("msg_id", f"report:{sub.unit.code}:{sub.day.isoformat()}:1"),
                ("payload", accepted_payload(sub, ids[i], node)),
            ):
                columns[name].append(value)
        inserted = set((await session.execute(INSERT_FIRST, columns)).scalars())
    fresh_set = set(fresh)
    leftovers = [i for i in range(len(subs)) if i not in fresh_set or ids[i] not in inserted]
    leftover_set = set(leftovers)
    for i in range(len(subs)):
        if i not in leftover_set:
            sub = subs[i]
            # Validating our own, typed values costs a quarter of model_construct (which
            # fills fields in Python): the hot path of a bulk request.
            out[i] = Receipt.model_validate({
                "status": "accepted", "report_id": ids[i], "unit": sub.unit.code,
                "day": sub.day, "revision": 1, "zero": sub.zero, "late": sub.late,
                "submitted_at": sub.submitted_at})
    if leftovers:
        rows = (await session.execute(STORED_FIRST, {
            "ids": [ids[i] for i in leftovers if subs[i].report_id is not None],
            "units": [subs[i].unit.code for i in leftovers],
            "days": [subs[i].day for i in leftovers]})).all()
        by_id = {row.report_id: row for row in rows}
        first = {(row.unit_code, row.day): row for row in rows if row.revision == 1}
        for i in leftovers:
            out[i] = _classify_first(subs[i], by_id, first)
    return out  # type: ignore[return-value]


def _classify_first(sub: Submission, by_id: dict, first: dict) -> Receipt | Refusal:
    """A first report that was not inserted: the same one again, or a different one."""
    if sub.report_id is not None and sub.report_id in by_id:
        row = by_id[sub.report_id]
        same = (row.unit_code == sub.unit.code and row.day == sub.day and row.revision == 1
                and row.values == sub.values)
        return _receipt(row, "duplicate") if same else _id_reused("report_id")
    row = first.get((sub.unit.code, sub.day))
    if row is None:  # cannot happen: nothing is deleted from the ledger
        raise RuntimeError(f"report for {sub.unit.code} {sub.day} neither stored nor found")
    if sub.report_id is None and row.values == sub.values:
        return _receipt(row, "duplicate")  # a retry without a report id: the natural key
    return already_reported(sub.day, row.revision)


# -- corrections, one at a time -----------------------------------------------------------


async def _lock_unit_day(session: AsyncSession, unit: str, day: date) -> None:
    # Serialises corrections for one unit and day, so revisions are numbered without gaps.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                          {"key": f"{unit}:{day.isoformat()}"})


async def record_correction(session: AsyncSession, sub: Submission) -> Receipt:
    """Store revision latest + 1 with its event; raises Refusal. The caller commits.

    A retry is recognised by its report id, by the revision it names, or (with neither) by
    being identical to the latest revision, values and reason alike."""
    assert sub.reason is not None
    if sub.report_id is not None:
        existing = await session.get(ReportRow, sub.report_id)
        if existing is not None:
            same = (existing.unit_code == sub.unit.code and existing.day == sub.day
                    and existing.values == sub.values and existing.reason == sub.reason)
            if same:
                return _receipt(existing, "duplicate")
            raise _id_reused("report_id")
    await _lock_unit_day(session, sub.unit.code, sub.day)
    revisions = list((await session.execute(
        select(ReportRow).where(ReportRow.unit_code == sub.unit.code, ReportRow.day == sub.day)
        .order_by(ReportRow.revision))).scalars())
    if not revisions:
        raise Refusal(404, FieldError("day", "no_report", "该单位当日尚无报告,无法更正",
                                      f"this unit has no report for {sub.day} to correct"))
    latest = revisions[-1]
    if sub.revision is not None and sub.revision <= latest.revision:
        row = revisions[sub.revision - 1]
        if row.values == sub.values and row.reason == sub.reason:
            return _receipt(row, "duplicate")
        raise Refusal(409, FieldError(
            "revision", "revision_conflict", f"第 {sub.revision} 版已存在,内容不同",
            f"revision {sub.revision} already exists with different content"))
    if sub.revision is not None and sub.revision != latest.revision + 1:
        raise Refusal(409, FieldError(
            "revision", "revision_conflict", f"最新为第 {latest.revision} 版,下一版应为 "
            f"{latest.revision + 1}", f"the latest revision is {latest.revision}; the next is "
            f"{latest.revision + 1}"))
    if (sub.revision is None and sub.report_id is None and latest.revision > 1
            and latest.values == sub.values and latest.reason == sub.reason):
        return _receipt(latest, "duplicate")
    # Timeliness belongs to the first report: correcting it later does not make it late.
    revision, late = latest.revision + 1, revisions[0].late
    node = sub.unit.node_on(sub.day)
    assert node is not None
    row = ReportRow(
        report_id=sub.report_id or uuid.uuid4(), unit_code=sub.unit.code, day=sub.day,
        revision=revision, node_code=node, values=sub.values, zero=sub.zero, late=late,
        submitted_at=sub.submitted_at, reporter=sub.reporter, reason=sub.reason,
        credential_id=sub.credential_id, actor=sub.actor)
    session.add(row)
    event = _event(sub, row.report_id, revision, late, node)
    await add_to_outbox(session, event.subject, event.msg_id, event.model_dump_json().encode(),
                        sub.submitted_at)
    await session.flush()
    return _receipt(row, "accepted")


# -- cases, in batches ----------------------------------------------------------------------

INSERT_CASES = text("""
    WITH incoming AS (
        SELECT * FROM unnest(
            CAST(:case_id AS uuid[]), CAST(:unit AS text[]), CAST(:node AS text[]),
            CAST(:kind AS text[]), CAST(:found_at AS timestamptz[]),
            CAST(:received_at AS timestamptz[]), CAST(:temperature AS float8[]),
            CAST(:symptoms AS text[]), CAST(:person_ref AS text[]), CAST(:late AS boolean[]),
            CAST(:credential_id AS uuid[]), CAST(:actor AS text[]), CAST(:subject AS text[]),
            CAST(:msg_id AS text[]), CAST(:payload AS bytea[]))
        WITH ORDINALITY AS t(case_id, unit, node, kind, found_at, received_at, temperature,
                             symptoms, person_ref, late, credential_id, actor, subject, msg_id,
                             payload, n)
    ), stored AS (
        INSERT INTO ingest.cases (case_id, unit_code, node_code, kind, found_at, received_at,
            temperature, symptoms, person_ref, late, credential_id, actor)
        SELECT case_id, unit, node, kind, found_at, received_at, temperature,
            CAST(symptoms AS jsonb), person_ref, late, credential_id, actor
        FROM incoming ORDER BY n
        ON CONFLICT DO NOTHING
        RETURNING case_id
    ), queued AS (
        INSERT INTO ingest.outbox (subject, msg_id, payload, created_at)
        SELECT i.subject, i.msg_id, i.payload, i.received_at
        FROM incoming i JOIN stored s USING (case_id) ORDER BY i.n
    )
    SELECT case_id FROM stored
""")

STORED_CASES = text("""
    SELECT case_id, unit_code, kind, found_at, received_at, person_ref, late
    FROM ingest.cases WHERE case_id = ANY(CAST(:ids AS uuid[]))
    UNION ALL
    SELECT c.case_id, c.unit_code, c.kind, c.found_at, c.received_at, c.person_ref, c.late
    FROM ingest.cases c
    JOIN unnest(CAST(:units AS text[]), CAST(:refs AS text[]), CAST(:found AS timestamptz[]))
      AS t(u, p, f) ON c.unit_code = t.u AND c.person_ref = t.p AND c.found_at = t.f
""").columns(case_id=Uuid(), unit_code=String(), kind=String(),
             found_at=DateTime(timezone=True), received_at=DateTime(timezone=True),
             person_ref=String(), late=Boolean())


def _case_receipt(row, status: str, deadline: timedelta) -> CaseReceipt:
    return CaseReceipt(status=status, case_id=row.case_id, unit=row.unit_code, kind=row.kind,
                       found_at=row.found_at, received_at=row.received_at, late=row.late,
                       deadline=row.found_at + deadline)


async def record_cases(session: AsyncSession, cases: Sequence[Case]
                       ) -> list[CaseReceipt | Refusal]:
    """Store cases with their CaseReported events; a retry (same id, or the same person found at
    the same unit at the same moment) is a duplicate. The caller commits."""
    ids = [case.case_id or uuid.uuid4() for case in cases]
    keys = [(c.unit.code, c.person_ref, c.found_at) for c in cases]
    fresh: list[int] = []
    seen_keys: set = set()
    seen_ids: set[uuid.UUID] = set()
    for i in range(len(cases)):
        if keys[i] in seen_keys or ids[i] in seen_ids:
            continue
        seen_keys.add(keys[i])
        seen_ids.add(ids[i])
        fresh.append(i)
    inserted: set[uuid.UUID] = set()
    if fresh:
        columns: dict[str, list] = {k: [] for k in (
            "case_id", "unit", "node", "kind", "found_at", "received_at", "temperature",
            "symptoms", "person_ref", "late", "credential_id", "actor", "subject", "msg_id",
            "payload")}
        for i in fresh:
            c = cases[i]
            event = CaseReported.model_construct(
                case_id=ids[i], unit=c.unit.code, node=c.node, unit_type=c.unit.unit_type,
                sector=c.unit.sector, kind=c.kind, found_at=c.found_at,
                received_at=c.received_at, temperature=c.temperature, symptoms=c.symptoms,
                person_ref=c.person_ref, late=c.late, actor=c.actor)
            for name, value in (
                ("case_id", ids[i]), ("unit", c.unit.code), ("node", c.node),
                ("kind", c.kind), ("found_at", c.found_at), ("received_at", c.received_at),
                ("temperature", c.temperature), ("symptoms", json.dumps(c.symptoms)),
                ("person_ref", c.person_ref), ("late", c.late),
                ("credential_id", c.credential_id), ("actor", c.actor),
                ("subject", event.subject), ("msg_id", event.msg_id),
                ("payload", event.model_dump_json().encode()),
            ):
                columns[name].append(value)
        inserted = set((await session.execute(INSERT_CASES, columns)).scalars())
    out: list[CaseReceipt | Refusal] = []
    fresh_set = set(fresh)
    leftovers = [i for i in range(len(cases)) if i not in fresh_set or ids[i] not in inserted]
    rows_by_id: dict = {}
    rows_by_key: dict = {}
    if leftovers:
        rows = (await session.execute(STORED_CASES, {
            "ids": [ids[i] for i in leftovers if cases[i].case_id is not None],
            "units": [keys[i][0] for i in leftovers], "refs": [keys[i][1] for i in leftovers],
            "found": [keys[i][2] for i in leftovers]})).all()
        rows_by_id = {row.case_id: row for row in rows}
        rows_by_key = {(row.unit_code, row.person_ref, row.found_at): row for row in rows}
    leftover_set = set(leftovers)
    for i, c in enumerate(cases):
        if i not in leftover_set:
            out.append(CaseReceipt(
                status="accepted", case_id=ids[i], unit=c.unit.code, kind=c.kind,
                found_at=c.found_at, received_at=c.received_at, late=c.late,
                deadline=c.found_at + c.deadline))
            continue
        if c.case_id is not None and c.case_id in rows_by_id:
            row = rows_by_id[c.case_id]
            same = (row.unit_code, row.person_ref, row.found_at) == keys[i]
            out.append(_case_receipt(row, "duplicate", c.deadline) if same
                       else _id_reused("case_id"))
        elif keys[i] in rows_by_key:
            out.append(_case_receipt(rows_by_key[keys[i]], "duplicate", c.deadline))
        else:
            raise RuntimeError(f"case {ids[i]} neither stored nor found")
    return out


# -- rejections -------------------------------------------------------------------------------

INSERT_REJECTIONS = text("""
    WITH incoming AS (
        SELECT * FROM unnest(
            CAST(:rejection_id AS uuid[]), CAST(:kind AS text[]), CAST(:unit AS text[]),
            CAST(:received_at AS timestamptz[]), CAST(:errors AS text[]),
            CAST(:payload AS text[]), CAST(:credential_id AS uuid[]), CAST(:actor AS text[]),
            CAST(:source AS text[]), CAST(:subject AS text[]), CAST(:msg_id AS text[]),
            CAST(:event AS bytea[]))
        WITH ORDINALITY AS t(rejection_id, kind, unit, received_at, errors, payload,
                             credential_id, actor, source, subject, msg_id, event, n)
    ), stored AS (
        INSERT INTO ingest.rejections (rejection_id, kind, unit_code, received_at, errors,
            payload, credential_id, actor, source)
        SELECT rejection_id, kind, unit, received_at, CAST(errors AS jsonb),
            CAST(payload AS jsonb), credential_id, actor, source
        FROM incoming ORDER BY n
        ON CONFLICT DO NOTHING
        RETURNING rejection_id
    ), queued AS (
        INSERT INTO ingest.outbox (subject, msg_id, payload, created_at)
        SELECT i.subject, i.msg_id, i.event, i.received_at
        FROM incoming i JOIN stored s USING (rejection_id) ORDER BY i.n
    )
    SELECT rejection_id FROM stored
""")


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
    if not rejections:
        return
    columns: dict[str, list] = {k: [] for k in (
        "rejection_id", "kind", "unit", "received_at", "errors", "payload", "credential_id",
        "actor", "source", "subject", "msg_id", "event")}
    for r in rejections:
        e = r.event
        for name, value in (
            ("rejection_id", e.rejection_id), ("kind", e.kind),
            # Text and JSONB hold no NUL character: what was sent is escaped, as in payloads.
            ("unit", str(jsonable(e.unit or ""))[:32] or None), ("received_at", e.received_at),
            ("errors", json.dumps(jsonable(e.errors), ensure_ascii=False)),
            ("payload", json.dumps(e.payload, ensure_ascii=False)),
            ("credential_id", r.credential_id), ("actor", r.actor), ("source", r.source),
            ("subject", e.subject), ("msg_id", e.msg_id),
            ("event", e.model_dump_json().encode()),
        ):
            columns[name].append(value)
    await session.execute(INSERT_REJECTIONS, columns)


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


async def cases_of(session: AsyncSession, unit: str, since: datetime | None = None,
                   limit: int = 500) -> list[CaseRow]:
    query = select(CaseRow).where(CaseRow.unit_code == unit)
    if since is not None:
        query = query.where(CaseRow.found_at >= since)
    rows = await session.execute(query.order_by(CaseRow.found_at.desc()).limit(limit))
    return list(rows.scalars())


async def outbox_depth(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(OutboxRow))).scalar_one()

