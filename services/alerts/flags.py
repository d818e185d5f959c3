"""疑似瞒报 flags in the database: raised from the cases and reports alerts consumes (in the
consumer's transaction, so a redelivery raises nothing twice: each flag has a key), listed and
counted for a node's area (a sector operator's: its sector's), and dismissed once with a
reason. The rules are services/alerts/suspicion.py's. Alerts owns them because it is the one
service that consumes both the accepted reports and the cases (docs/architecture.md)."""

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import suspicion
from services.alerts.models import FlagRow
from shared.contracts import CaseReported, ReportAccepted
from shared.rules import Rules

# A unit-day's cases, counted as they arrive; the row's lock orders a case and a report of the
# same unit-day, so that whichever commits second sees the other.
ADD_CASES = text("""
    INSERT INTO alerts.unit_days AS ud (unit, day, case_ili, cases)
    SELECT u, d, 0, n FROM unnest(CAST(:units AS text[]), CAST(:days AS date[]),
                                  CAST(:counts AS int[])) AS t(u, d, n)
    ON CONFLICT (unit, day) DO UPDATE SET cases = ud.cases + excluded.cases
    RETURNING unit, day, report_zero, report_revision, cases
""")
VALUES_AROUND = text("""
    SELECT unit, day, report_values FROM alerts.unit_days
    WHERE unit = ANY(CAST(:units AS text[])) AND day BETWEEN :first AND :last
      AND report_values IS NOT NULL AND NOT coalesce(report_zero, false)
""")
# Probed report by report through the primary key (the lateral subquery with its LIMIT stays
# apart): joined from outside, a batch of thousands would hash the whole table.
PAIRED = text("""
    SELECT t.u AS unit, t.d AS day
    FROM unnest(CAST(:units AS text[]), CAST(:days AS date[])) AS t(u, d)
    CROSS JOIN LATERAL (
        SELECT 1 FROM alerts.unit_days c
        JOIN alerts.unit_days nb ON nb.unit = c.unit AND nb.day IN (c.day - 1, c.day + 1)
        WHERE c.unit = t.u AND c.day = t.d AND nb.report_values = c.report_values
          AND NOT coalesce(c.report_zero, false) AND NOT coalesce(nb.report_zero, false)
        LIMIT 1) AS p
""")
# How far around a report the start of a run of identical values is looked for, beyond N days
# (a run longer than that is flagged again from where the window starts).
RUN_MARGIN_DAYS = 31


@dataclass(frozen=True, slots=True)
class Where:
    """The unit's place, as the event that raised the flag says it."""

    unit: str
    node: str
    unit_type: str
    sector: str


async def _raise(session: AsyncSession, rows: list[dict], now: datetime) -> int:
    """Insert flags not raised before; a run of identical values that grew updates its flag's
    details. Returns how many were new."""
    if not rows:
        return 0
    table = FlagRow.__table__
    stmt = pg_insert(table).values([{**r, "flag_id": uuid.uuid4(), "raised_at": now,
                                     "status": "open"} for r in rows])
    stmt = stmt.on_conflict_do_update(
        index_elements=["key"],
        set_={"details": stmt.excluded.details, "day": stmt.excluded.day},
        where=(table.c.details != stmt.excluded.details),
    ).returning(table.c.raised_at)
    return sum(1 for at in (await session.execute(stmt)).scalars() if at == now)


def _row(kind: str, where: Where, day: date, key_day: date, details: dict) -> dict:
    return {"key": suspicion.key(kind, where.unit, key_day), "kind": kind, "unit": where.unit,
            "node": where.node, "unit_type": where.unit_type, "sector": where.sector,
            "day": day, "details": details}


async def on_cases(session: AsyncSession, events: list[CaseReported], zone: ZoneInfo,
                   now: datetime) -> int:
    """New cases: counted per unit and day; a day whose report is a zero report is flagged."""
    per_day: defaultdict[tuple[str, date], int] = defaultdict(int)
    where: dict[str, Where] = {}
    for e in events:
        per_day[(e.unit, e.found_at.astimezone(zone).date())] += 1
        where[e.unit] = Where(e.unit, e.node, e.unit_type, e.sector)
    if not per_day:
        return 0
    keys = sorted(per_day)
    rows = await session.execute(ADD_CASES, {"units": [u for u, _ in keys],
                                             "days": [d for _, d in keys],
                                             "counts": [per_day[k] for k in keys]})
    return await _raise(session, [
        _row(suspicion.ZERO_WITH_CASE, where[r.unit], r.day, r.day,
             {"cases": r.cases, "report_revision": r.report_revision})
        for r in rows if suspicion.zero_with_case(r.report_zero, r.cases)], now)


async def on_reports(session: AsyncSession, newer: list[tuple[ReportAccepted, int]],
                     rules: Rules, now: datetime) -> int:
    """Reports that became a unit-day's latest, each with the cases of that unit-day: a zero
    report with cases is flagged; non-zero values identical for `rules.identical_days` days in
    a row are flagged once per run."""
    out = [_row(suspicion.ZERO_WITH_CASE, Where(e.unit, e.node, e.unit_type, e.sector), e.day,
                e.day, {"cases": cases, "report_revision": e.revision})
           for e, cases in newer if suspicion.zero_with_case(e.zero, cases)]
    valued = [e for e, _ in newer if not e.zero]
    n = rules.identical_days
    # A run of two days or more (rules refuse fewer) has a neighbour day with the same values:
    # PostgreSQL finds the few reports that have one, and only their units' wider window is
    # read to find where a run starts and how long it is.
    paired = await _paired(session, valued)
    suspects = [e for e in valued if (e.unit, e.day) in paired]
    wide = await _values(session, suspects, timedelta(days=n + RUN_MARGIN_DAYS))
    for e in suspects:
        run = suspicion.identical_run(wide[e.unit], e.day, n)
        if run is not None:
            first, last = run
            out.append(_row(suspicion.IDENTICAL_VALUES,
                            Where(e.unit, e.node, e.unit_type, e.sector), last, first,
                            {"first_day": first.isoformat(), "last_day": last.isoformat(),
                             "days": (last - first).days + 1,
                             "values": json.loads(json.dumps(e.values))}))
    # One row per key (a batch may hold several days of one run).
    return await _raise(session, list({r["key"]: r for r in out}.values()), now)


async def _paired(session: AsyncSession, reports: list[ReportAccepted]
                  ) -> set[tuple[str, date]]:
    """The unit-days among these reports whose non-zero values the day before or after
    repeats."""
    if not reports:
        return set()
    rows = await session.execute(PAIRED, {"units": [e.unit for e in reports],
                                          "days": [e.day for e in reports]})
    return {(r.unit, r.day) for r in rows}


async def _values(session: AsyncSession, reports: list[ReportAccepted], margin: timedelta
                  ) -> defaultdict[str, dict[date, dict]]:
    """The non-zero values of these reports' units within `margin` of their days."""
    by_unit: defaultdict[str, dict[date, dict]] = defaultdict(dict)
    if reports:
        for r in await session.execute(VALUES_AROUND, {
                "units": sorted({e.unit for e in reports}),
                "first": min(e.day for e in reports) - margin,
                "last": max(e.day for e in reports) + margin}):
            by_unit[r.unit][r.day] = r.report_values
    return by_unit


# ---- the operators' side ----------------------------------------------------------------------

STATUSES = {"open": ("open",), "dismissed": ("dismissed",), "all": ("open", "dismissed")}


@dataclass(frozen=True, slots=True)
class Selection:
    """Which flags: of `node`'s area (and `sector`, a sector operator's), by day, status and
    kind."""

    node: str
    start: date
    end: date
    status: str = "all"
    kind: str | None = None
    sector: str | None = None

    def where(self) -> list[ColumnElement[bool]]:
        out = [FlagRow.node.startswith(self.node, autoescape=True),
               FlagRow.day.between(self.start, self.end),
               FlagRow.status.in_(STATUSES[self.status])]
        if self.kind:
            out.append(FlagRow.kind == self.kind)
        if self.sector:
            out.append(FlagRow.sector == self.sector)
        return out


async def listed(session: AsyncSession, selection: Selection, limit: int) -> list[FlagRow]:
    return list(await session.scalars(select(FlagRow).where(*selection.where()).order_by(
        FlagRow.day.desc(), FlagRow.unit, FlagRow.kind).limit(limit)))


async def counted(session: AsyncSession, selection: Selection) -> dict:
    """How many flags: in all, per kind and status, and per unit (open ones)."""
    rows = (await session.execute(
        select(FlagRow.kind, FlagRow.status, FlagRow.unit, func.count())
        .where(*selection.where()).group_by(FlagRow.kind, FlagRow.status, FlagRow.unit))).all()
    by_kind: defaultdict[str, dict[str, int]] = defaultdict(lambda: {"open": 0, "dismissed": 0})
    by_unit: defaultdict[str, int] = defaultdict(int)
    for kind, status, unit, n in rows:
        by_kind[kind][status] += n
        if status == "open":
            by_unit[unit] += n
    return {"total": sum(n for *_, n in rows),
            "open": sum(n for _, status, _, n in rows if status == "open"),
            "by_kind": dict(by_kind), "open_by_unit": dict(by_unit)}


class FlagNotFound(Exception):
    pass


class AlreadyDismissed(Exception):
    pass


async def locked(session: AsyncSession, flag_id: uuid.UUID) -> FlagRow:
    row = await session.get(FlagRow, flag_id, with_for_update=True)
    if row is None:
        raise FlagNotFound(flag_id)
    return row


async def dismiss(session: AsyncSession, row: FlagRow, by: str, reason: str,
                  now: datetime) -> FlagRow:
    """Dismissed once, with who, when and why, kept for good; the figures never changed."""
    if row.status == "dismissed":
        raise AlreadyDismissed(row.flag_id)
    row.status, row.dismissed_at, row.dismissed_by, row.dismissal_reason = (
        "dismissed", now, by, reason)
    await session.flush()
    return row
