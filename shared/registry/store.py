"""Writing reference data: idempotent upserts, so loading the same data twice changes nothing."""

from collections.abc import Iterable
from datetime import date

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.hierarchy import level_of, parent_of
from shared.registry.models import Node, Placement, Unit


async def upsert_nodes(session: AsyncSession, nodes: Iterable[tuple[str, str]]) -> None:
    """(code, name) pairs, parents before children."""
    rows = [{"code": code, "name": name, "level": int(level_of(code)),
             "parent_code": parent_of(code)} for code, name in nodes]
    if rows:
        stmt = insert(Node).values(rows)
        await session.execute(stmt.on_conflict_do_update(
            index_elements=[Node.code], set_={"name": stmt.excluded.name}))


async def upsert_units(session: AsyncSession, units: Iterable[dict],
                       placed_from: date = date(2020, 1, 1)) -> None:
    """Units as dicts of Unit's columns plus `node`, the node they belong to from `placed_from`."""
    units = list(units)
    if not units:
        return
    rows = [{k: u.get(k) for k in ("code", "name", "unit_type", "sector", "active_from",
                                   "active_to", "cutoff")} for u in units]
    stmt = insert(Unit).values(rows)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[Unit.code],
        set_={c: stmt.excluded[c] for c in ("name", "unit_type", "sector", "active_from",
                                            "active_to", "cutoff")}))
    placements = [{"unit_code": u["code"], "valid_from": u.get("placed_from", placed_from),
                   "node_code": u["node"]} for u in units]
    pstmt = insert(Placement).values(placements)
    await session.execute(pstmt.on_conflict_do_update(
        index_elements=[Placement.unit_code, Placement.valid_from],
        set_={"node_code": pstmt.excluded.node_code}))
