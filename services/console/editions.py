"""Scheduled editions of the summary: a deployment names nodes and times of day (the town's at
14:30, the county's at 15:00: `ROLLCALL_EDITIONS`); once the time has passed, the day's summary
of that node is composed as the page composes it, kept with its files exactly as made, and
announced as `edition.published.<node>` through the console's outbox.

Once per schedule and day, whatever the replicas: the replica that takes a transaction-scoped
advisory lock on the schedule's day produces it, and writes the edition and its event in that
same transaction; the others skip it, and find it made at their next look. A replica that dies
while producing holds nothing afterwards (the transaction and its lock end with it), so the next
look, on any replica, makes it. A console that was down at the scheduled time makes the day's
edition when it starts, with the time it was produced; days gone by are not made afterwards.
"""

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Callable
from datetime import date, datetime, time

from sqlalchemy import Date, DateTime, LargeBinary, String, Time, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from services.console import compose, summary
from services.console.compose import Span
from services.console.service import ConsoleContext
from services.console.upstream import UpstreamDown
from shared.auth import Principal
from shared.contracts import EditionPublished
from shared.db import Base
from shared.deadlines import cutoff_instant
from shared.outbox import Outbox, OutboxRelay
from shared.settings import EditionSchedule

log = logging.getLogger(__name__)
SCHEMA = "console"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LOCK_CLASS = 0x45444954  # "EDIT": the advisory locks' first key, apart from any other's


class EditionRow(Base):
    __tablename__ = "editions"
    __table_args__ = {"schema": SCHEMA}

    edition_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    node: Mapped[str] = mapped_column(String(12))
    day: Mapped[date] = mapped_column(Date)
    scheduled: Mapped[time] = mapped_column(Time)
    produced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    produced_by: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    xlsx: Mapped[bytes] = mapped_column(LargeBinary)
    csv: Mapped[bytes] = mapped_column(LargeBinary)
    document: Mapped[dict] = mapped_column(JSONB)


class ConsoleOutboxRow(Outbox, Base):
    __table_args__ = {"schema": SCHEMA}


def describe(row: EditionRow) -> dict:
    """What a list of editions shows (the files are fetched on their own)."""
    return {"edition_id": str(row.edition_id), "node": row.node,
            "name": row.document.get("name"), "day": row.day.isoformat(),
            "scheduled": row.scheduled.strftime("%H:%M"),
            "produced_at": row.produced_at.isoformat(), "produced_by": row.produced_by,
            "title": row.title, "filename": row.filename, "sha256": row.sha256,
            "size": len(row.xlsx), "download": f"/api/editions/{row.edition_id}/xlsx",
            "csv": f"/api/editions/{row.edition_id}/csv"}


async def listed(session: AsyncSession, node: str, scope: str, day: date | None = None,
                 limit: int = 100) -> list[dict]:
    """The editions of `node` and the nodes below it that lie inside `scope`, newest first."""
    query = (select(EditionRow).where(EditionRow.node.startswith(node),
                                      EditionRow.node.startswith(scope))
             .order_by(EditionRow.day.desc(), EditionRow.scheduled.desc(), EditionRow.node)
             .limit(limit))
    if day is not None:
        query = query.where(EditionRow.day == day)
    return [describe(row) for row in (await session.execute(query)).scalars()]


async def one(session: AsyncSession, edition_id: uuid.UUID) -> EditionRow | None:
    return await session.get(EditionRow, edition_id)


def _lock_key(schedule: EditionSchedule, day: date) -> str:
    return f"{schedule.node}:{day.isoformat()}:{schedule.at.strftime('%H:%M')}"


class Editions:
    """Makes the editions that are due: `run_due` at each look (the loop, or a test's clock)."""

    def __init__(self, ctx: ConsoleContext, schedules: list[EditionSchedule], token: str,
                 relay: OutboxRelay | None, clock: Callable[[], datetime] | None = None) -> None:
        self.ctx = ctx
        self.schedules = schedules
        self.token = token
        self.relay = relay
        self.clock = clock or ctx.clock
        self._stopping = asyncio.Event()
        self.principal: Principal | None = None

    async def check_token(self) -> None:
        """At start: the token must be an operator's whose area holds every scheduled node, or
        the console refuses to start rather than fail at 14:30."""
        principal = await self.ctx.principal(self.token)
        if principal is None or principal.kind != "operator":
            raise RuntimeError("ROLLCALL_EDITIONS_TOKEN is not a valid operator token")
        outside = [s.node for s in self.schedules if not principal.may_see(s.node)]
        if outside:
            raise RuntimeError(f"ROLLCALL_EDITIONS_TOKEN ({principal.scope}) does not reach "
                               f"the scheduled nodes {', '.join(outside)}")
        self.principal = principal

    def due(self, now: datetime) -> list[tuple[EditionSchedule, date]]:
        """Today's schedules whose time has come (at the scheduled minute, not before)."""
        zone = self.ctx.settings.zone
        today = now.astimezone(zone).date()
        return [(s, today) for s in self.schedules
                if now >= cutoff_instant(today, s.at, zone)]

    async def run_due(self) -> list[uuid.UUID]:
        """Make every edition due and not made yet; the ids of those this replica made."""
        made = []
        for schedule, day in self.due(self.clock()):
            try:
                edition_id = await self.produce(schedule, day)
            except (UpstreamDown, compose.Passed) as exc:
                log.warning("edition %s not made, tried again at the next look: %r",
                            _lock_key(schedule, day), exc)
                continue
            if edition_id is not None:
                made.append(edition_id)
        if made and self.relay is not None:
            self.relay.wake()
        return made

    async def produce(self, schedule: EditionSchedule, day: date) -> uuid.UUID | None:
        """The edition of one schedule's day, made and kept with its event; None when it is
        made already, or another replica is making it now."""
        async with self.ctx.sessions() as session, session.begin():
            locked = (await session.execute(
                text("SELECT pg_try_advisory_xact_lock(:cls, hashtext(:key))"),
                {"cls": LOCK_CLASS, "key": _lock_key(schedule, day)})).scalar_one()
            if not locked:
                return None
            made = (await session.execute(select(EditionRow.edition_id).where(
                EditionRow.node == schedule.node, EditionRow.day == day,
                EditionRow.scheduled == schedule.at))).scalar_one_or_none()
            if made is not None:
                return None
            doc = await compose.summary_of(self.ctx, self.token, schedule.node, Span(day=day))
            produced_at = self.clock()
            holder = self.principal.holder if self.principal else "scheduled"
            signed = {"填报时间": produced_at.astimezone(self.ctx.settings.zone)
                      .strftime("%Y-%m-%d %H:%M")}
            xlsx = summary.to_workbook(doc, signed)
            row = EditionRow(
                edition_id=uuid.uuid4(), node=schedule.node, day=day, scheduled=schedule.at,
                produced_at=produced_at, produced_by=holder, title=summary.title_of(doc),
                filename=(f"summary-{schedule.node}-{day.isoformat()}-"
                          f"{schedule.at.strftime('%H%M')}.xlsx"),
                sha256=hashlib.sha256(xlsx).hexdigest(), xlsx=xlsx, csv=summary.to_csv(doc),
                document=doc)
            event = EditionPublished(
                edition_id=row.edition_id, node=row.node, name=doc.get("name"), day=day,
                scheduled=schedule.at, produced_at=produced_at, title=row.title,
                filename=row.filename, media_type=XLSX, size=len(xlsx), sha256=row.sha256,
                download=f"/api/editions/{row.edition_id}/xlsx")
            session.add(row)
            session.add(ConsoleOutboxRow(subject=event.subject, msg_id=event.msg_id,
                                         payload=event.model_dump_json().encode(),
                                         created_at=produced_at))
        log.info("edition made", extra={"edition": _lock_key(schedule, day)})
        return row.edition_id

    async def run(self, poll_s: float) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_due()
            except Exception:
                log.exception("editions: a look failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), poll_s)

    def stop(self) -> None:
        self._stopping.set()
