"""What aggregate's edges share at run time."""

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.aggregate import cutoffs, expected
from services.aggregate.cutoffs import CutoffWatch
from services.aggregate.live import Announcer
from services.aggregate.projector import BatchResult, apply_batch
from services.aggregate.rollup import NodeDay
from shared.catalogue import Catalogue
from shared.contracts import CalendarChange, Event, ReportAccepted
from shared.deadlines import Moment
from shared.dhis2 import IdMapping, load_mapping
from shared.hierarchy import ancestors
from shared.registry import calendar
from shared.settings import Settings

log = logging.getLogger(__name__)
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
    cutoff_watch: CutoffWatch = field(default_factory=CutoffWatch)
    # DHIS2 identifiers (ROLLCALL_DHIS2_MAPPING), read at start: a bad file stops the service.
    dhis2: IdMapping = field(default=None)  # type: ignore[assignment]
    # Publishes an event to its stream with its message id (calendars declared and ended).
    publish: Callable[[Event], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        if self.dhis2 is None:
            self.dhis2 = load_mapping(self.settings.dhis2_mapping, self.catalogue.metrics)

    def today(self) -> date:
        return self.clock().astimezone(self.settings.zone).date()

    def moment(self) -> Moment:
        """Now, in the deployment's zone: what the figures are read at."""
        return Moment(self.clock(), self.settings.zone)

    async def apply(self, events: list[ReportAccepted]) -> BatchResult:
        """One batch, one transaction: the effect and the record of what was applied."""
        async with self.sessions() as session, session.begin():
            result = await apply_batch(session, events, self.catalogue, self.clock(),
                                       self.known_days)
        self.stats.batches += 1
        self.stats.events += len(events)
        self.stats.applied += result.applied
        if self.announcer is not None and result.touched:
            self.announcer.touched(result.touched, sectors_of(events, result.touched))
        return result

    async def ensure_today(self) -> None:
        """Build today's expected figures ahead of the first report (and after midnight): a day
        is built when it is entered, never by a read. A read of a day never built counts its
        expected units from the registry on the spot (views._stored)."""
        async with self.sessions() as session, session.begin():
            await expected.enter_days(session, {self.today()}, self.clock(), self.known_days)

    async def registry_changed(self) -> None:
        """Recount the expected figures of every built day that can still receive reports (and
        read today's cutoffs again: a unit's own cutoff may have changed)."""
        self.cutoff_watch.forget()
        async with self.sessions() as session:
            days = await expected.built_since(
                session, expected.recent(self.today(), self.settings.lock_days))
        for day in days:  # a transaction per day: batches of other days go on meanwhile
            async with self.sessions() as session, session.begin():
                await expected.rebuild(session, {day}, self.clock())

    async def declare_exemption(self, declaration: calendar.Declaration, scope: str,
                                by: str, sector: str | None = None) -> calendar.Exemption:
        """免报: record a calendar within `scope` (shared/registry/calendar.py says what it
        covers), then recount the expected figures of the days it may touch."""
        async with self.sessions() as session, session.begin():
            exemption = await calendar.declare(session, declaration, scope, by, self.clock(),
                                               self.today(), sector)
        await self.registry_changed()
        await self._announce("declared", exemption, exemption.reason, by)
        return exemption

    async def end_exemption(self, exemption_id: int, reason: str, scope: str,
                            by: str, sector: str | None = None) -> calendar.Exemption:
        """End a calendar from today on (the days before keep it), then recount."""
        async with self.sessions() as session, session.begin():
            before = self.clock()
            exemption = await calendar.end(session, exemption_id, reason, scope, by,
                                           before, self.today(), sector)
        await self.registry_changed()
        if exemption.ended_at == before:  # ended now, not over already
            await self._announce("ended", exemption, reason, by)
        return exemption

    async def _announce(self, change: CalendarChange, x: calendar.Exemption, reason: str,
                        by: str) -> None:
        """Tell the other services (alerts takes exempted units off its missing-report
        alerts). After commit, without an outbox: a failure is logged, the calendar stands."""
        if self.publish is None:
            return
        try:
            await self.publish(calendar.announcement(x, change, reason, by))
        except Exception:
            log.exception("calendar %s was %s but could not be announced", x.exemption_id,
                          change)

    async def pass_cutoffs(self) -> int:
        """Announce today's cutoffs that have passed and were not announced yet (by this
        replica or another): a `RollupUpdated` for every node-day whose pending units they
        turned missing. Returns how many node-days were announced. Cheap when nothing passed:
        no query but a refresh of the day's cutoffs now and then."""
        moment, day = self.moment(), self.today()
        watch = self.cutoff_watch
        if watch.stale(day):
            async with self.sessions() as session:
                watch.know(day, await cutoffs.cutoffs_of(session, day))
        announced = 0
        for cutoff in watch.due(day, moment):
            async with self.sessions() as session, session.begin():
                node_days = await cutoffs.claim(session, day, cutoff, moment.now)
                sectors = await cutoffs.sectors_of(session, cutoff) if node_days else set()
            watch.done.add((day, cutoff))
            if node_days and self.announcer is not None:
                self.announcer.touched(node_days, dict.fromkeys(node_days, sectors))
                announced += len(node_days)
        return announced


def sectors_of(events: list[ReportAccepted], touched: set[NodeDay]
               ) -> dict[NodeDay, set[str]]:
    """The sectors of the reports behind each node-day a batch touched: the live hint says them,
    so a sector's page is told of its own units' reports only."""
    leaves: dict[NodeDay, set[str]] = {}  # a village's reports first: a few per batch
    for e in events:
        leaves.setdefault((e.node, e.day), set()).add(e.sector)
    out: dict[NodeDay, set[str]] = {}
    for (leaf, day), sectors in leaves.items():
        for node in ancestors(leaf):
            if (node, day) in touched:
                out.setdefault((node, day), set()).update(sectors)
    return out


CUTOFF_CHECK_S = 0.5


async def watch_cutoffs(ctx: AggregateContext, interval_s: float = CUTOFF_CHECK_S) -> None:
    """Runs beside the consumer: the passing of every cutoff announced within a second."""
    while True:
        try:
            await ctx.pass_cutoffs()
        except Exception:
            log.exception("could not announce the passing of a cutoff; retrying")
        await asyncio.sleep(interval_s)
