"""What the console's routes need: settings, clock, reference data, the other services, the hub
of live events, and who a token belongs to."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.console.live import Hub
from services.console.upstream import Upstream
from shared.auth import Principal, authenticate
from shared.catalogue import Catalogue
from shared.settings import Settings

# A verified token is trusted this long: pages poll and stream, and each call need not reach the
# database. A revocation therefore reaches the console within this many seconds.
TOKEN_TTL_S = 10.0


@dataclass
class ConsoleContext:
    settings: Settings
    clock: Callable[[], datetime]
    sessions: async_sessionmaker[AsyncSession]
    catalogue: Catalogue
    upstream: Upstream
    hub: Hub
    _known: dict[str, tuple[float, Principal]] = field(default_factory=dict)

    def today(self) -> date:
        return self.clock().astimezone(self.settings.zone).date()

    async def principal(self, token: str) -> Principal | None:
        if not token or len(token) > 200:
            return None
        now = time.monotonic()
        hit = self._known.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self.sessions() as session:
            principal = await authenticate(session, token)
        if principal is not None:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[token] = (now + TOKEN_TTL_S, principal)
        return principal
