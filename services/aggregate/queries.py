"""Read side of the rollups. Two sources give the same figures:

- the stored node-day rows (rollup and completeness), kept by the projector: what every
  unfiltered view reads, a few index lookups whatever the size of the node;
- a count over the stored unit records (`aggregate.unit_days`, which keep each unit's type and
  sector) and the registry: what views filtered by sector or unit type read (the education
  bureau's schools are a filter on the same data, docs/architecture.md, "Hierarchy").

Lists (pending, missing, exempt and late units, a node's own units) always come from the unit
records and the registry. Every query takes all the nodes a view needs at once, never one query
per child. Pending and missing are told apart at the instant of the read (`Moment`), by
`shared/deadlines.py`: the Python rule on stored counts, its SQL twin in lists."""

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.aggregate.expected import expected_units_sql
from services.aggregate.rollup import Counts, Figures, Tally, cutoff_key
from shared.aggregation import over_units, sql_combine, sql_kinds
from shared.catalogue import Catalogue
from shared.deadlines import Moment, sql_cutoff_passed

NodeDayFigures = dict[tuple[str, date], Figures]


def under(column: str, param: str) -> str:
    """`column` is the node named by :param or below it (codes are digits, compared bytewise)."""
    return (f"{column} ~>=~ CAST(:{param} AS text) "
            f"AND {column} ~<~ (CAST(:{param} AS text) || '~')")


FILTERS = """(CAST(:sector AS text) IS NULL OR {t}.sector = CAST(:sector AS text))
    AND (CAST(:unit_type AS text) IS NULL OR {t}.unit_type = CAST(:unit_type AS text))"""
DAY_RANGE = ("(SELECT CAST(g AS date) FROM generate_series(CAST(:d0 AS timestamp), "
             "CAST(:d1 AS timestamp), interval '1 day') AS g)")
ONE_DAY = "(SELECT CAST(:day AS date))"

STORED = text("""
    SELECT node_code, day, values, expected, reported, zero, late, exempt, unreported
    FROM aggregate.node_days
    WHERE node_code = ANY(CAST(:codes AS text[])) AND day BETWEEN :d0 AND :d1
""")
# Counting from the unit records, grouped by the first :glen digits of the unit's node (the
# node itself, or each child); units placed at a shorter code than :glen are left out.
COUNTED_VALUES = text(f"""
    SELECT left(ud.node_code, :glen) AS grp, ud.day, kv.key AS metric,
           {sql_combine("CAST(:kinds AS jsonb) ->> kv.key", "CAST(kv.value AS float8)")}
           AS value
    FROM aggregate.unit_days ud CROSS JOIN LATERAL jsonb_each_text(ud.values) AS kv
    WHERE ud.day BETWEEN :d0 AND :d1 AND {under("ud.node_code", "node")}
      AND CAST(:kinds AS jsonb) ? kv.key
      AND length(ud.node_code) >= :glen AND {FILTERS.format(t="ud")}
    GROUP BY 1, 2, 3
""")
COUNTED_REPORTS = text(f"""
    SELECT left(ud.node_code, :glen) AS grp, ud.day, count(*) AS reported,
           count(*) FILTER (WHERE ud.zero) AS zero, count(*) FILTER (WHERE ud.late) AS late
    FROM aggregate.unit_days ud
    WHERE ud.day BETWEEN :d0 AND :d1 AND {under("ud.node_code", "node")}
      AND length(ud.node_code) >= :glen AND {FILTERS.format(t="ud")}
    GROUP BY 1, 2
""")
COUNTED_EXPECTED = text(f"""
    WITH e AS ({expected_units_sql(DAY_RANGE, under("p.node_code", "node"))})
    SELECT left(e.node_code, :glen) AS grp, e.day, e.cutoff,
           count(*) FILTER (WHERE NOT e.exempt) AS expected,
           count(*) FILTER (WHERE e.exempt) AS exempt,
           count(*) FILTER (WHERE NOT e.exempt AND NOT EXISTS (
               SELECT 1 FROM aggregate.unit_days ud
               WHERE ud.unit_code = e.unit_code AND ud.day = e.day)) AS unreported
    FROM e WHERE length(e.node_code) >= :glen
    GROUP BY 1, 2, 3
""")
CHILD_CODES = text(f"""
    SELECT code FROM registry.nodes WHERE parent_code = :node
    UNION
    SELECT DISTINCT node_code FROM aggregate.node_days
    WHERE day BETWEEN :d0 AND :d1 AND {under("node_code", "node")}
      AND length(node_code) = :glen
""")
UNREPORTED_CUTOFFS = text("""
    SELECT k FROM aggregate.node_days nd CROSS JOIN jsonb_object_keys(nd.unreported) k
    WHERE nd.node_code = :node AND nd.day = :day
""")
NAMES = text("SELECT code, name FROM registry.nodes WHERE code = ANY(CAST(:codes AS text[]))")
# A node's own units (placed at the node itself, not below): expected ones and any that reported.
OWN_UNITS = text(f"""
    WITH e AS ({expected_units_sql(ONE_DAY, "p.node_code = :node")}),
    r AS (SELECT * FROM aggregate.unit_days ud
          WHERE ud.day = :day AND ud.node_code = :node AND {FILTERS.format(t="ud")})
    SELECT coalesce(e.unit_code, r.unit_code) AS unit, u.name,
           coalesce(r.unit_type, e.unit_type) AS unit_type, coalesce(r.sector, e.sector) AS sector,
           e.unit_code IS NOT NULL AND NOT e.exempt AS expected, e.exempt, e.exempt_reason,
           e.cutoff, r.revision, r.values, r.zero, r.late, r.submitted_at
    FROM e FULL JOIN r ON r.unit_code = e.unit_code
    LEFT JOIN registry.units u ON u.code = coalesce(e.unit_code, r.unit_code)
    ORDER BY 1
""")
# Expected units with no report whose cutoff has passed (:passed true: 漏报) or not (待报).
UNREPORTED_UNITS = text(f"""
    WITH e AS ({expected_units_sql(ONE_DAY, under("p.node_code", "node"))})
    SELECT e.unit_code AS unit, e.name, e.node_code AS node, e.unit_type, e.sector,
           e.cutoff FROM e
    WHERE NOT e.exempt AND {sql_cutoff_passed("e.day", "e.cutoff")} = :passed
      AND NOT EXISTS (SELECT 1 FROM aggregate.unit_days ud
                      WHERE ud.unit_code = e.unit_code AND ud.day = e.day)
    ORDER BY e.node_code, e.unit_code LIMIT :limit OFFSET :offset
""")
EXEMPT_UNITS = text(f"""
    WITH e AS ({expected_units_sql(ONE_DAY, under("p.node_code", "node"))})
    SELECT e.unit_code AS unit, e.name, e.node_code AS node, e.unit_type, e.sector,
           e.exempt_reason AS reason FROM e
    WHERE e.exempt
    ORDER BY e.node_code, e.unit_code LIMIT :limit OFFSET :offset
""")
LATE_UNITS = text(f"""
    SELECT ud.unit_code AS unit, u.name, ud.node_code AS node, ud.unit_type, ud.sector,
           ud.submitted_at, ud.revision
    FROM aggregate.unit_days ud LEFT JOIN registry.units u ON u.code = ud.unit_code
    WHERE ud.day = :day AND {under("ud.node_code", "node")} AND ud.late
      AND {FILTERS.format(t="ud")}
    ORDER BY ud.node_code, ud.unit_code LIMIT :limit OFFSET :offset
""")


@dataclass(frozen=True)
class Filter:
    sector: str | None = None
    unit_type: str | None = None

    def __bool__(self) -> bool:
        return self.sector is not None or self.unit_type is not None

    def params(self) -> dict[str, str | None]:
        return {"sector": self.sector, "unit_type": self.unit_type}


def days(d0: date, d1: date) -> list[date]:
    return [d0 + timedelta(days=i) for i in range((d1 - d0).days + 1)]


async def stored(session: AsyncSession, codes: list[str], d0: date, d1: date,
                 moment: Moment) -> NodeDayFigures:
    """The kept figures of these nodes on these days (only node-days that have any), their
    unreported units pending or missing at `moment`."""
    rows = await session.execute(STORED, {"codes": codes, "d0": d0, "d1": d1})
    return {(r.node_code, r.day): Figures(r.values, Tally(
        r.expected, r.reported, r.zero, r.late, r.exempt, r.unreported).at(r.day, moment))
        for r in rows}


async def counted(session: AsyncSession, node: str, glen: int, d0: date, d1: date,
                  where: Filter, catalogue: Catalogue, moment: Moment) -> NodeDayFigures:
    """Figures counted from the unit records and the registry, grouped by the first `glen`
    digits of the unit's node: `glen = len(node)` for the node itself, more for its children."""
    out: NodeDayFigures = {}
    params = {"node": node, "glen": glen, "d0": d0, "d1": d1, **where.params()}
    kinds = sql_kinds(over_units(catalogue))
    for r in await session.execute(COUNTED_VALUES, {**params, "kinds": kinds}):
        out.setdefault((r.grp, r.day), Figures()).values[r.metric] = r.value
    for r in await session.execute(COUNTED_REPORTS, params):
        f = out.setdefault((r.grp, r.day), Figures())
        f.counts = f.counts + Counts(reported=r.reported, zero=r.zero, late=r.late)
    for r in await session.execute(COUNTED_EXPECTED, params):
        f = out.setdefault((r.grp, r.day), Figures())
        tally = Tally(r.expected, exempt=r.exempt, unreported={cutoff_key(r.cutoff): r.unreported})
        f.counts = f.counts + tally.at(r.day, moment)
    return out


async def child_codes(session: AsyncSession, node: str, glen: int, d0: date, d1: date
                      ) -> list[str]:
    rows = await session.execute(CHILD_CODES, {"node": node, "glen": glen, "d0": d0, "d1": d1})
    return sorted(rows.scalars())


async def unreported_cutoffs(session: AsyncSession, node: str, day: date) -> list[str]:
    """The cutoffs (as stored) of the node's expected units with no report yet on the day."""
    return list((await session.execute(UNREPORTED_CUTOFFS, {"node": node, "day": day})).scalars())


async def names(session: AsyncSession, codes: list[str]) -> dict[str, str]:
    return {code: name for code, name in await session.execute(NAMES, {"codes": codes})}


async def own_units(session: AsyncSession, node: str, day: date, where: Filter,
                    moment: Moment) -> list[dict]:
    """The units placed at the node itself with their day's state at `moment` (reported, zero,
    pending, missing or exempt) and their report."""
    rows = await session.execute(OWN_UNITS, {"node": node, "day": day, **where.params()})
    out = []
    for r in rows:
        state = (moment.state(day, r.cutoff, reported=r.revision is not None,
                              exempt=bool(r.exempt)).value
                 if r.cutoff is not None else "reported")  # reported, not placed here today
        status = "zero" if state == "reported" and r.zero else state
        out.append({"kind": "unit", "unit": r.unit, "name": r.name, "node": node,
                    "unit_type": r.unit_type, "sector": r.sector, "day": day,
                    "expected": r.expected, "status": status, "cutoff": r.cutoff,
                    "exempt_reason": r.exempt_reason, "revision": r.revision,
                    "zero": r.zero, "late": r.late, "submitted_at": r.submitted_at,
                    "values": r.values or {}})
    return out


async def unreported_units(session: AsyncSession, node: str, day: date, where: Filter,
                           moment: Moment, missing: bool, limit: int | None = None,
                           offset: int = 0) -> list[dict]:
    """The expected units with no report at `moment`: missing (漏报, cutoff passed) or pending
    (待报), in code order."""
    rows = await session.execute(UNREPORTED_UNITS, {
        "node": node, "day": day, "limit": limit, "offset": offset, "passed": missing,
        **moment.params(), **where.params()})
    return [dict(r._mapping) for r in rows]


async def exempt_units(session: AsyncSession, node: str, day: date, where: Filter,
                       limit: int | None = None, offset: int = 0) -> list[dict]:
    """The units a calendar exempts that day (免报), with the reason."""
    rows = await session.execute(EXEMPT_UNITS, {"node": node, "day": day, "limit": limit,
                                                "offset": offset, **where.params()})
    return [dict(r._mapping) for r in rows]


async def late_units(session: AsyncSession, node: str, day: date, where: Filter,
                     limit: int | None = None, offset: int = 0) -> list[dict]:
    rows = await session.execute(LATE_UNITS, {"node": node, "day": day, "limit": limit,
                                              "offset": offset, **where.params()})
    return [dict(r._mapping) for r in rows]


# When the reports behind a node-day first and last arrived (a DHIS2 export's created and
# lastUpdated), grouped by the first :glen digits of the units' nodes.
ARRIVALS = text(f"""
    SELECT left(ud.node_code, :glen) AS grp, ud.day, min(ud.submitted_at) AS first,
           max(ud.submitted_at) AS last
    FROM aggregate.unit_days ud
    WHERE ud.day BETWEEN :d0 AND :d1 AND {under("ud.node_code", "node")}
      AND length(ud.node_code) >= :glen
    GROUP BY 1, 2
""")


async def arrivals(session: AsyncSession, node: str, glen: int, d0: date, d1: date) -> dict:
    """(node, day) → (first, last) arrival of the reports rolled up there."""
    rows = await session.execute(ARRIVALS, {"node": node, "glen": glen, "d0": d0, "d1": d1})
    return {(r.grp, r.day): (r.first, r.last) for r in rows}
