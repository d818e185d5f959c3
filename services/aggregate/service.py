"""What aggregate's edges share at run time."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.catalogue import Catalogue
from shared.settings import Settings


@dataclass
class AggregateContext:
    settings: Settings
    clock: Callable[[], datetime]
    sessions: async_sessionmaker[AsyncSession]
    catalogue: Catalogue

    def today(self) -> date:
        return self.clock().astimezone(self.settings.zone).date()
