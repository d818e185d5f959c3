"""The passing of a cutoff (docs/architecture.md, "Cutoffs, completeness, timeliness").

When a cutoff passes, the expected units of that cutoff that have not reported turn from pending
(待报) into missing (漏报) without any report arriving. Node-days keep their unreported units by
cutoff and reads split them at the instant asked (`rollup.Tally.at`), so nothing has to be
rewritten then, whatever the number of units: what the passing costs is one indexed read of the
node-days concerned and one `RollupUpdated` for each, so that live views fetch their figures
again. Each day's cutoff is claimed once in `aggregate.cutoffs` under the day's lock, so replicas
announce it once, and a cutoff that passed while aggregate was down is announced when it starts
(its figures were right all along)."""

import time as monotonic_time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.aggregate import expected
from services.aggregate.rollup import NodeDay
from shared.deadlines import Moment
from shared.registry.calendar import cutoff_sql

# The cutoffs that still have unreported units somewhere on the day: the top level's rows hold
# every unit below them.
CUTOFFS_OF_DAY = text("""
    SELECT DISTINCT k FROM aggregate.node_days nd CROSS JOIN jsonb_object_keys(nd.unreported) k
    WHERE nd.day = :day AND length(nd.node_code) = 2
""")
CLAIM = text("""
    INSERT INTO aggregate.cutoffs (day, cutoff, announced_at, nodes) VALUES (:day, :cutoff, :now, 0)
    ON CONFLICT DO NOTHING RETURNING day
""")
CONCERNED = text("""
    SELECT node_code FROM aggregate.node_days
    WHERE day = :day AND unreported ? CAST(:cutoff AS text)
""")
# Whose pages a cutoff's passing concerns: the sectors of the units it is the cutoff of (their
# own, else their type's).
SECTORS = text(f"""
    SELECT DISTINCT u.sector FROM registry.units u
    WHERE {cutoff_sql("u.cutoff", "u.unit_type")} = CAST(:cutoff AS time)
""")
RECORD = text("UPDATE aggregate.cutoffs SET nodes = :nodes WHERE day = :day AND cutoff = :cutoff")
CUTOFFS_REFRESH_S = 30.0


def passed(day: date, cutoffs: Iterable[str], moment: Moment) -> list[str]:
    """The cutoffs (as stored) that have passed on `day` at `moment`."""
    return sorted(c for c in cutoffs if moment.cutoff_passed(day, time.fromisoformat(c)))


async def cutoffs_of(session: AsyncSession, day: date) -> set[str]:
    return set((await session.execute(CUTOFFS_OF_DAY, {"day": day})).scalars())


async def claim(session: AsyncSession, day: date, cutoff: str, now: datetime
                ) -> list[NodeDay] | None:
    """Claim the passing of `cutoff` on `day`: the node-days whose unreported units it turns
    missing, or None if it was claimed before (by this replica or another). The caller commits."""
    await expected.lock_days(session, shared={day})  # a recount of the day finishes first
    the_cutoff = time.fromisoformat(cutoff)
    claimed = await session.execute(CLAIM, {"day": day, "cutoff": the_cutoff, "now": now})
    if claimed.scalar_one_or_none() is None:
        return None
    nodes = list((await session.execute(CONCERNED, {"day": day, "cutoff": cutoff})).scalars())
    await session.execute(RECORD, {"day": day, "cutoff": the_cutoff, "nodes": len(nodes)})
    return [(node, day) for node in nodes]


async def sectors_of(session: AsyncSession, cutoff: str) -> set[str]:
    """The sectors of the units whose cutoff `cutoff` is: the live hints of its passing name
    them, so a sector's page is told only of its own units' cutoffs."""
    return set((await session.execute(SECTORS, {"cutoff": time.fromisoformat(cutoff)}))
               .scalars())


@dataclass
class CutoffWatch:
    """What one replica knows of today's cutoffs: those it has seen claimed, and the cutoffs
    still holding unreported units (read again every `CUTOFFS_REFRESH_S`)."""

    done: set[tuple[date, str]] = field(default_factory=set)
    _known: tuple[date, float, set[str]] | None = None

    def stale(self, day: date) -> bool:
        return (self._known is None or self._known[0] != day
                or monotonic_time.monotonic() - self._known[1] > CUTOFFS_REFRESH_S)

    def forget(self) -> None:
        """The day's cutoffs are read again at the next look."""
        self._known = None

    def know(self, day: date, cutoffs: set[str]) -> None:
        self._known = (day, monotonic_time.monotonic(), cutoffs)
        self.done = {(d, c) for d, c in self.done if d == day}

    def due(self, day: date, moment: Moment) -> list[str]:
        cutoffs = self._known[2] if self._known is not None else set()
        return [c for c in passed(day, cutoffs, moment) if (day, c) not in self.done]
