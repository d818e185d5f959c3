"""Applies accepted reports to the rollups: one transaction per batch, holding both the effect and
the record of what was applied (each unit-day's revision), so redelivery changes nothing and an
older revision arriving after a newer one never wins."""

import json
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.aggregate.rollup import Applied, Changes
from shared.catalogue import Catalogue
from shared.contracts import ReportAccepted

LOCK = text("""
    SELECT pg_advisory_xact_lock(k) FROM (
        SELECT DISTINCT hashtextextended(u || ':' || d::text, 1) AS k
        FROM unnest(CAST(:units AS text[]), CAST(:days AS date[])) AS t(u, d)) keys
    ORDER BY k
""")
CURRENT = text("""
    SELECT ud.unit_code, ud.day, ud.revision, ud.node_code, ud.values, ud.zero, ud.late
    FROM aggregate.unit_days ud
    JOIN unnest(CAST(:units AS text[]), CAST(:days AS date[])) AS t(u, d)
      ON ud.unit_code = t.u AND ud.day = t.d
""")
UPSERT_UNIT_DAY = text("""
    INSERT INTO aggregate.unit_days AS ud (unit_code, day, revision, report_id, node_code,
        unit_type, sector, values, zero, late, applied_at)
    VALUES (:unit, :day, :revision, :report_id, :node, :unit_type, :sector,
        CAST(:values AS jsonb), :zero, :late, :applied_at)
    ON CONFLICT (unit_code, day) DO UPDATE SET revision = excluded.revision,
        report_id = excluded.report_id, node_code = excluded.node_code,
        unit_type = excluded.unit_type, sector = excluded.sector, values = excluded.values,
        zero = excluded.zero, late = excluded.late, applied_at = excluded.applied_at
""")
ADD_SUM = text("""
    INSERT INTO aggregate.rollups AS r (node_code, day, metric, value)
    VALUES (:node, :day, :metric, :value)
    ON CONFLICT (node_code, day, metric) DO UPDATE SET value = r.value + excluded.value
""")
RAISE_MAX = text("""
    INSERT INTO aggregate.rollups AS r (node_code, day, metric, value)
    VALUES (:node, :day, :metric, :value)
    ON CONFLICT (node_code, day, metric) DO UPDATE SET value = GREATEST(r.value, excluded.value)
""")
LOWER_MIN = text("""
    INSERT INTO aggregate.rollups AS r (node_code, day, metric, value)
    VALUES (:node, :day, :metric, :value)
    ON CONFLICT (node_code, day, metric) DO UPDATE SET value = LEAST(r.value, excluded.value)
""")
ADD_COUNTS = text("""
    INSERT INTO aggregate.completeness AS c (node_code, day, reported, zero, late)
    VALUES (:node, :day, :reported, :zero, :late)
    ON CONFLICT (node_code, day) DO UPDATE SET reported = c.reported + excluded.reported,
        zero = c.zero + excluded.zero, late = c.late + excluded.late
""")
# An extreme that a correction may have withdrawn, recomputed from the units below the node.
RECOMPUTE = {
    agg: text(f"""
        WITH e AS (
            SELECT {agg}((values ->> :metric)::float) AS value FROM aggregate.unit_days
            WHERE day = :day AND node_code LIKE :node || '%' AND values ? :metric),
        gone AS (
            DELETE FROM aggregate.rollups WHERE node_code = :node AND day = :day
                AND metric = :metric AND (SELECT value FROM e) IS NULL)
        INSERT INTO aggregate.rollups (node_code, day, metric, value)
        SELECT :node, :day, :metric, value FROM e WHERE value IS NOT NULL
        ON CONFLICT (node_code, day, metric) DO UPDATE SET value = excluded.value
    """)
    for agg in ("max", "min")
}


def _applied(event: ReportAccepted) -> Applied:
    return Applied(event.unit, event.day, event.revision, event.node, event.values, event.zero,
                   event.late)


async def apply_batch(session: AsyncSession, events: list[ReportAccepted], catalogue: Catalogue,
                      now: datetime) -> int:
    """Apply what is new in `events`; returns how many unit-days changed. The caller commits."""
    newest: dict[tuple[str, object], ReportAccepted] = {}
    for event in events:
        key = (event.unit, event.day)
        if key not in newest or event.revision > newest[key].revision:
            newest[key] = event
    if not newest:
        return 0
    keys = {"units": [u for u, _ in newest], "days": [d for _, d in newest]}
    # Replicas sharing the stream may hold revisions of the same unit-day: take them in turn.
    await session.execute(LOCK, keys)
    current = {(r.unit_code, r.day): Applied(r.unit_code, r.day, r.revision, r.node_code,
                                             r.values, r.zero, r.late)
               for r in (await session.execute(CURRENT, keys)).all()}
    changes = Changes()
    rows = []
    for key, event in newest.items():
        old = current.get(key)
        if old is not None and old.revision >= event.revision:
            continue  # a redelivery, or an older revision after a newer one
        changes.replace(old, _applied(event), catalogue)
        rows.append({"unit": event.unit, "day": event.day, "revision": event.revision,
                     "report_id": event.report_id, "node": event.node,
                     "unit_type": event.unit_type, "sector": event.sector,
                     "values": json.dumps(event.values),
                     "zero": event.zero, "late": event.late, "applied_at": now})
    if not rows:
        return 0
    await _write(session, rows, changes, catalogue)
    return len(rows)


async def _write(session: AsyncSession, rows: list[dict], changes: Changes,
                 catalogue: Catalogue) -> None:
    await session.execute(UPSERT_UNIT_DAY, rows)
    for statement, items in (
        (ADD_SUM, [(k, v) for k, v in changes.sums.items() if v]),
        (RAISE_MAX, changes.highs.items()),
        (LOWER_MIN, changes.lows.items()),
    ):
        params = [{"node": n, "day": d, "metric": m, "value": v} for (n, d, m), v in items]
        if params:
            await session.execute(statement, params)
    counts = [{"node": n, "day": d, "reported": c[0], "zero": c[1], "late": c[2]}
              for (n, d), c in changes.counts.items() if any(c)]
    if counts:
        await session.execute(ADD_COUNTS, counts)
    for node, day, metric in sorted(changes.recompute):
        await session.execute(RECOMPUTE[catalogue.metrics[metric].aggregation],
                              {"node": node, "day": day, "metric": metric})
