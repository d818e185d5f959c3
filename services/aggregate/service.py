"""What aggregate's edges share at run time."""

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.aggregate import expected
from services.aggregate.live import Announcer
from services.aggregate.projector import BatchResult, apply_batch
from shared.catalogue import Catalogue
from shared.contracts import ReportAccepted
from shared.settings import Settings

DURABLE = "aggregate"


def filters(subject_filter: str) -> list[str]:
    """`ROLLCALL_AGGREGATE_FILTER` may list several subjects, comma-separated."""
    return [s.strip() for s in subject_filter.split(",") if s.strip()] or ["report.accepted.>"]


def durable_name(subject_filter: str) -> str:
    """`aggregate` for all traffic, `aggregate-430621` for `report.accepted.430621.>`,
    `aggregate-430621-430622` for two counties: replicas with the same filter share a durable."""
    parts = [re.sub(r"[^0-9A-Za-z]+", "-", s.removeprefix("report.accepted.")).strip("-")
             for s in filters(subject_filter)]
    part = "-".join(p for p in parts if p)
    return f"{DURABLE}-{part}" if part else DURABLE


@dataclass
class Stats:
    events: int = 0  # accepted-report events taken in (redeliveries included)
    applied: int = 0  # unit-day revisions that changed the rollups
    batches: int = 0
    poisoned: int = 0  # messages that are not a ReportAccepted (kept in the log, not retried)


@dataclass
class AggregateContext:
    settings: Settings
    clock: Callable[[], datetime]
    sessions: async_sessionmaker[AsyncSession]
    catalogue: Catalogue
    announcer: Announcer | None = None
    known_days: set[date] = field(default_factory=set)
    stats: Stats = field(default_factory=Stats)

    def today(self) -> date:
        return self.clock().astimezone(self.settings.zone).date()

    async def apply(self, events: list[ReportAccepted]) -> BatchResult:
        """One batch, one transaction: the effect and the record of what was applied."""
        async with self.sessions() as session, session.begin():
            result = await apply_batch(session, events, self.catalogue, self.clock(),
                                       self.known_days)
        self.stats.batches += 1
        self.stats.events += len(events)
        self.stats.applied += result.applied
        if self.announcer is not None and result.touched:
            self.announcer.touched(result.touched)
        return result

    async def ensure_today(self) -> None:
        """Build today's expected figures ahead of the first report (and after midnight): a day
        is built when it is entered, never by a read. A read of a day never built counts its
        expected units from the registry on the spot (views._stored)."""
        async with self.sessions() as session, session.begin():
            await expected.enter_days(session, {self.today()}, self.clock(), self.known_days)

    async def registry_changed(self) -> None:
        """Recount the expected figures of every built day that can still receive reports."""
        async with self.sessions() as session:
            days = await expected.built_since(
                session, expected.recent(self.today(), self.settings.lock_days))
        for day in days:  # a transaction per day: batches of other days go on meanwhile
            async with self.sessions() as session, session.begin():
                await expected.rebuild(session, {day}, self.clock())
