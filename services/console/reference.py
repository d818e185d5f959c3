"""Names from the registry (reference data every service may read): the way up to the
operator's node, a unit's card, and the units a form may report for."""

from datetime import date

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.hierarchy import ancestors as _ancestors
from shared.registry.models import Node, Placement, Unit

FIND_LIMIT = 30


def ancestors(node: str) -> list[str]:
    return _ancestors(node)


async def node_names(session: AsyncSession, codes: list[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = await session.execute(select(Node.code, Node.name).where(Node.code.in_(codes)))
    return {code: name for code, name in rows}


async def unit(session: AsyncSession, code: str) -> dict | None:
    row = (await session.execute(select(Unit).where(Unit.code == code))).scalar_one_or_none()
    if row is None:
        return None
    node = (await session.execute(
        select(Placement.node_code).where(Placement.unit_code == code)
        .order_by(Placement.valid_from.desc()).limit(1))).scalar_one_or_none()
    return {"code": row.code, "name": row.name, "unit_type": row.unit_type,
            "sector": row.sector, "node": node}


async def find_units(session: AsyncSession, scope: str, q: str, day: date) -> list[dict]:
    """Units placed under `scope` on `day` whose code or name contains `q`."""
    current = (select(Placement.unit_code, Placement.node_code,
                      Placement.valid_from).distinct(Placement.unit_code)
               .where(Placement.valid_from <= day)
               .order_by(Placement.unit_code, Placement.valid_from.desc()).subquery())
    stmt = (select(Unit.code, Unit.name, Unit.unit_type, current.c.node_code)
            .join(current, current.c.unit_code == Unit.code)
            .where(current.c.node_code.startswith(scope))
            .order_by(Unit.code).limit(FIND_LIMIT))
    q = q.strip()
    if q:
        stmt = stmt.where(or_(Unit.code.contains(q), Unit.name.contains(q)))
    stmt = stmt.where(and_(or_(Unit.active_from.is_(None), Unit.active_from <= day),
                           or_(Unit.active_to.is_(None), Unit.active_to >= day)))
    rows = await session.execute(stmt)
    return [{"code": c, "name": n, "unit_type": t, "node": node} for c, n, t, node in rows]


async def name_alerts(session: AsyncSession, alerts: list[dict]) -> None:
    """Adds `unit_name` and `node_name` to each alert: operators read names, not codes."""
    nodes = await node_names(session, sorted({a["node"] for a in alerts if a.get("node")}))
    codes = sorted({a["unit"] for a in alerts if a.get("unit")})
    units = dict((await session.execute(
        select(Unit.code, Unit.name).where(Unit.code.in_(codes)))).all()) if codes else {}
    for alert in alerts:
        alert["node_name"] = nodes.get(alert.get("node"))
        alert["unit_name"] = units.get(alert.get("unit"))
