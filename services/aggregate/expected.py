"""Who is expected to report: the units active on a day, at the node where they were placed that
day, unless a calendar exempts them (免报, shared/registry/calendar.py). The registry says it; each
node-day keeps the counts (expected, exempt, and the expected units that have not reported yet,
by cutoff) beside its rollup, built for a whole day at once the first time the day is needed
and rebuilt when the registry or a calendar changes.

Writers of a day's figures take a lock on the day: the projector a shared one (batches run side
by side), a build or repair an exclusive one (nobody applies reports to a day while its expected
figures are recounted)."""

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.hierarchy import CODE_LENGTHS
from shared.registry.calendar import cutoff_sql, exemption_sql
from shared.registry.placement import placement_on

DAY_LOCK_SPACE = 0x524F4C4C  # the first key of the two-key advisory locks on days
EPOCH = date(2000, 1, 1)
LENGTHS = "ARRAY[" + ", ".join(str(n) for n in sorted(CODE_LENGTHS.values())) + "]"


def expected_units_sql(days: str, where: str = "TRUE") -> str:
    """A query of (day, unit_code, node_code, name, unit_type, sector, cutoff, exempt,
    exempt_reason): the units placed and active on each day of `days` (an SQL table expression
    with one column, day), at their placement that day (the placement rule,
    shared/registry/placement.py), with their cutoff and whether a calendar exempts them that
    day (shared/registry/calendar.py), restricted by `where` (on p.node_code) and by the
    :sector and :unit_type parameters. Exempt units are listed: callers count them apart."""
    return f"""
        SELECT d.day, p.unit_code, p.node_code, p.name, p.unit_type, p.sector,
               {cutoff_sql("u.cutoff", "p.unit_type")} AS cutoff,
               x.exemption_id IS NOT NULL AS exempt, x.reason AS exempt_reason
        FROM {days} AS d(day) CROSS JOIN LATERAL {placement_on("d.day")} AS p
        JOIN registry.units u ON u.code = p.unit_code
        LEFT JOIN LATERAL {exemption_sql("d.day", "p.unit_code", "p.node_code", "p.unit_type")}
            AS x ON true
        WHERE p.active AND ({where})
          AND (CAST(:sector AS text) IS NULL OR p.sector = CAST(:sector AS text))
          AND (CAST(:unit_type AS text) IS NULL OR p.unit_type = CAST(:unit_type AS text))
    """


# Counted per cutoff first, then folded into one row per node-day with the unreported units of
# each cutoff as a JSON object.
BUILD = text(f"""
    WITH expected AS ({expected_units_sql("unnest(CAST(:days AS date[]))")}),
    per_cutoff AS (
        SELECT e.day, left(e.node_code, l) AS node_code, CAST(e.cutoff AS text) AS cutoff,
               count(*) FILTER (WHERE NOT e.exempt) AS expected,
               count(*) FILTER (WHERE e.exempt) AS exempt,
               count(*) FILTER (WHERE NOT e.exempt AND ud.unit_code IS NULL) AS unreported
        FROM expected e
        LEFT JOIN aggregate.unit_days ud ON ud.unit_code = e.unit_code AND ud.day = e.day
        CROSS JOIN unnest({LENGTHS}) AS l
        WHERE l <= length(e.node_code)
        GROUP BY 1, 2, 3),
    counted AS (
        SELECT day, node_code, sum(expected) AS expected, sum(exempt) AS exempt,
               coalesce(jsonb_object_agg(cutoff, unreported) FILTER (WHERE unreported > 0),
                        '{{}}') AS unreported
        FROM per_cutoff GROUP BY 1, 2),
    reset AS (
        UPDATE aggregate.node_days c SET expected = 0, exempt = 0, unreported = '{{}}'
        WHERE c.day = ANY(CAST(:days AS date[]))
          AND (c.expected <> 0 OR c.exempt <> 0 OR c.unreported <> '{{}}')
          AND NOT EXISTS (SELECT 1 FROM counted k
                          WHERE k.day = c.day AND k.node_code = c.node_code))
    INSERT INTO aggregate.node_days AS c (node_code, day, expected, exempt, unreported)
    SELECT node_code, day, expected, exempt, unreported FROM counted ORDER BY node_code, day
    ON CONFLICT (node_code, day) DO UPDATE
        SET expected = excluded.expected, exempt = excluded.exempt,
            unreported = excluded.unreported
""")
MARK_BUILT = text("""
    INSERT INTO aggregate.days (day, built_at) SELECT unnest(CAST(:days AS date[])), :now
    ON CONFLICT (day) DO UPDATE SET built_at = excluded.built_at
""")
BUILT = text("SELECT day FROM aggregate.days WHERE day = ANY(CAST(:days AS date[]))")
BUILT_SINCE = text("SELECT day FROM aggregate.days WHERE day >= :since ORDER BY day")
LOCK_DAYS = text(f"""
    SELECT CASE WHEN x THEN pg_advisory_xact_lock({DAY_LOCK_SPACE}, k)
                ELSE pg_advisory_xact_lock_shared({DAY_LOCK_SPACE}, k) END
    FROM (SELECT d - DATE '{EPOCH.isoformat()}' AS k, d = ANY(CAST(:exclusive AS date[])) AS x
          FROM unnest(CAST(:days AS date[])) AS d) keys
    ORDER BY k
""")


async def lock_days(session: AsyncSession, shared: Iterable[date] = (),
                    exclusive: Iterable[date] = ()) -> None:
    """Day locks in one order for every writer, so that two writers never wait on each other."""
    exclusive = sorted(set(exclusive))
    days = sorted(set(shared) | set(exclusive))
    if days:
        await session.execute(LOCK_DAYS, {"days": days, "exclusive": exclusive})


async def build(session: AsyncSession, days: Iterable[date], now: datetime) -> None:
    """(Re)count expected, exempt and unreported units of every node on `days`; the caller
    holds the days' exclusive locks."""
    days = sorted(set(days))
    if days:
        await session.execute(BUILD, {"days": days, "sector": None, "unit_type": None})
        await session.execute(MARK_BUILT, {"days": days, "now": now})


async def built(session: AsyncSession, days: Iterable[date]) -> set[date]:
    return set((await session.execute(BUILT, {"days": sorted(set(days))})).scalars())


async def enter_days(session: AsyncSession, days: Iterable[date], now: datetime,
                     known: set[date] | None = None) -> None:
    """Take the shared locks of the days a batch writes to, building any day not built yet.
    `known` caches days seen built (committed), so that a steady stream costs no extra query."""
    days = set(days)
    unknown = days - known if known is not None else days
    if unknown:
        found = await built(session, unknown)
        if known is not None:
            known |= found
        unknown -= found
    await lock_days(session, shared=days - unknown, exclusive=unknown)
    if unknown:
        # Another writer may have built them while this one waited for the lock.
        await build(session, unknown - await built(session, unknown), now)


async def rebuild(session: AsyncSession, days: Iterable[date], now: datetime) -> None:
    """Recount `days` (e.g. after the registry changed), holding their exclusive locks."""
    days = set(days)
    await lock_days(session, exclusive=days)
    await build(session, days, now)


async def built_since(session: AsyncSession, since: date) -> list[date]:
    return list((await session.execute(BUILT_SINCE, {"since": since})).scalars())


def recent(today: date, lock_days: int) -> date:
    """The first day that can still receive reports: registry changes are recounted from it on."""
    return today - timedelta(days=lock_days)
