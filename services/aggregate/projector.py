"""Applies accepted reports to the rollups: one transaction per batch, holding both the effect and
the record of what was applied (each unit-day's revision), so redelivery changes nothing and an
older revision arriving after a newer one never wins.

The batch path is set-based: a handful of statements whatever the batch size (locks, the current
state of the batch's unit-days, the unit records, the node-day rows locked and written back),
plus one statement per level when a correction withdrew a max or min."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.aggregate import expected
from services.aggregate.rollup import Applied, Changes, Counts, Effect, NodeDay, Tally, moved
from shared.aggregation import SUM, Kind, over_units, sql_combine
from shared.catalogue import Catalogue
from shared.contracts import ReportAccepted
from shared.hierarchy import CODE_LENGTHS
from shared.registry.calendar import cutoff_sql, exemption_sql
from shared.registry.placement import placement_on

# Batches travel as one JSON parameter each (rows of short keys): PostgreSQL parses it much
# faster than the driver encodes thousands of array elements one by one.
KEYS = "json_to_recordset(CAST(:keys AS json)) AS t(u text, d date)"
LOCK_UNIT_DAYS = text(f"""
    SELECT pg_advisory_xact_lock(k) FROM (
        SELECT DISTINCT hashtextextended(t.u || ':' || t.d::text, 1) AS k FROM {KEYS}) keys
    ORDER BY k
""")
# The revision each unit-day holds now and, for a unit-day's first report, where the registry
# expects the unit that day and its cutoff (its report ends its being unreported there; an
# exempt unit was never expected): the placement rule and the calendar, looked up unit by unit.
# OFFSET 0 keeps each lookup a subquery of its own, where the unit is a plain condition that
# reaches the placements' index; joined from outside, PostgreSQL would read every placement of
# the day for each unit.
CURRENT = text(f"""
    WITH t AS MATERIALIZED (SELECT * FROM {KEYS}),
    cur AS (
        SELECT t.u, t.d, ud.revision, ud.node_code, ud.values, ud.zero, ud.late
        FROM t LEFT JOIN aggregate.unit_days ud ON ud.unit_code = t.u AND ud.day = t.d),
    reg AS (
        SELECT c.u, c.d, p.node_code, CAST({cutoff_sql("un.cutoff", "p.unit_type")} AS text)
               AS cutoff
        FROM cur c CROSS JOIN LATERAL (
            SELECT p.node_code, p.unit_type FROM {placement_on("c.d")} AS p
            WHERE p.unit_code = c.u AND p.active OFFSET 0) AS p
        JOIN registry.units un ON un.code = c.u
        WHERE c.revision IS NULL
          AND NOT EXISTS {exemption_sql("c.d", "c.u", "p.node_code", "p.unit_type")})
    SELECT cur.u AS unit_code, cur.d AS day, cur.revision, cur.node_code, cur.values, cur.zero,
           cur.late, reg.node_code AS expected_node, reg.cutoff AS expected_cutoff
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
# A batch's node-days (every level above its units) are locked in key order, merged here and
# written back whole: one row per node-day, and replicas writing the same hot rows (county,
# city, province) queue rather than deadlock. Rows are created ahead when missing (building a
# day creates those of every node with units, so this is rare).
NODE_DAY_KEYS = "json_to_recordset(CAST(:keys AS json)) AS t(n text, d date)"
CREATE_NODE_DAYS = text(f"""
    INSERT INTO aggregate.node_days (node_code, day)
    SELECT t.n, t.d FROM {NODE_DAY_KEYS} ORDER BY t.n, t.d
    ON CONFLICT DO NOTHING
""")
LOCK_NODE_DAYS = text(f"""
    SELECT nd.node_code, nd.day, nd.values, nd.expected, nd.reported, nd.zero, nd.late,
           nd.exempt, nd.unreported
    FROM aggregate.node_days nd JOIN {NODE_DAY_KEYS} ON nd.node_code = t.n AND nd.day = t.d
    ORDER BY nd.node_code, nd.day
    FOR UPDATE OF nd
""")
WRITE_NODE_DAYS = text("""
    UPDATE aggregate.node_days nd
    SET values = t.v, reported = t.r, zero = t.z, late = t.l, unreported = t.u
    FROM json_to_recordset(CAST(:rows AS json))
         AS t(n text, d date, v jsonb, r int, z int, l int, u jsonb)
    WHERE nd.node_code = t.n AND nd.day = t.d
""")
# An extreme a correction may have withdrawn, recomputed one level at a time from the bottom up:
# from the node's child nodes (already right, being lower) and the units placed at the node
# itself. The rows are the batch's, locked already.
RECOMPUTE = """
    WITH k AS (
        SELECT * FROM unnest(CAST(:nodes AS text[]), CAST(:days AS date[]),
                             CAST(:metrics AS text[]), CAST(:aggs AS text[]))
               AS k(node, day, metric, agg)),
    e AS (
        SELECT k.node, k.day, k.metric,
               {combine} AS value
        FROM k LEFT JOIN LATERAL (
            SELECT CAST(c.values ->> k.metric AS float8) AS v FROM aggregate.node_days c
            WHERE c.day = k.day AND c.node_code ~>=~ k.node AND c.node_code ~<~ (k.node || '~')
              AND length(c.node_code) = {child_length} AND c.values ? k.metric
            UNION ALL
            SELECT CAST(ud.values ->> k.metric AS float8) FROM aggregate.unit_days ud
            WHERE ud.day = k.day AND ud.node_code = k.node AND ud.values ? k.metric) s ON true
        GROUP BY k.node, k.day, k.metric, k.agg),
    found AS (
        SELECT node, day,
               coalesce(jsonb_object_agg(metric, value) FILTER (WHERE value IS NOT NULL),
                        '{{}}') AS present,
               coalesce(array_agg(metric) FILTER (WHERE value IS NULL), '{{}}') AS gone
        FROM e GROUP BY node, day)
    UPDATE aggregate.node_days nd SET values = (nd.values - f.gone) || f.present
    FROM found f WHERE nd.node_code = f.node AND nd.day = f.day
"""
_LENGTHS = sorted(CODE_LENGTHS.values())
RECOMPUTE_AT = {
    length: text(RECOMPUTE.format(combine=sql_combine("k.agg", "s.v"), child_length=(
        _LENGTHS[i + 1] if i + 1 < len(_LENGTHS) else length + 1)))
    for i, length in enumerate(_LENGTHS)
}


@dataclass
class BatchResult:
    applied: int = 0  # unit-days whose revision changed
    touched: set[NodeDay] = field(default_factory=set)


def _json(rows: list) -> str:
    """Days, times and ids as orjson writes them (ISO 8601, RFC 4122), all in its C encoder."""
    return orjson.dumps(rows).decode()


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
    # Rows unpacked in CURRENT's column order: a batch holds thousands, and a row's attributes
    # cost a lookup each.
    for unit, day, revision, node, values, zero, late, expected_node, expected_cutoff in rows:
        event = newest[(unit, day)]
        if revision is not None and revision >= event.revision:
            continue  # a redelivery, or an older revision after a newer one
        old = None if revision is None else Applied(unit, day, revision, node, values, zero, late)
        changes.replace(old, Applied(event.unit, event.day, event.revision, event.node,
                                     event.values, event.zero, event.late),
                        (expected_node, expected_cutoff)
                        if old is None and expected_node is not None else None)
        fresh.append(event)
    if not fresh:
        return BatchResult()
    effect = changes.effect()
    await _write(session, fresh, effect, catalogue, now)
    return BatchResult(len(fresh), effect.touched)


async def _write(session: AsyncSession, fresh: list[ReportAccepted], effect: Effect,
                 catalogue: Catalogue, now: datetime) -> None:
    await session.execute(UPSERT_UNIT_DAYS, {"now": now, "rows": _json([
        {"u": e.unit, "d": e.day, "r": e.revision, "id": e.report_id,
         "n": e.node, "ut": e.unit_type, "s": e.sector, "v": e.values, "z": e.zero,
         "l": e.late, "sa": e.submitted_at} for e in fresh])})
    # Every node-day row this batch writes, the extremes to recompute included, is locked here
    # in one order before any is written.
    keys = set(effect.counts)
    keys.update((n, d) for n, d, _ in effect.unreported)
    for items in (effect.sums, *effect.extremes.values(), effect.recompute):
        keys.update((n, d) for n, d, _ in items)
    if keys:
        moves: defaultdict[NodeDay, list[tuple[str, Kind, float]]] = defaultdict(list)
        for kind, items in ((SUM, effect.sums), *effect.extremes.items()):
            for (n, d, m), v in items.items():
                moves[(n, d)].append((m, kind, v))
        unreported: defaultdict[NodeDay, dict[str, int]] = defaultdict(dict)
        for (n, d, cutoff), change in effect.unreported.items():
            unreported[(n, d)][cutoff] = change
        current = await _lock_node_days(session, sorted(keys))
        rows = [_merged(key, *current[key], effect.counts.get(key), unreported.get(key),
                        moves.get(key, ())) for key in sorted(keys)]
        await session.execute(WRITE_NODE_DAYS, {"rows": _json(rows)})
    await recompute_extremes(session, effect.recompute, catalogue)


async def _lock_node_days(session: AsyncSession, keys: list[NodeDay]
                          ) -> dict[NodeDay, tuple[dict, Tally]]:
    def read(rows) -> dict[NodeDay, tuple[dict, Tally]]:  # in LOCK_NODE_DAYS' column order
        return {(node, day): (values, Tally(expected, reported, zero, late, exempt, unreported))
                for node, day, values, expected, reported, zero, late, exempt, unreported
                in rows}

    param = {"keys": _json([{"n": n, "d": d} for n, d in keys])}
    current = read(await session.execute(LOCK_NODE_DAYS, param))
    absent = [k for k in keys if k not in current]
    if absent:
        param = {"keys": _json([{"n": n, "d": d} for n, d in absent])}
        await session.execute(CREATE_NODE_DAYS, param)
        current.update(read(await session.execute(LOCK_NODE_DAYS, param)))
    return current


def _merged(key: NodeDay, values: dict, tally: Tally, change: Counts | None,
            unreported: dict[str, int] | None, moves: Iterable[tuple[str, Kind, float]]) -> dict:
    """A node-day's row after the batch: counts and sums move, an extreme only moves further
    out (one a correction withdrew is recomputed afterwards)."""
    node, day = key
    values = dict(values)
    counts = Counts(tally.expected, tally.reported, tally.zero, tally.late)
    if change is not None:
        counts = counts + change
    for metric, kind, v in moves:
        was = values.get(metric)
        values[metric] = v if was is None else kind.combine(was, v)
    return {"n": node, "d": day, "v": values, "r": counts.reported,
            "z": counts.zero, "l": counts.late,
            "u": moved(tally.unreported, unreported) if unreported else tally.unreported}


async def recompute_extremes(session: AsyncSession, keys: set[tuple[str, date, str]],
                             catalogue: Catalogue) -> None:
    """Recompute the max/min of these node-day-metrics, lowest level first."""
    kinds = over_units(catalogue)
    for length in sorted(RECOMPUTE_AT, reverse=True):
        level = sorted(k for k in keys if len(k[0]) == length)
        if level:
            await session.execute(RECOMPUTE_AT[length], {
                "nodes": [k[0] for k in level], "days": [k[1] for k in level],
                "metrics": [k[2] for k in level],
                "aggs": [kinds[k[2]].name for k in level]})
