"""Calendars (免报): who is not expected to report on a day, and a unit's cutoff.

An exemption covers the units it names for the days of its period (both bounds inclusive, the
end open when unset): one unit (`unit_code`), or every unit at or below a node (`node_code`),
optionally only those of one type (`unit_type`); a `weekday` (ISO, 1 = Monday) narrows it to that
day of each week, a weekly rest day. A unit covered by any exemption that is not withdrawn is
exempt that day: not expected, so neither pending nor missing, and no missing-report alert; a
report it sends anyway is accepted and counted (docs/architecture.md, "Cutoffs, completeness,
timeliness"). Declared after a cutoff, it takes the units it covers off that cutoff's open
missing-report alerts (alerts follows `calendar.declared`, `announcement`); ending it puts
nothing back on an alert.

Exemptions apply to today and later days, never to days already past: a declaration starts today
at the earliest, and ending one brings its last day back to yesterday (it is withdrawn if it had
not begun), so a past day's figures stay as they were counted. Every declaration and ending is
kept with who, when and why.

`covers` is the rule in Python; `exemption_sql` is its SQL twin (a LATERAL subquery), and
tests/integration/test_calendar.py holds the two to the same answers.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts import CalendarChange, CalendarChanged
from shared.registry.unit_types import unit_types

NO_TYPE_CUTOFF = time(23, 59)  # a unit type the data file does not know


def cutoff_of(own: time | None, unit_type: str) -> time:
    """A unit's daily cutoff: its own when set, else its type's (shared/data/unit_types.toml)."""
    if own is not None:
        return own
    found = unit_types().get(unit_type)
    return found.cutoff if found is not None else NO_TYPE_CUTOFF


def cutoff_sql(own: str, unit_type: str) -> str:
    """`cutoff_of` in SQL, for the SQL expressions `own` (units.cutoff) and `unit_type`."""
    cases = " ".join(f"WHEN '{code}' THEN TIME '{t.cutoff.isoformat()}'"
                     for code, t in sorted(unit_types().items()))
    return (f"coalesce({own}, CASE {unit_type} {cases} "
            f"ELSE TIME '{NO_TYPE_CUTOFF.isoformat()}' END)")


@dataclass(frozen=True, slots=True)
class Exemption:
    exemption_id: int
    node_code: str | None
    unit_code: str | None
    unit_type: str | None
    weekday: int | None
    valid_from: date
    valid_to: date | None
    reason: str
    declared_by: str
    declared_at: datetime
    withdrawn: bool = False
    ended_by: str | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None

    def covers(self, unit: str, node: str, unit_type: str, day: date) -> bool:
        """Whether this exemption covers the unit, placed at `node`, on `day`."""
        return (not self.withdrawn and self.valid_from <= day
                and (self.valid_to is None or day <= self.valid_to)
                and (self.unit_code is None or self.unit_code == unit)
                and (self.node_code is None or node.startswith(self.node_code))
                and (self.unit_type is None or self.unit_type == unit_type)
                and (self.weekday is None or self.weekday == day.isoweekday()))


def exempt_by(exemptions: Iterable[Exemption], unit: str, node: str, unit_type: str,
              day: date) -> Exemption | None:
    """The first exemption covering the unit on the day, if any (`exemptions` in id order, as
    `in_force` gives them)."""
    return next((x for x in exemptions if x.covers(unit, node, unit_type, day)), None)


def exemption_sql(day: str, unit: str, node: str, unit_type: str) -> str:
    """`exempt_by` in SQL: a subquery of (exemption_id, reason), at most one row, for the SQL
    expressions given; use it as `LEFT JOIN LATERAL (...) AS x ON true`."""
    return f"""(
        SELECT x.exemption_id, x.reason FROM registry.exemptions x
        WHERE NOT x.withdrawn AND x.valid_from <= {day}
          AND (x.valid_to IS NULL OR {day} <= x.valid_to)
          AND (x.unit_code IS NULL OR x.unit_code = {unit})
          AND (x.node_code IS NULL OR starts_with({node}, x.node_code))
          AND (x.unit_type IS NULL OR x.unit_type = {unit_type})
          AND (x.weekday IS NULL OR x.weekday = CAST(extract(isodow FROM {day}) AS int))
        ORDER BY x.exemption_id LIMIT 1)"""


COLUMNS = ("exemption_id, node_code, unit_code, unit_type, weekday, valid_from, valid_to, "
           "reason, declared_by, declared_at, withdrawn, ended_by, ended_at, end_reason")
DECLARE = text(f"""
    INSERT INTO registry.exemptions (node_code, unit_code, unit_type, weekday, valid_from,
        valid_to, reason, declared_by, declared_at)
    VALUES (:node_code, :unit_code, :unit_type, :weekday, :valid_from, :valid_to, :reason,
            :declared_by, :declared_at)
    RETURNING {COLUMNS}
""")
ONE = text(f"SELECT {COLUMNS} FROM registry.exemptions WHERE exemption_id = :id FOR UPDATE")
END = text(f"""
    UPDATE registry.exemptions
    SET valid_to = :valid_to, withdrawn = :withdrawn, ended_by = :by, ended_at = :at,
        end_reason = :reason
    WHERE exemption_id = :id RETURNING {COLUMNS}
""")
# Those that reach into `scope` (at, above or below it) and last into :since or later.
LISTED = text(f"""
    SELECT {COLUMNS} FROM registry.exemptions x
    WHERE (CAST(:scope AS text) = '' OR starts_with(coalesce(x.node_code, ''), :scope)
           OR starts_with(:scope, coalesce(x.node_code, ''))
           OR EXISTS (SELECT 1 FROM registry.placements p WHERE p.unit_code = x.unit_code
                      AND starts_with(p.node_code, :scope)))
      AND (CAST(:since AS date) IS NULL OR x.valid_to IS NULL OR x.valid_to >= :since)
    ORDER BY x.exemption_id
""")
ALL = text(f"SELECT {COLUMNS} FROM registry.exemptions WHERE NOT withdrawn "
           "ORDER BY exemption_id")
THESE = text(f"SELECT {COLUMNS} FROM registry.exemptions WHERE NOT withdrawn "
             "AND exemption_id = ANY(CAST(:ids AS bigint[])) ORDER BY exemption_id")
UNIT_NODES = text("""
    SELECT DISTINCT p.node_code FROM registry.placements p WHERE p.unit_code = :unit
""")
UNIT_TYPE = text("SELECT unit_type FROM registry.units WHERE code = :unit")
NODE = text("SELECT 1 FROM registry.nodes WHERE code = :node")


class CalendarRefused(ValueError):
    """A declaration or ending that cannot be made: `field` names what is wrong."""

    def __init__(self, field: str, code: str, zh: str, en: str) -> None:
        super().__init__(en)
        self.field, self.code, self.zh, self.en = field, code, zh, en


@dataclass(frozen=True, slots=True)
class Declaration:
    """What an operator or administrator asks for; `scope` is the node their credential reaches
    ('' for an administrator)."""

    valid_from: date
    reason: str
    node_code: str | None = None
    unit_code: str | None = None
    unit_type: str | None = None
    weekday: int | None = None
    valid_to: date | None = None


UNIT_SECTOR = text("SELECT sector FROM registry.units WHERE code = :unit")


async def on_line(session: AsyncSession, unit: str | None, unit_type: str | None,
                  sector: str | None) -> bool:
    """A sector operator (`sector`) declares and ends only the calendars of its own line: of one
    unit of its sector, or of a unit type of its sector (the county's kindergartens for 寒假); a
    calendar of every unit of a node is the territorial command centre's. None reaches all."""
    if sector is None:
        return True
    if unit is not None:
        return await session.scalar(UNIT_SECTOR, {"unit": unit}) == sector
    known = unit_types().get(unit_type) if unit_type is not None else None
    return known is not None and known.sector == sector


async def _check(session: AsyncSession, d: Declaration, scope: str, today: date,
                 sector: str | None = None) -> None:
    if not d.reason.strip():
        raise CalendarRefused("reason", "reason_required", "须说明理由", "a reason is required")
    if d.valid_from < today:
        raise CalendarRefused("valid_from", "day_closed", "免报不适用于已过去的日期",
                              f"an exemption starts today ({today}) at the earliest")
    if d.valid_to is not None and d.valid_to < d.valid_from:
        raise CalendarRefused("valid_to", "period_reversed", "结束日期早于开始日期",
                              "valid_to is before valid_from")
    if d.weekday is not None and not 1 <= d.weekday <= 7:
        raise CalendarRefused("weekday", "bad_weekday", "星期应为 1 至 7",
                              "weekday is 1 (Monday) to 7 (Sunday)")
    if d.unit_type is not None and d.unit_type not in unit_types():
        raise CalendarRefused("unit_type", "unknown_unit_type", f"未知单位类型 {d.unit_type}",
                              f"unknown unit type {d.unit_type}")
    if d.node_code is None and d.unit_code is None and (d.unit_type is None or scope):
        raise CalendarRefused("node_code", "scope_required", "须指定区划或单位",
                              "name a node or a unit")
    if d.node_code is not None and (
            await session.execute(NODE, {"node": d.node_code})).first() is None:
        raise CalendarRefused("node_code", "unknown_node", f"未知区划 {d.node_code}",
                              f"unknown node {d.node_code}")
    if d.unit_code is not None and (
            await session.execute(UNIT_TYPE, {"unit": d.unit_code})).first() is None:
        raise CalendarRefused("unit_code", "unknown_unit", f"未知单位 {d.unit_code}",
                              f"unknown unit {d.unit_code}")
    if not await _within(session, d.node_code, d.unit_code, scope):
        raise CalendarRefused("unit_code" if d.node_code is None else "node_code",
                              "outside_area", "超出授权范围", f"outside {scope}")
    if not await on_line(session, d.unit_code, d.unit_type, sector):
        raise CalendarRefused("unit_code" if d.unit_code else "unit_type", "outside_sector",
                              "超出本行业范围", f"outside sector {sector}")


async def _within(session: AsyncSession, node: str | None, unit: str | None, scope: str
                  ) -> bool:
    """An operator scoped to `scope` reaches an exemption of a node in their subtree, or of a
    unit placed only there; an administrator ('') reaches every one."""
    if not scope:
        return True
    if node is not None and not node.startswith(scope):
        return False
    if unit is not None:
        nodes = list((await session.execute(UNIT_NODES, {"unit": unit})).scalars())
        return bool(nodes) and all(n.startswith(scope) for n in nodes)
    return node is not None


def _exemption(row) -> Exemption:
    return Exemption(**row._mapping)


async def declare(session: AsyncSession, d: Declaration, scope: str, by: str, now: datetime,
                  today: date, sector: str | None = None) -> Exemption:
    """Record an exemption declared by `by` within `scope` (and `sector`, a sector operator's);
    the caller commits and recounts."""
    await _check(session, d, scope, today, sector)
    row = (await session.execute(DECLARE, {
        "node_code": d.node_code, "unit_code": d.unit_code, "unit_type": d.unit_type,
        "weekday": d.weekday, "valid_from": d.valid_from, "valid_to": d.valid_to,
        "reason": d.reason.strip(), "declared_by": by, "declared_at": now})).one()
    return _exemption(row)


async def end(session: AsyncSession, exemption_id: int, reason: str, scope: str, by: str,
              now: datetime, today: date, sector: str | None = None) -> Exemption:
    """End an exemption from today on: the days it already covered keep it."""
    row = (await session.execute(ONE, {"id": exemption_id})).first()
    if row is None:
        raise CalendarRefused("exemption_id", "unknown_exemption", "无此免报",
                              f"no exemption {exemption_id}")
    x = _exemption(row)
    if not await _within(session, x.node_code, x.unit_code, scope):
        raise CalendarRefused("exemption_id", "outside_area", "超出授权范围",
                              f"exemption {exemption_id} is outside {scope}")
    if not await on_line(session, x.unit_code, x.unit_type, sector):
        raise CalendarRefused("exemption_id", "outside_sector", "超出本行业范围",
                              f"exemption {exemption_id} is outside sector {sector}")
    if not reason.strip():
        raise CalendarRefused("reason", "reason_required", "须说明理由", "a reason is required")
    if x.withdrawn or (x.valid_to is not None and x.valid_to < today):
        return x  # over already
    last = today - timedelta(days=1)
    withdrawn = x.valid_from > last
    row = (await session.execute(END, {
        "id": exemption_id, "valid_to": x.valid_to if withdrawn else last,
        "withdrawn": withdrawn, "by": by, "at": now, "reason": reason.strip()})).one()
    return _exemption(row)


async def listed(session: AsyncSession, scope: str = "", since: date | None = None
                 ) -> list[Exemption]:
    """The exemptions that concern `scope` ('' for all) and last until `since` or later."""
    rows = await session.execute(LISTED, {"scope": scope, "since": since})
    return [_exemption(r) for r in rows]


async def in_force(session: AsyncSession) -> list[Exemption]:
    """Every exemption not withdrawn (few: a calendar, not a roster)."""
    return [_exemption(r) for r in await session.execute(ALL)]


async def in_force_of(session: AsyncSession, ids: Iterable[int]) -> list[Exemption]:
    """Those of `ids` not withdrawn, as they stand now (an ending since has moved their end)."""
    return [_exemption(r) for r in await session.execute(THESE, {"ids": sorted(set(ids))})]


def announcement(x: Exemption, change: CalendarChange, reason: str, by: str) -> CalendarChanged:
    """The event that tells running services of a calendar just declared or ended."""
    at = x.ended_at if change == "ended" and x.ended_at is not None else x.declared_at
    return CalendarChanged(
        change=change, exemption_id=x.exemption_id, node_code=x.node_code,
        unit_code=x.unit_code, unit_type=x.unit_type, weekday=x.weekday,
        valid_from=x.valid_from, valid_to=x.valid_to, withdrawn=x.withdrawn,
        reason=reason.strip(), actor=by, at=at)
