"""An in-memory snapshot of the registry, for validating at the door without a query per report.

Reloaded whole when a `registry.changed` event arrives; a snapshot is immutable, so readers never
see half a reload.
"""

from dataclasses import dataclass
from datetime import date, time

from sqlalchemy.ext.asyncio import AsyncSession

from shared.registry import placement
from shared.registry.calendar import cutoff_of
from shared.registry.store import driver_connection


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
        return placement.active_on(self.active_from, self.active_to, day)

    def node_on(self, day: date) -> str | None:
        return placement.node_on(self.placements, day)


@dataclass(frozen=True)
class Reference:
    nodes: dict[str, str]  # code -> name
    units: dict[str, UnitInfo]

    @classmethod
    async def load(cls, session: AsyncSession) -> "Reference":
        # Straight from the driver, not through ORM rows: a province's 200,000 units load in
        # about a second instead of five, and a reload holds the event loop that much less.
        raw = await driver_connection(session)
        nodes = dict(await raw.fetch("SELECT code, name FROM registry.nodes"))
        placements: dict[str, list[tuple[date, str]]] = {}
        for unit_code, valid_from, node_code in await raw.fetch(
                "SELECT unit_code, valid_from, node_code FROM registry.placements "
                "ORDER BY unit_code, valid_from"):
            placements.setdefault(unit_code, []).append((valid_from, node_code))
        units = {}
        for code, name, unit_type, sector, active_from, active_to, cutoff in await raw.fetch(
                "SELECT code, name, unit_type, sector, active_from, active_to, cutoff "
                "FROM registry.units"):
            units[code] = UnitInfo(code, name, unit_type, sector, active_from, active_to,
                                   cutoff_of(cutoff, unit_type), tuple(placements.get(code, ())))
        return cls(nodes, units)
