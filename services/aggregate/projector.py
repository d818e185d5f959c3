"""Applies accepted reports to the rollups: one transaction per batch, holding both the effect and
the record of what was applied (each unit-day's revision), so redelivery changes nothing and an
older revision arriving after a newer one never wins.

The batch path is set-based: a handful of statements whatever the batch size (locks, the current
state of the batch's unit-days, then one upsert per table over arrays), plus one statement per
level when a correction withdrew a max or min."""

import json
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.aggregate import expected
from services.aggregate.rollup import Applied, Changes, NodeDay
from shared.catalogue import Catalogue
from shared.contracts import ReportAccepted
from shared.hierarchy import CODE_LENGTHS

# Batches travel as one JSON parameter each (rows of short keys): PostgreSQL parses it much
# faster than the driver encodes thousands of array elements one by one.
KEYS = "json_to_recordset(CAST(:keys AS json)) AS t(u text, d date)"
LOCK_UNIT_DAYS = text(f"""
    SELECT pg_advisory_xact_lock(k) FROM (
        SELECT DISTINCT hashtextextended(t.u || ':' || t.d::text, 1) AS k FROM {KEYS}) keys
    ORDER BY k
""")
# The revision each unit-day holds now and, for a unit-day's first report, where the registry
# expects the unit that day (its report ends its being missing there): the unit's latest
# placement on or before the day, if the unit is active that day. The same rule as
# expected.expected_units_sql, written to look up many units at once rather than a subtree.
CURRENT = text(f"""
    WITH t AS MATERIALIZED (SELECT * FROM {KEYS}),
    cur AS (
        SELECT t.u, t.d, ud.revision, ud.node_code, ud.values, ud.zero, ud.late
        FROM t LEFT JOIN aggregate.unit_days ud ON ud.unit_code = t.u AND ud.day = t.d),
    reg AS (
        SELECT DISTINCT ON (c.u, c.d) c.u, c.d, p.node_code
        FROM cur c
        JOIN registry.units un ON un.code = c.u
             AND (un.active_from IS NULL OR un.active_from <= c.d)
             AND (un.active_to IS NULL OR un.active_to >= c.d)
        JOIN registry.placements p ON p.unit_code = c.u AND p.valid_from <= c.d
        WHERE c.revision IS NULL
        ORDER BY c.u, c.d, p.valid_from DESC)
    SELECT cur.u AS unit_code, cur.d AS day, cur.revision, cur.node_code, cur.values, cur.zero,
           cur.late, reg.node_code AS expected_node
    FROM cur LEFT JOIN reg ON reg.u = cur.u AND reg.d = cur.d
""")
UPSERT_UNIT_DAYS = text("""
    INSERT INTO aggregate.unit_days AS ud (unit_code, day, revision, report_id, node_code,
        unit_type, sector, values, zero, late, submitted_at, applied_at)
    SELECT u, d, r, id, n, ut, s, v, z, l, sa, :now
    FROM json_to_recordset(CAST(:rows AS json)) AS t(u text, d date, r int, id uuid, n text,
        ut text, s text, v jsonb, z boolean, l boolean, sa timestamptz)
    ORDER BY u, d
    ON CONFLICT (unit_code, day) DO UPDATE SET revision = excluded.revision,
        report_id = excluded.report_id, node_code = excluded.node_code,
        unit_type = excluded.unit_type, sector = excluded.sector, values = excluded.values,
        zero = excluded.zero, late = excluded.late, submitted_at = excluded.submitted_at,
        applied_at = excluded.applied_at
""")
# The changes come at each unit's own node (k: s sum delta, x a new maximum, n a new minimum)
# and are spread to every node above here. Sums move by their delta, a max only up and a min
# only down; rows in key order, so that replicas writing the same hot rows (county, city,
# province) queue rather than deadlock.
UPSERT_ROLLUPS = text(f"""
    WITH t AS MATERIALIZED (
        SELECT * FROM json_to_recordset(CAST(:rows AS json))
                      AS t(n text, d date, m text, v float8, k text)),
    spread AS (
        SELECT left(t.n, l) AS n, t.d, t.m, t.k,
               CASE t.k WHEN 's' THEN sum(t.v) WHEN 'x' THEN max(t.v) ELSE min(t.v) END AS v
        FROM t CROSS JOIN unnest({expected.LENGTHS}) AS l
        WHERE l <= length(t.n)
        GROUP BY 1, 2, 3, 4)
    INSERT INTO aggregate.rollups AS r (node_code, day, metric, value)
    SELECT n, d, m, v FROM spread WHERE k <> 's' OR v <> 0
    ORDER BY n, d, m
    ON CONFLICT (node_code, day, metric) DO UPDATE SET value = CASE
        WHEN r.metric = ANY(CAST(:maxes AS text[])) THEN GREATEST(r.value, excluded.value)
        WHEN r.metric = ANY(CAST(:mins AS text[])) THEN LEAST(r.value, excluded.value)
        ELSE r.value + excluded.value END
""")
UPSERT_COUNTS = text(f"""
    WITH t AS MATERIALIZED (
        SELECT * FROM json_to_recordset(CAST(:rows AS json))
                      AS t(n text, d date, r int, z int, l int, m int)),
    spread AS (
        SELECT left(t.n, len) AS n, t.d, sum(t.r) AS r, sum(t.z) AS z, sum(t.l) AS l,
               sum(t.m) AS m
        FROM t CROSS JOIN unnest({expected.LENGTHS}) AS len
        WHERE len <= length(t.n)
        GROUP BY 1, 2)
    INSERT INTO aggregate.completeness AS c (node_code, day, reported, zero, late, missing,
                                             expected)
    SELECT n, d, r, z, l, m, 0 FROM spread WHERE r <> 0 OR z <> 0 OR l <> 0 OR m <> 0
    ORDER BY n, d
    ON CONFLICT (node_code, day) DO UPDATE SET reported = c.reported + excluded.reported,
        zero = c.zero + excluded.zero, late = c.late + excluded.late,
        missing = c.missing + excluded.missing
""")
# An extreme a correction may have withdrawn, recomputed one level at a time from the bottom up:
# from the node's child nodes (already right, being lower) and the units placed at the node
# itself. Child nodes are found through their completeness rows, which every node with a
# report below it has.
RECOMPUTE = """
    WITH k AS (
        SELECT * FROM unnest(CAST(:nodes AS text[]), CAST(:days AS date[]),
                             CAST(:metrics AS text[]), CAST(:aggs AS text[]))
               AS k(node, day, metric, agg)),
    e AS (
        SELECT k.node, k.day, k.metric,
               CASE WHEN k.agg = 'max' THEN max(s.v) ELSE min(s.v) END AS value
        FROM k LEFT JOIN LATERAL (
            SELECT r.value AS v FROM aggregate.completeness c
            JOIN aggregate.rollups r
              ON r.node_code = c.node_code AND r.day = c.day AND r.metric = k.metric
            WHERE c.day = k.day AND c.node_code ~>=~ k.node AND c.node_code ~<~ (k.node || '~')
              AND length(c.node_code) = {child_length}
            UNION ALL
            SELECT CAST(ud.values ->> k.metric AS float8) FROM aggregate.unit_days ud
            WHERE ud.day = k.day AND ud.node_code = k.node AND ud.values ? k.metric) s ON true
        GROUP BY k.node, k.day, k.metric, k.agg),
    gone AS (
        DELETE FROM aggregate.rollups r USING e
        WHERE r.node_code = e.node AND r.day = e.day AND r.metric = e.metric AND e.value IS NULL)
    INSERT INTO aggregate.rollups AS r (node_code, day, metric, value)
    SELECT node, day, metric, value FROM e WHERE value IS NOT NULL ORDER BY node, day, metric
    ON CONFLICT (node_code, day, metric) DO UPDATE SET value = excluded.value
"""
_LENGTHS = sorted(CODE_LENGTHS.values())
RECOMPUTE_AT = {
    length: text(RECOMPUTE.format(child_length=(
        _LENGTHS[i + 1] if i + 1 < len(_LENGTHS) else length + 1)))
    for i, length in enumerate(_LENGTHS)
}


@dataclass
class BatchResult:
    applied: int = 0  # unit-days whose revision changed
    touched: set[NodeDay] = field(default_factory=set)


def _json(rows: list) -> str:
    return json.dumps(rows, default=str, separators=(",", ":"))


async def apply_batch(session: AsyncSession, events: list[ReportAccepted], catalogue: Catalogue,
                      now: datetime, known_days: set[date] | None = None) -> BatchResult:
    """Apply what is new in `events`; the caller commits. `known_days` caches the days whose
    expected figures are known to be built."""
    newest: dict[tuple[str, date], ReportAccepted] = {}
    for event in events:
        key = (event.unit, event.day)
        if key not in newest or event.revision > newest[key].revision:
            newest[key] = event
    if not newest:
        return BatchResult()
    keys = {"keys": _json([{"u": u, "d": d} for u, d in newest])}
    await expected.enter_days(session, {d for _, d in newest}, now, known_days)
    # Replicas sharing the stream may hold revisions of the same unit-day: take them in turn.
    await session.execute(LOCK_UNIT_DAYS, keys)
    rows = (await session.execute(CURRENT, {**keys, "sector": None, "unit_type": None})).all()
    changes = Changes(catalogue)
    fresh: list[ReportAccepted] = []
    for r in rows:
        event = newest[(r.unit_code, r.day)]
        if r.revision is not None and r.revision >= event.revision:
            continue  # a redelivery, or an older revision after a newer one
        old = None if r.revision is None else Applied(
            r.unit_code, r.day, r.revision, r.node_code, r.values, r.zero, r.late)
        changes.replace(old, Applied(event.unit, event.day, event.revision, event.node,
                                     event.values, event.zero, event.late),
                        r.expected_node if old is None else None)
        fresh.append(event)
    if not fresh:
        return BatchResult()
    await _write(session, fresh, changes, catalogue, now)
    return BatchResult(len(fresh), changes.touched_everywhere())


async def _write(session: AsyncSession, fresh: list[ReportAccepted], changes: Changes,
                 catalogue: Catalogue, now: datetime) -> None:
    await session.execute(UPSERT_UNIT_DAYS, {"now": now, "rows": _json([
        {"u": e.unit, "d": e.day, "r": e.revision, "id": e.report_id, "n": e.node,
         "ut": e.unit_type, "s": e.sector, "v": e.values, "z": e.zero, "l": e.late,
         "sa": e.submitted_at} for e in fresh])})
    leaves = [{"n": n, "d": d, "m": m, "v": v, "k": "s"}
              for (n, d, m), v in changes.sums.items() if v]
    leaves += [{"n": n, "d": d, "m": m, "v": v, "k": "x"} for (n, d, m), v in changes.highs.items()]
    leaves += [{"n": n, "d": d, "m": m, "v": v, "k": "n"} for (n, d, m), v in changes.lows.items()]
    if leaves:
        await session.execute(UPSERT_ROLLUPS, {
            "rows": _json(leaves), "maxes": list(catalogue.by_aggregation["max"]),
            "mins": list(catalogue.by_aggregation["min"])})
    counts = [{"n": n, "d": d, "r": c[0], "z": c[1], "l": c[2], "m": c[3]}
              for (n, d), c in changes.counts.items() if any(c)]
    if counts:
        await session.execute(UPSERT_COUNTS, {"rows": _json(counts)})
    await recompute_extremes(session, changes.recompute(), catalogue)


async def recompute_extremes(session: AsyncSession, keys: set[tuple[str, date, str]],
                             catalogue: Catalogue) -> None:
    """Recompute the max/min of these node-day-metrics, lowest level first."""
    for length in sorted(RECOMPUTE_AT, reverse=True):
        level = sorted(k for k in keys if len(k[0]) == length)
        if level:
            await session.execute(RECOMPUTE_AT[length], {
                "nodes": [k[0] for k in level], "days": [k[1] for k in level],
                "metrics": [k[2] for k in level],
                "aggs": [catalogue.metrics[k[2]].aggregation for k in level]})
