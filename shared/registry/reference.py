"""An in-memory snapshot of the registry, for validating at the door without a query per report.

Reloaded whole when a `registry.changed` event arrives; a snapshot is immutable, so readers never
see half a reload.
"""

import bisect
from dataclasses import dataclass
from datetime import date, time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.registry.models import Node, Placement, Unit
from shared.registry.unit_types import unit_types


@dataclass(frozen=True, slots=True)
class UnitInfo:
    code: str
    name: str
    unit_type: str
    sector: str
    active_from: date | None
    active_to: date | None
    cutoff: time
    # (valid_from, node) sorted by valid_from
    placements: tuple[tuple[date, str], ...]

    def active_on(self, day: date) -> bool:
        return ((self.active_from is None or self.active_from <= day)
                and (self.active_to is None or day <= self.active_to))

    def node_on(self, day: date) -> str | None:
        starts = [start for start, _ in self.placements]
        i = bisect.bisect_right(starts, day) - 1
        return self.placements[i][1] if i >= 0 else None


@dataclass(frozen=True)
class Reference:
    nodes: dict[str, str]  # code -> name
    units: dict[str, UnitInfo]

    @classmethod
    async def load(cls, session: AsyncSession) -> "Reference":
        types = unit_types()
        nodes = dict((await session.execute(select(Node.code, Node.name))).tuples().all())
        placements: dict[str, list[tuple[date, str]]] = {}
        rows = await session.execute(
            select(Placement.unit_code, Placement.valid_from, Placement.node_code)
            .order_by(Placement.unit_code, Placement.valid_from))
        for unit_code, valid_from, node_code in rows.tuples():
            placements.setdefault(unit_code, []).append((valid_from, node_code))
        units = {}
        for u in (await session.execute(select(Unit))).scalars():
            default = types[u.unit_type].cutoff if u.unit_type in types else time(23, 59)
            units[u.code] = UnitInfo(u.code, u.name, u.unit_type, u.sector, u.active_from,
                                     u.active_to, u.cutoff or default,
                                     tuple(placements.get(u.code, ())))
        return cls(nodes, units)
