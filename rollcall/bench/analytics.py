"""The batch-analytics way, measured beside the live one: what a DHIS2-style system does
instead of rolling up as reports arrive. A job recomputes a province day's rollups (every
metric, every level) and its completeness (expected, reported, zero, late) from the ledger of
revisions with SQL: the latest revision of each unit-day, grouped by each level's prefix of its
node, beside the units the registry expects that day. Its figures are as fresh as the job's
period; the live path's are seconds old."""

import time
from datetime import date

import asyncpg

from rollcall.bench.system import System, dsn
from services.aggregate.expected import LENGTHS, expected_units_sql
from shared.aggregation import over_units, sql_combine, sql_kinds
from shared.catalogue import default_catalogue

RECOMPUTE = f"""
    WITH latest AS (
        SELECT DISTINCT ON (r.unit_code) r.unit_code, r.node_code, r.values, r.zero, r.late
        FROM ingest.reports r
        WHERE r.day = $1 AND r.node_code LIKE $2 || '%'
        ORDER BY r.unit_code, r.revision DESC),
    expected AS ({expected_units_sql("(VALUES ($1::date))", "p.node_code LIKE $2 || '%'")}),
    completeness AS (
        SELECT left(e.node_code, l) AS node,
               count(*) FILTER (WHERE NOT e.exempt) AS expected,
               count(x.unit_code) FILTER (WHERE NOT e.exempt) AS reported,
               count(x.unit_code) FILTER (WHERE NOT e.exempt AND x.zero) AS zero,
               count(x.unit_code) FILTER (WHERE NOT e.exempt AND x.late) AS late
        FROM expected e LEFT JOIN latest x ON x.unit_code = e.unit_code
        CROSS JOIN unnest({LENGTHS}) AS l WHERE l <= length(e.node_code)
        GROUP BY 1),
    rollups AS (
        SELECT left(x.node_code, l) AS node, m.key AS metric,
               {sql_combine("CAST($3 AS jsonb) ->> m.key", "CAST(m.value AS float8)")} AS value
        FROM latest x CROSS JOIN LATERAL jsonb_each_text(x.values) m
        CROSS JOIN unnest({LENGTHS}) AS l WHERE l <= length(x.node_code)
        GROUP BY 1, 2)
    SELECT (SELECT count(*) FROM completeness) AS nodes,
           (SELECT count(*) FROM rollups) AS node_metrics,
           (SELECT reported FROM completeness WHERE node = $2) AS reported,
           (SELECT count(*) FROM latest) AS reports
"""
# The statement names its parameters itself ($1 …): the unit-type and sector filters of the
# expected units are off.
RECOMPUTE = RECOMPUTE.replace("CAST(:sector AS text)", "CAST(NULL AS text)").replace(
    "CAST(:unit_type AS text)", "CAST(NULL AS text)")


async def recompute(system: System, day: date, root: str, live_reported: int | None) -> dict:
    """Run the job once on `day` below `root`, timed, with PostgreSQL's CPU (all of it is
    PostgreSQL's)."""
    kinds = sql_kinds(over_units(default_catalogue()))
    conn = await asyncpg.connect(dsn(system.database_url))
    try:
        cpu = system.cpu()
        start = time.perf_counter()
        row = await conn.fetchrow(RECOMPUTE, day, root, kinds)
        seconds = time.perf_counter() - start
        used = system.cpu_since(cpu, max(row["reports"], 1))
    finally:
        await conn.close()
    return {"day": day.isoformat(), "seconds": round(seconds, 3),
            "reports": row["reports"], "nodes": row["nodes"],
            "node_metrics": row["node_metrics"], "reported": row["reported"],
            "matches_live": live_reported is None or row["reported"] == live_reported,
            "cpu_us_per_report": used}
