"""Accountability (漏报、迟报、瞒报、错报: 追究相關責任; 一天一通報): per unit and per node over
any range of days, the unit-days expected, reported, zero (零报告), late (迟报), missing (漏报),
corrected (更正) and exempt, with the rankings a 通报 names — the units with the most missing and
late days, the child nodes (towns of a county) with the lowest reporting rates.

Counted on request from the stored unit records (`aggregate.unit_days`: each unit-day's latest
revision with its zero and late flags, as the ledger's latest revision says them) and the
registry's expected units (placements, calendars, cutoffs: `expected.expected_units_sql`), like
the sector views. Nothing is stored, so the rollup invariant has nothing more to cover; the same
tallies recomputed from the ingest ledger agree (tests/integration/test_accountability.py).

`sent_back` (退回) is null here: signoff keeps the send-backs, and the console's 通报 counts
them from signoff's API (services/console/bulletin.py).
"""

from dataclasses import dataclass
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.aggregate.expected import expected_units_sql
from services.aggregate.queries import DAY_RANGE, FILTERS, Filter, names, under
from services.aggregate.rollup import Counts
from shared.deadlines import Moment, sql_cutoff_passed

# One row per unit and the node it was placed at (a unit moved within the range has a row for
# each placement, so each node is charged with its own days).
TALLY = text(f"""
    WITH e AS ({expected_units_sql(DAY_RANGE, under("p.node_code", "node"))}),
    r AS (SELECT ud.unit_code, ud.day, ud.node_code, ud.unit_type, ud.sector, ud.revision,
                 ud.zero, ud.late
          FROM aggregate.unit_days ud
          WHERE ud.day BETWEEN :d0 AND :d1 AND {under("ud.node_code", "node")}
            AND {FILTERS.format(t="ud")}),
    days AS (
        SELECT coalesce(r.unit_code, e.unit_code) AS unit,
               coalesce(r.node_code, e.node_code) AS node,
               coalesce(r.unit_type, e.unit_type) AS unit_type,
               coalesce(r.sector, e.sector) AS sector,
               e.unit_code IS NOT NULL AND NOT e.exempt AS expected,
               coalesce(e.exempt, false) AS exempt,
               r.unit_code IS NOT NULL AS reported, coalesce(r.zero, false) AS zero,
               coalesce(r.late, false) AS late, coalesce(r.revision > 1, false) AS corrected,
               r.unit_code IS NULL AND e.unit_code IS NOT NULL AND NOT e.exempt
                   AND {sql_cutoff_passed("e.day", "e.cutoff")} AS missing,
               r.unit_code IS NULL AND e.unit_code IS NOT NULL AND NOT e.exempt
                   AND NOT {sql_cutoff_passed("e.day", "e.cutoff")} AS pending
        FROM e FULL JOIN r ON r.unit_code = e.unit_code AND r.day = e.day)
    SELECT d.unit, d.node, max(d.unit_type) AS unit_type, max(d.sector) AS sector,
           max(u.name) AS name,
           count(*) FILTER (WHERE d.expected) AS expected,
           count(*) FILTER (WHERE d.reported) AS reported,
           count(*) FILTER (WHERE d.zero) AS zero, count(*) FILTER (WHERE d.late) AS late,
           count(*) FILTER (WHERE d.missing) AS missing,
           count(*) FILTER (WHERE d.pending) AS pending,
           count(*) FILTER (WHERE d.exempt) AS exempt,
           count(*) FILTER (WHERE d.corrected) AS corrected
    FROM days d LEFT JOIN registry.units u ON u.code = d.unit
    GROUP BY d.unit, d.node
""")


@dataclass
class Tally:
    """Unit-days over a range: the completeness counts, and how many were corrected."""

    counts: Counts
    corrected: int = 0

    def __add__(self, other: "Tally") -> "Tally":
        return Tally(self.counts + other.counts, self.corrected + other.corrected)

    def shape(self) -> dict:
        c = self.counts
        rates = c.rates()
        return {"expected": c.expected, "reported": c.reported, "zero": c.zero, "late": c.late,
                "on_time": c.on_time, "missing": c.missing, "pending": c.pending,
                "exempt": c.exempt, "corrected": self.corrected,
                "sent_back": None,  # signoff's: the console's 通报 fills it
                "reporting_rate": rates["reporting_rate"], "on_time_rate": rates["on_time_rate"]}


def unit_rank(row: dict) -> tuple:
    """The 通报's order of units: the most missing and late days first (missing weighs first
    among equals), then by code."""
    return (-(row["missing"] + row["late"]), -row["missing"], -row["late"], row["unit"])


def node_rank(row: dict) -> tuple:
    """The 通报's order of nodes: the lowest reporting rate first (nodes with nothing due yet
    last), then the lowest on-time rate, then by code."""
    rate, on_time = row["reporting_rate"], row["on_time_rate"]
    return (rate is None, rate if rate is not None else 0.0,
            on_time if on_time is not None else 0.0, row["node"])


async def tallies(session: AsyncSession, node: str, d0: date, d1: date, where: Filter,
                  moment: Moment, child_length: int | None, limit: int | None) -> dict:
    """A node's tallies over the days d0..d1 (pending and missing as of `moment`), each unit's
    ranked, and each child node's (grouped by `child_length` digits) ranked."""
    rows = await session.execute(TALLY, {"node": node, "d0": d0, "d1": d1, **where.params(),
                                         **moment.params()})
    total = Tally(Counts())
    units: list[dict] = []
    by_child: dict[str, Tally] = {}
    for r in rows:
        tally = Tally(Counts(r.expected, r.reported, r.zero, r.late, r.missing, r.pending,
                             r.exempt), r.corrected)
        total += tally
        units.append({"unit": r.unit, "name": r.name, "node": r.node, "unit_type": r.unit_type,
                      "sector": r.sector, **tally.shape()})
        if child_length is not None and len(r.node) >= child_length:
            child = r.node[:child_length]
            by_child[child] = by_child.get(child, Tally(Counts())) + tally
    units.sort(key=unit_rank)
    for i, row in enumerate(units, 1):
        row["rank"] = i
    named = await names(session, [node, *by_child])
    children = sorted(({"node": code, "name": named.get(code), **t.shape()}
                       for code, t in by_child.items()), key=node_rank)
    for i, row in enumerate(children, 1):
        row["rank"] = i
    return {"node": node, "name": named.get(node), "start": d0, "end": d1,
            "days": (d1 - d0).days + 1, **({"filter": {k: v for k, v in where.params().items()
                                                       if v is not None}} if where else {}),
            "totals": total.shape(), "units_total": len(units),
            "units": units if limit is None else units[:limit], "children": children}
