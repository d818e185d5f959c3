"""The ledger of report revisions. Accepting a report stores the revision and its event in the
outbox in one transaction; the relay publishes after commit, so accepted means stored and
(eventually, exactly once) published."""

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from services.ingest.models import OutboxRow, RejectionRow, ReportRow
from services.ingest.schemas import Receipt
from shared.contracts import ReportAccepted, SubmissionRejected
from shared.registry.reference import UnitInfo


class AlreadyReported(Exception):
    """A different first report for a unit and day that already has one: send a correction."""


class NothingToCorrect(Exception):
    """A correction for a unit and day that has no report yet."""


@dataclass(frozen=True, slots=True)
class Submission:
    unit: UnitInfo
    day: date
    values: dict[str, float]
    zero: bool
    late: bool
    reporter: str
    submitted_at: datetime
    report_id: uuid.UUID | None = None
    reason: str | None = None  # set for a correction


def _receipt(row: ReportRow, status: str) -> Receipt:
    return Receipt(status=status, report_id=row.report_id, unit=row.unit_code, day=row.day,
                   revision=row.revision, zero=row.zero, late=row.late,
                   submitted_at=row.submitted_at)


async def _lock_unit_day(session: AsyncSession, unit: str, day: date) -> None:
    # Serialises submissions for one unit and day, so revisions are numbered without gaps.
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                          {"key": f"{unit}:{day.isoformat()}"})


async def record(session: AsyncSession, sub: Submission) -> Receipt:
    """Store a first report (reason None) or a correction, with its ReportAccepted event."""
    if sub.report_id is not None:
        existing = await session.get(ReportRow, sub.report_id)
        if existing is not None:
            return _receipt(existing, "duplicate")
    await _lock_unit_day(session, sub.unit.code, sub.day)
    latest = (await session.execute(
        select(ReportRow).where(ReportRow.unit_code == sub.unit.code, ReportRow.day == sub.day)
        .order_by(ReportRow.revision.desc()).limit(1))).scalar_one_or_none()
    if sub.reason is None:
        if latest is not None:
            if latest.revision == 1 and latest.values == sub.values:
                return _receipt(latest, "duplicate")  # a retry without a report id
            raise AlreadyReported(latest.revision)
        revision, late = 1, sub.late
    else:
        if latest is None:
            raise NothingToCorrect()
        # Timeliness belongs to the first report: correcting it later does not make it late.
        revision, late = latest.revision + 1, latest.late
    row = ReportRow(
        report_id=sub.report_id or uuid.uuid4(), unit_code=sub.unit.code, day=sub.day,
        revision=revision, node_code=sub.unit.node_on(sub.day), values=sub.values,
        zero=sub.zero, late=late, submitted_at=sub.submitted_at, reporter=sub.reporter,
        reason=sub.reason)
    session.add(row)
    event = ReportAccepted(
        report_id=row.report_id, unit=row.unit_code, node=row.node_code,
        unit_type=sub.unit.unit_type, sector=sub.unit.sector, day=row.day, revision=revision,
        values=row.values, zero=row.zero, late=row.late, submitted_at=row.submitted_at,
        reporter=row.reporter, reason=row.reason)
    await add_to_outbox(session, event.subject, event.msg_id, event.model_dump_json().encode(),
                        sub.submitted_at)
    await session.flush()
    return _receipt(row, "accepted")


async def reject(session: AsyncSession, event: SubmissionRejected) -> None:
    """Keep a refused submission and publish it on the rejected subject."""
    session.add(RejectionRow(rejection_id=event.rejection_id, kind=event.kind,
                             unit_code=event.unit, received_at=event.received_at,
                             errors=event.errors, payload=event.payload))
    await add_to_outbox(session, event.subject, event.msg_id, event.model_dump_json().encode(),
                        event.received_at)


async def add_to_outbox(session: AsyncSession, subject: str, msg_id: str, payload: bytes,
                        created_at: datetime) -> None:
    await session.execute(insert(OutboxRow).values(
        subject=subject, msg_id=msg_id, payload=payload, created_at=created_at))


async def history(session: AsyncSession, unit: str, day: date | None = None) -> list[ReportRow]:
    query = select(ReportRow).where(ReportRow.unit_code == unit)
    if day is not None:
        query = query.where(ReportRow.day == day)
    rows = await session.execute(query.order_by(ReportRow.day.desc(), ReportRow.revision))
    return list(rows.scalars())


async def outbox_depth(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(OutboxRow))).scalar_one()
