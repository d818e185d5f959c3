"""What the console's routes need: settings, clock, reference data, the other services, the hub
of live events, and who a token belongs to."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.console.live import Hub
from services.console.upstream import Upstream
from shared.auth import Principal
from shared.catalogue import Catalogue
from shared.http_auth import Authenticator
from shared.settings import Settings


@dataclass
class ConsoleContext:
    settings: Settings
    clock: Callable[[], datetime]
    sessions: async_sessionmaker[AsyncSession]
    catalogue: Catalogue
    upstream: Upstream
    hub: Hub
    authenticator: Authenticator

    def today(self) -> date:
        return self.clock().astimezone(self.settings.zone).date()

    async def principal(self, token: str) -> Principal | None:
        """Who a token belongs to; a verified one is remembered for `auth_cache_s` seconds."""
        return await self.authenticator.principal(token)
