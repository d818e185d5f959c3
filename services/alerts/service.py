"""What the alerts service's edges share at run time."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.catalogue import Catalogue
from shared.outbox import OutboxRelay
from shared.registry.reference import Reference
from shared.rules import Rules
from shared.runtime import freeze_long_lived
from shared.settings import Settings
from shared.signoff_rules import SignoffRules, load_signoff_rules


@dataclass
class AlertsContext:
    settings: Settings
    clock: Callable[[], datetime]
    sessions: async_sessionmaker[AsyncSession]
    rules: Rules
    reference: Reference
    relay: OutboxRelay
    catalogue: Catalogue  # its stock levels decide supply alerts
    # Which levels confirm their day and by when (missing confirmations).
    signoff: SignoffRules = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.signoff is None:
            self.signoff = load_signoff_rules(self.settings.signoff_config)

    def today(self) -> date:
        return self.clock().astimezone(self.settings.zone).date()

    async def reload_reference(self) -> None:
        async with self.sessions() as session:
            self.reference = await Reference.load(session)
        freeze_long_lived()
