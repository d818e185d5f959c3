"""What ingest's edges share at run time: settings, the clock, sessions, reference data, relay,
and the authenticator that turns tokens into principals."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.ratelimit import UnitRate
from shared.catalogue import Catalogue
from shared.dhis2 import IdMapping, load_mapping
from shared.http_auth import Authenticator
from shared.outbox import OutboxRelay
from shared.registry.reference import Reference
from shared.rules import Rules, load_rules
from shared.runtime import freeze_long_lived
from shared.settings import Settings


@dataclass
class IngestContext:
    settings: Settings
    clock: Callable[[], datetime]
    sessions: async_sessionmaker[AsyncSession]
    catalogue: Catalogue
    reference: Reference
    relay: OutboxRelay
    authenticator: Authenticator
    limiter: UnitRate = field(default=None)  # type: ignore[assignment]
    rules: Rules = field(default=None)  # type: ignore[assignment]  # case deadlines
    # DHIS2 identifiers (ROLLCALL_DHIS2_MAPPING), read at start: a bad file stops the service.
    dhis2: IdMapping = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.rules is None:
            self.rules = load_rules(self.settings.rules)
        if self.dhis2 is None:
            self.dhis2 = load_mapping(self.settings.dhis2_mapping, self.catalogue.metrics)
        if self.limiter is None:
            self.limiter = UnitRate(self.settings.submit_rate_burst,
                                    self.settings.submit_rate_interval_s)

    async def reload_reference(self) -> None:
        async with self.sessions() as session:
            self.reference = await Reference.load(session)
        freeze_long_lived()
