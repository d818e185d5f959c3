"""What the notify service's edges share at run time."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify.policy import Policy
from services.notify.worker import DeliveryWorker
from shared.settings import Settings


@dataclass
class NotifyContext:
    settings: Settings
    clock: Callable[[], datetime]
    sessions: async_sessionmaker[AsyncSession]
    policy: Policy
    channels: tuple[str, ...]  # those this deployment can send by
    worker: DeliveryWorker

    def today(self) -> date:
        return self.clock().astimezone(self.settings.zone).date()
