"""What the notify service's edges share at run time."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify import reminders
from services.notify.hosts import AllowedHosts
from services.notify.policy import Policy
from services.notify.sight import AlertsSight
from services.notify.worker import DeliveryWorker
from shared.deadlines import local_day
from shared.outbox import OutboxRelay
from shared.registry.reference import Reference
from shared.runtime import freeze_long_lived
from shared.settings import Settings


@dataclass
class NotifyContext:
    settings: Settings
    clock: Callable[[], datetime]
    sessions: async_sessionmaker[AsyncSession]
    policy: Policy
    channels: tuple[str, ...]  # those this deployment can send by
    worker: DeliveryWorker
    reference: Reference  # units, their cutoffs and placements: whom to remind
    hosts: AllowedHosts = field(default_factory=lambda: AllowedHosts(()))  # robots' webhooks
    relay: OutboxRelay | None = None  # delivery outcomes to the alerts service
    alerts: AlertsSight | None = None  # which alerts a sector operator sees
    cutoffs: frozenset[time] = frozenset()
    # The (day, cutoff) whose reminders this process has seen made: not claimed again.
    reminded: set[tuple[date, time]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.cutoffs = reminders.cutoffs_of(self.reference)

    def today(self) -> date:
        return local_day(self.clock(), self.settings.zone)

    async def reload_reference(self) -> None:
        async with self.sessions() as session:
            self.reference = await Reference.load(session)
        self.cutoffs = reminders.cutoffs_of(self.reference)
        freeze_long_lived()

    async def remind(self) -> int:
        """The reminders whose time has come (one transaction, then the worker sends)."""
        if self.policy.reminder_before is None:
            return 0
        now = self.clock()
        due = [d for d in reminders.due_cutoffs(self.cutoffs, now, self.policy.reminder_before,
                                                self.settings.zone) if d not in self.reminded]
        if not due:
            return 0
        async with self.sessions() as session, session.begin():
            made = await reminders.remind(session, self.reference, self.policy, self.channels,
                                          self.settings.zone, now, due)
        self.reminded.update(due)
        if made:
            self.worker.wake()
        return made
