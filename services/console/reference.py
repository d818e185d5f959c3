"""Names from the registry (reference data every service may read): the way up to the
operator's node, a unit's card, and the units a form may report for."""

from datetime import date

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.hierarchy import ancestors as _ancestors
from shared.registry.models import Node, Unit
from shared.registry.placement import placement_on

FIND_LIMIT = 30


def ancestors(node: str) -> list[str]:
    return list(_ancestors(node))


async def node_names(session: AsyncSession, codes: list[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = await session.execute(select(Node.code, Node.name).where(Node.code.in_(codes)))
    return {code: name for code, name in rows}


UNIT_ON = text(f"""
    SELECT u.code, u.name, u.unit_type, u.sector, p.node_code AS node
    FROM registry.units u
    LEFT JOIN {placement_on("CAST(:day AS date)")} AS p ON p.unit_code = u.code
    WHERE u.code = :code
""")


async def unit(session: AsyncSession, code: str, day: date) -> dict | None:
    """A unit's card on `day`: its node is where the placement rule puts it that day (none
    before its first placement)."""
    row = (await session.execute(UNIT_ON, {"code": code, "day": day})).one_or_none()
    return None if row is None else dict(row._mapping)


FIND_UNITS = text(f"""
    SELECT p.unit_code AS code, p.name, p.unit_type, p.node_code AS node
    FROM {placement_on("CAST(:day AS date)")} AS p
    WHERE p.active AND p.node_code LIKE :scope || '%'
      AND (CAST(:sector AS text) IS NULL OR p.sector = CAST(:sector AS text))
      AND (:q = '' OR strpos(p.unit_code, :q) > 0 OR strpos(p.name, :q) > 0)
    ORDER BY p.unit_code LIMIT :limit
""")


async def find_units(session: AsyncSession, scope: str, q: str, day: date,
                     sector: str | None = None) -> list[dict]:
    """Units active and placed under `scope` on `day` (of `sector` only, if given) whose code
    or name contains `q`."""
    rows = await session.execute(FIND_UNITS, {"scope": scope, "q": q.strip(), "day": day,
                                              "limit": FIND_LIMIT, "sector": sector})
    return [dict(r._mapping) for r in rows]


async def name_alerts(session: AsyncSession, alerts: list[dict]) -> None:
    """Adds `unit_name` and `node_name` to each alert: operators read names, not codes."""
    nodes = await node_names(session, sorted({a["node"] for a in alerts if a.get("node")}))
    codes = sorted({a["unit"] for a in alerts if a.get("unit")})
    units = dict((await session.execute(
        select(Unit.code, Unit.name).where(Unit.code.in_(codes)))).all()) if codes else {}
    for alert in alerts:
        alert["node_name"] = nodes.get(alert.get("node"))
        alert["unit_name"] = units.get(alert.get("unit"))
