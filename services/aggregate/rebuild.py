"""Rewriting a day from scratch: the unit records given (from the ledger, by reconcile --repair),
then every node's rollups and completeness recounted from the unit records and the registry.
Holds the day's exclusive lock, so no batch applies to the day meanwhile."""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.aggregate import expected
from services.aggregate.expected import LENGTHS
from shared.aggregation import over_units, sql_combine, sql_kinds
from shared.catalogue import Catalogue


@dataclass(frozen=True, slots=True)
class UnitRecord:
    """What aggregate keeps of a unit's report for a day (a row of aggregate.unit_days)."""

    unit: str
    day: date
    revision: int
    report_id: UUID
    node: str
    unit_type: str
    sector: str
    values: dict[str, float]
    zero: bool
    late: bool
    submitted_at: datetime | None


DELETE_UNITS = text("""
    DELETE FROM aggregate.unit_days
    WHERE day = :day AND unit_code = ANY(CAST(:units AS text[]))
""")
INSERT_UNIT = text("""
    INSERT INTO aggregate.unit_days (unit_code, day, revision, report_id, node_code, unit_type,
        sector, values, zero, late, submitted_at, applied_at)
    VALUES (:unit, :day, :revision, :report_id, :node, :unit_type, :sector,
            CAST(:values AS jsonb), :zero, :late, :submitted_at, :now)
""")
CLEAR = text("DELETE FROM aggregate.node_days WHERE day = :day")
RECOUNT = text(f"""
    WITH spread AS (
        SELECT left(ud.node_code, len) AS node, ud.unit_code, ud.values, ud.zero, ud.late
        FROM aggregate.unit_days ud CROSS JOIN unnest({LENGTHS}) AS len
        WHERE ud.day = :day AND len <= length(ud.node_code)),
    metrics AS (
        SELECT node, kv.key AS metric,
               {sql_combine("CAST(:kinds AS jsonb) ->> kv.key", "CAST(kv.value AS float8)")}
               AS value
        FROM spread CROSS JOIN LATERAL jsonb_each_text(spread.values) AS kv
        WHERE CAST(:kinds AS jsonb) ? kv.key
        GROUP BY node, kv.key),
    objects AS (
        SELECT node, jsonb_object_agg(metric, value) AS vals FROM metrics GROUP BY node),
    counts AS (
        SELECT node, count(*) AS reported, count(*) FILTER (WHERE zero) AS zero,
               count(*) FILTER (WHERE late) AS late
        FROM spread GROUP BY node)
    INSERT INTO aggregate.node_days (node_code, day, values, reported, zero, late)
    SELECT c.node, :day, coalesce(o.vals, '{{}}'), c.reported, c.zero, c.late
    FROM counts c LEFT JOIN objects o ON o.node = c.node
""")


async def replace_units(session: AsyncSession, day: date, remove: Iterable[str],
                        records: Iterable[UnitRecord], now: datetime) -> None:
    """Drop the unit records of `remove` and write `records` instead (the caller holds the
    day's exclusive lock and rebuilds the day afterwards)."""
    records = list(records)
    units = sorted(set(remove) | {r.unit for r in records})
    if units:
        await session.execute(DELETE_UNITS, {"day": day, "units": units})
    if records:
        await session.execute(INSERT_UNIT, [
            {"unit": r.unit, "day": r.day, "revision": r.revision, "report_id": r.report_id,
             "node": r.node, "unit_type": r.unit_type, "sector": r.sector,
             "values": json.dumps(r.values), "zero": r.zero, "late": r.late,
             "submitted_at": r.submitted_at, "now": now} for r in records])


async def rebuild_day(session: AsyncSession, day: date, catalogue: Catalogue,
                      now: datetime) -> None:
    """Recount every node's rollups and completeness for `day` from the unit records and the
    registry. The caller holds the day's exclusive lock (see expected.lock_days)."""
    await session.execute(CLEAR, {"day": day})
    await session.execute(RECOUNT, {"day": day, "kinds": sql_kinds(over_units(catalogue))})
    await expected.build(session, {day}, now)
