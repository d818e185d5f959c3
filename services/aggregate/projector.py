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
from services.aggregate.rollup import Applied, Changes, Effect, NodeDay
from shared.catalogue import Catalogue
from shared.contracts import ReportAccepted
from shared.hierarchy import CODE_LENGTHS

LOCK_UNIT_DAYS = text("""
    SELECT pg_advisory_xact_lock(k) FROM (
        SELECT DISTINCT hashtextextended(u || ':' || d::text, 1) AS k
        FROM unnest(CAST(:units AS text[]), CAST(:days AS date[])) AS t(u, d)) keys
    ORDER BY k
""")
# The revision each unit-day holds now and, for a unit-day's first report, where the registry
# expects the unit that day (its report ends its being missing there).
CURRENT = text(f"""
    SELECT t.u AS unit_code, t.d AS day, ud.revision, ud.node_code, ud.values, ud.zero, ud.late,
           reg.node_code AS expected_node
    FROM unnest(CAST(:units AS text[]), CAST(:days AS date[])) AS t(u, d)
    LEFT JOIN aggregate.unit_days ud ON ud.unit_code = t.u AND ud.day = t.d
    LEFT JOIN LATERAL ({expected.expected_units_sql(
        "(SELECT t.d)", "p.unit_code = t.u AND ud.unit_code IS NULL")}) reg ON true
""")
UPSERT_UNIT_DAYS = text("""
    INSERT INTO aggregate.unit_days AS ud (unit_code, day, revision, report_id, node_code,
        unit_type, sector, values, zero, late, submitted_at, applied_at)
    SELECT u, d, r, id, n, ut, s, CAST(v AS jsonb), z, l, sa, :now
    FROM unnest(CAST(:units AS text[]), CAST(:days AS date[]), CAST(:revisions AS int[]),
                CAST(:report_ids AS uuid[]), CAST(:nodes AS text[]), CAST(:unit_types AS text[]),
                CAST(:sectors AS text[]), CAST(:values AS text[]), CAST(:zeros AS boolean[]),
                CAST(:lates AS boolean[]), CAST(:submitted AS timestamptz[]))
         AS t(u, d, r, id, n, ut, s, v, z, l, sa)
    ORDER BY u, d
    ON CONFLICT (unit_code, day) DO UPDATE SET revision = excluded.revision,
        report_id = excluded.report_id, node_code = excluded.node_code,
        unit_type = excluded.unit_type, sector = excluded.sector, values = excluded.values,
        zero = excluded.zero, late = excluded.late, submitted_at = excluded.submitted_at,
        applied_at = excluded.applied_at
""")
# Sums move by their delta, a max only up and a min only down; rows in key order, so that
# replicas writing the same hot rows (county, city, province) queue rather than deadlock.
UPSERT_ROLLUPS = text("""
    INSERT INTO aggregate.rollups AS r (node_code, day, metric, value)
    SELECT n, d, m, v FROM unnest(CAST(:nodes AS text[]), CAST(:days AS date[]),
                                  CAST(:metrics AS text[]), CAST(:values AS float8[]))
                           AS t(n, d, m, v)
    ORDER BY n, d, m
    ON CONFLICT (node_code, day, metric) DO UPDATE SET value = CASE
        WHEN r.metric = ANY(CAST(:maxes AS text[])) THEN GREATEST(r.value, excluded.value)
        WHEN r.metric = ANY(CAST(:mins AS text[])) THEN LEAST(r.value, excluded.value)
        ELSE r.value + excluded.value END
""")
UPSERT_COUNTS = text("""
    INSERT INTO aggregate.completeness AS c (node_code, day, reported, zero, late, missing,
                                             expected)
    SELECT n, d, r, z, l, m, 0
    FROM unnest(CAST(:nodes AS text[]), CAST(:days AS date[]), CAST(:reported AS int[]),
                CAST(:zeros AS int[]), CAST(:lates AS int[]), CAST(:missing AS int[]))
         AS t(n, d, r, z, l, m)
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
    keys = {"units": [u for u, _ in newest], "days": [d for _, d in newest]}
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
    effect = changes.effect()
    await _write(session, fresh, effect, catalogue, now)
    return BatchResult(len(fresh), effect.touched)


async def _write(session: AsyncSession, fresh: list[ReportAccepted], effect: Effect,
                 catalogue: Catalogue, now: datetime) -> None:
    await session.execute(UPSERT_UNIT_DAYS, {
        "units": [e.unit for e in fresh], "days": [e.day for e in fresh],
        "revisions": [e.revision for e in fresh], "report_ids": [e.report_id for e in fresh],
        "nodes": [e.node for e in fresh], "unit_types": [e.unit_type for e in fresh],
        "sectors": [e.sector for e in fresh], "values": [json.dumps(e.values) for e in fresh],
        "zeros": [e.zero for e in fresh], "lates": [e.late for e in fresh],
        "submitted": [e.submitted_at for e in fresh], "now": now})
    items = [*effect.sums.items(), *effect.highs.items(), *effect.lows.items()]
    if items:
        await session.execute(UPSERT_ROLLUPS, {
            "nodes": [k[0] for k, _ in items], "days": [k[1] for k, _ in items],
            "metrics": [k[2] for k, _ in items], "values": [float(v) for _, v in items],
            "maxes": list(catalogue.by_aggregation["max"]),
            "mins": list(catalogue.by_aggregation["min"])})
    if effect.counts:
        counts = list(effect.counts.items())
        await session.execute(UPSERT_COUNTS, {
            "nodes": [k[0] for k, _ in counts], "days": [k[1] for k, _ in counts],
            "reported": [c[0] for _, c in counts], "zeros": [c[1] for _, c in counts],
            "lates": [c[2] for _, c in counts], "missing": [c[3] for _, c in counts]})
    await recompute_extremes(session, effect.recompute, catalogue)


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
