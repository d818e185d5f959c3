"""Writing reference data: idempotent upserts, so loading the same data twice changes nothing."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

import asyncpg
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from shared.hierarchy import level_of, parent_of
from shared.registry.importer import Batch, Known, Plan, Problem, check
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


# ---------------------------------------------------------------- imports, in bulk

# One import at a time: each checks against what the registry holds when it takes the lock.
IMPORT_LOCK = "SELECT pg_advisory_xact_lock(hashtext('rollcall.registry.import'))"


@dataclass
class Counts:
    nodes_added: int = 0
    nodes_changed: int = 0
    units_added: int = 0
    units_changed: int = 0
    placements_set: int = 0
    placements_removed: int = 0

    @property
    def changed(self) -> bool:
        return any(vars(self).values())


@dataclass
class ImportResult:
    problems: list[Problem]
    counts: Counts | None  # None when refused
    nodes_read: int = 0
    units_read: int = 0
    announced: bool = False  # running services were told (registry.changed)
    announce_error: str | None = None


async def known(session: AsyncSession, unit_codes: list[str]) -> Known:
    raw = await driver_connection(session)
    nodes = {r[0] for r in await raw.fetch("SELECT code FROM registry.nodes")}
    placements: dict[str, list[tuple[date, str]]] = {}
    for unit, start, node in await raw.fetch(
            "SELECT unit_code, valid_from, node_code FROM registry.placements "
            "WHERE unit_code = ANY($1::text[]) ORDER BY unit_code, valid_from", unit_codes):
        placements.setdefault(unit, []).append((start, node))
    return Known(nodes, {u: tuple(p) for u, p in placements.items()})


async def import_batch(session: AsyncSession, batch: Batch, today: date) -> ImportResult:
    """Check a batch read from files against the registry and write it, all or nothing.

    The caller owns the transaction: it commits when there are no problems, and nothing is
    written when there are (this function writes only a plan that passed every check).
    """
    result = ImportResult(batch.problems, None, len(batch.nodes), len(batch.units))
    if batch.problems:
        return result
    await session.execute(text(IMPORT_LOCK))
    plan, result.problems = check(batch, await known(session, [u.code for u in batch.units]),
                                  today)
    if plan is not None:
        result.counts = await apply_plan(session, plan)
    return result


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under the session, in the session's transaction, for COPY."""
    # SQLAlchemy begins the driver's transaction lazily, at its first statement: make sure
    # it has begun, or what follows would run outside it.
    await session.execute(text("SELECT 1"))
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    return raw.driver_connection  # type: ignore[return-value]


async def _stage(raw: asyncpg.Connection, table: str, like: str, columns: tuple[str, ...],
                 records: list[tuple]) -> None:
    await raw.execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} "
                      f"(LIKE {like} INCLUDING DEFAULTS) ON COMMIT DROP; TRUNCATE {table}")
    await raw.copy_records_to_table(table, records=records, columns=columns)


async def _upsert(raw: asyncpg.Connection, sql: str) -> tuple[int, int]:
    """Run an INSERT ... RETURNING (xmax = 0): (rows added, rows changed)."""
    row = await raw.fetchrow(f"WITH up AS ({sql}) SELECT count(*) FILTER (WHERE added), "
                             "count(*) FILTER (WHERE NOT added) FROM up")
    return row[0], row[1]


async def apply_plan(session: AsyncSession, plan: Plan) -> Counts:
    """COPY the plan into temporary tables, then upsert only what differs: re-importing the
    same files changes nothing, and the counts say so."""
    raw = await driver_connection(session)
    counts = Counts()
    if plan.nodes:
        await _stage(raw, "import_nodes", "registry.nodes",
                     ("code", "name", "level", "parent_code"), plan.nodes)
        counts.nodes_added, counts.nodes_changed = await _upsert(raw, """
            INSERT INTO registry.nodes AS n (code, name, level, parent_code)
            SELECT code, name, level, parent_code FROM import_nodes
            ON CONFLICT (code) DO UPDATE SET name = excluded.name
            WHERE n.name IS DISTINCT FROM excluded.name
            RETURNING (xmax = 0) AS added""")
    if plan.units:
        await _stage(raw, "import_units", "registry.units",
                     ("code", "name", "unit_type", "sector", "active_from", "active_to",
                      "cutoff"), plan.units)
        counts.units_added, counts.units_changed = await _upsert(raw, """
            INSERT INTO registry.units AS u (code, name, unit_type, sector, active_from,
                                             active_to, cutoff)
            SELECT code, name, unit_type, sector, active_from, active_to, cutoff
            FROM import_units
            ON CONFLICT (code) DO UPDATE SET name = excluded.name,
                unit_type = excluded.unit_type, sector = excluded.sector,
                active_from = excluded.active_from, active_to = excluded.active_to,
                cutoff = excluded.cutoff
            WHERE (u.name, u.unit_type, u.sector, u.active_from, u.active_to, u.cutoff)
                IS DISTINCT FROM (excluded.name, excluded.unit_type, excluded.sector,
                                  excluded.active_from, excluded.active_to, excluded.cutoff)
            RETURNING (xmax = 0) AS added""")
    if plan.unplacements:
        units, days = zip(*plan.unplacements, strict=True)
        status = await raw.execute(
            "DELETE FROM registry.placements p USING unnest($1::text[], $2::date[]) AS d(u, f) "
            "WHERE p.unit_code = d.u AND p.valid_from = d.f", list(units), list(days))
        counts.placements_removed = int(status.split()[-1])
    if plan.placements:
        await _stage(raw, "import_placements", "registry.placements",
                     ("unit_code", "valid_from", "node_code"), plan.placements)
        added, changed = await _upsert(raw, """
            INSERT INTO registry.placements AS p (unit_code, valid_from, node_code)
            SELECT unit_code, valid_from, node_code FROM import_placements
            ON CONFLICT (unit_code, valid_from) DO UPDATE SET node_code = excluded.node_code
            WHERE p.node_code IS DISTINCT FROM excluded.node_code
            RETURNING (xmax = 0) AS added""")
        counts.placements_set = added + changed
    return counts
