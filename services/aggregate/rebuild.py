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
CLEAR_ROLLUPS = text("DELETE FROM aggregate.rollups WHERE day = :day")
CLEAR_COUNTS = text("DELETE FROM aggregate.completeness WHERE day = :day")
ROLLUPS = text(f"""
    INSERT INTO aggregate.rollups (node_code, day, metric, value)
    SELECT node, :day, metric,
           CASE WHEN metric = ANY(CAST(:maxes AS text[])) THEN max(v)
                WHEN metric = ANY(CAST(:mins AS text[])) THEN min(v) ELSE sum(v) END
    FROM (SELECT left(ud.node_code, l) AS node, kv.key AS metric, CAST(kv.value AS float8) AS v
          FROM aggregate.unit_days ud
          CROSS JOIN LATERAL jsonb_each_text(ud.values) AS kv
          CROSS JOIN unnest({LENGTHS}) AS l
          WHERE ud.day = :day AND l <= length(ud.node_code)
            AND kv.key = ANY(CAST(:known AS text[]))) x
    GROUP BY node, metric
""")
COUNTS = text(f"""
    INSERT INTO aggregate.completeness (node_code, day, expected, reported, zero, late, missing)
    SELECT left(ud.node_code, l), :day, 0, count(*), count(*) FILTER (WHERE ud.zero),
           count(*) FILTER (WHERE ud.late), 0
    FROM aggregate.unit_days ud CROSS JOIN unnest({LENGTHS}) AS l
    WHERE ud.day = :day AND l <= length(ud.node_code)
    GROUP BY 1
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
    await session.execute(CLEAR_ROLLUPS, {"day": day})
    await session.execute(CLEAR_COUNTS, {"day": day})
    await session.execute(ROLLUPS, {
        "day": day, "known": list(catalogue.metrics),
        "maxes": list(catalogue.by_aggregation["max"]),
        "mins": list(catalogue.by_aggregation["min"])})
    await session.execute(COUNTS, {"day": day})
    await expected.build(session, {day}, now)
