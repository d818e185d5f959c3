"""What the notify service's edges share at run time."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify import reminders
from services.notify.policy import Policy
from services.notify.worker import DeliveryWorker
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

    def today(self) -> date:
        return self.clock().astimezone(self.settings.zone).date()

    async def reload_reference(self) -> None:
        async with self.sessions() as session:
            self.reference = await Reference.load(session)
        freeze_long_lived()

    async def remind(self) -> int:
        """The reminders whose time has come (one transaction, then the worker sends)."""
        async with self.sessions() as session, session.begin():
            made = await reminders.remind(session, self.reference, self.policy, self.channels,
                                          self.settings.zone, self.clock())
        if made:
            self.worker.wake()
        return made
