"""What the signoff service's edges share at run time."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.aggregation import MetricKinds
from shared.outbox import OutboxRelay
from shared.registry.reference import Reference
from shared.runtime import freeze_long_lived
from shared.settings import Settings
from shared.signoff_rules import SignoffRules


@dataclass
class SignoffContext:
    settings: Settings
    clock: Callable[[], datetime]
    sessions: async_sessionmaker[AsyncSession]
    rules: SignoffRules
    kinds: MetricKinds  # how each metric combines across units (the catalogue's)
    reference: Reference  # the nodes, their names and the units placed below them
    relay: OutboxRelay

    async def reload_reference(self) -> None:
        async with self.sessions() as session:
            self.reference = await Reference.load(session)
        freeze_long_lived()
