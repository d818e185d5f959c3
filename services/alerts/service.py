"""What the alerts service's edges share at run time."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.settings import Settings


@dataclass
class AlertsContext:
    settings: Settings
    clock: Callable[[], datetime]
    sessions: async_sessionmaker[AsyncSession]
