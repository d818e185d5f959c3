"""Read side of the rollups: a node's totals and completeness for a day, and its children's."""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.catalogue import Catalogue
from shared.hierarchy import level_of

# Units expected on a day: active then, and placed (on that day) at or below the node.
EXPECTED = text("""
    WITH placed AS (
        SELECT DISTINCT ON (p.unit_code) p.unit_code, p.node_code
        FROM registry.placements p WHERE p.valid_from <= :day
        ORDER BY p.unit_code, p.valid_from DESC)
    SELECT placed.unit_code, u.name, placed.node_code FROM placed
    JOIN registry.units u ON u.code = placed.unit_code
    WHERE placed.node_code LIKE :node || '%'
      AND (u.active_from IS NULL OR u.active_from <= :day)
      AND (u.active_to IS NULL OR u.active_to >= :day)
""")
REPORTED = text("""
    SELECT unit_code, late, zero FROM aggregate.unit_days
    WHERE day = :day AND node_code LIKE :node || '%'
""")
TOTALS = text("""
    SELECT metric, value FROM aggregate.rollups WHERE node_code = :node AND day = :day
""")
COUNTS = text("""
    SELECT reported, zero, late FROM aggregate.completeness WHERE node_code = :node AND day = :day
""")
CHILDREN = text("SELECT code, name FROM registry.nodes WHERE parent_code = :node ORDER BY code")
NAME = text("SELECT name FROM registry.nodes WHERE code = :node")


@dataclass
class Completeness:
    expected: int
    reported: int
    zero: int
    late: int
    missing: list[dict]
    late_units: list[dict]

    @property
    def reporting_rate(self) -> float | None:
        return self.reported / self.expected if self.expected else None

    @property
    def on_time_rate(self) -> float | None:
        return (self.reported - self.late) / self.expected if self.expected else None


async def totals(session: AsyncSession, node: str, day: date) -> dict[str, float]:
    rows = await session.execute(TOTALS, {"node": node, "day": day})
    return {metric: value for metric, value in rows.tuples()}


async def completeness(session: AsyncSession, node: str, day: date) -> Completeness:
    """Kept counts (reported, zero, late) with the lists of missing and late units."""
    counts = (await session.execute(COUNTS, {"node": node, "day": day})).first() or (0, 0, 0)
    expected = (await session.execute(EXPECTED, {"node": node, "day": day})).all()
    reported = {r.unit_code: r for r in await session.execute(REPORTED, {"node": node, "day": day})}
    missing = [{"unit": u.unit_code, "name": u.name, "node": u.node_code}
               for u in expected if u.unit_code not in reported]
    names = {u.unit_code: u for u in expected}
    late = [{"unit": code, "name": names[code].name if code in names else None,
             "node": names[code].node_code if code in names else None}
            for code, r in reported.items() if r.late]
    return Completeness(len(expected), counts[0], counts[1], counts[2], missing, late)


async def node_view(session: AsyncSession, node: str, day: date, catalogue: Catalogue,
                    with_lists: bool = True) -> dict:
    level_of(node)
    name = (await session.execute(NAME, {"node": node})).scalar_one_or_none()
    values = await totals(session, node, day)
    comp = await completeness(session, node, day)
    view = {
        "node": node, "name": name, "level": level_of(node).name.lower(), "day": day,
        "values": values, "ratios": catalogue.ratios_of(values),
        "completeness": {"expected": comp.expected, "reported": comp.reported,
                         "zero": comp.zero, "late": comp.late,
                         "missing": comp.expected - comp.reported,
                         "reporting_rate": comp.reporting_rate, "on_time_rate": comp.on_time_rate},
    }
    if with_lists:
        view["completeness"]["missing_units"] = comp.missing
        view["completeness"]["late_units"] = comp.late_units
    return view


async def children(session: AsyncSession, node: str) -> list[tuple[str, str]]:
    return list((await session.execute(CHILDREN, {"node": node})).tuples())
