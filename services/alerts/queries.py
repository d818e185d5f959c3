"""Read side: the alerts of a node (or its subtree) page by page, one alert, counts per kind
and level, and the views operators see. The one SQL form of "past its deadline" lives here too,
beside the views that use `deadlines.is_past`, and the clock's claims use it."""

import base64
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Uuid, case, exists, func, literal, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import clock
from services.alerts.machine import AlertState
from services.alerts.models import TZ, AlertRow, MissingUnitRow, StockUnitRow
from services.alerts.schemas import AlertView, MissingUnit
from shared import deadlines
from shared.hierarchy import LEVEL_BY_LENGTH
from shared.registry.models import Unit

STATUSES = {"active": ("open", "acknowledged"), "open": ("open",),
            "acknowledged": ("acknowledged",), "closed": ("closed",)}


# Open alerts first, then the nearest deadline; the alert id makes the order total, so a page
# ends at a position the next one starts after.
RANK = case((AlertRow.status == "open", 0), else_=1)


def is_past_sql(deadline: ColumnElement[datetime], moment: datetime | ColumnElement[datetime]
                ) -> ColumnElement[bool]:
    """`deadlines.is_past` in SQL: `moment` is after `deadline` (at the deadline is in time)."""
    return deadline < moment


def _concerns(unit_match: Callable[[Any], ColumnElement[bool]]) -> ColumnElement[bool]:
    """The alert concerns a unit that `unit_match` accepts: its own unit (a case, an outbreak),
    a unit it lists as missing, or a unit below a stock level on it."""
    return or_(unit_match(AlertRow.unit),
               exists().where(MissingUnitRow.alert_id == AlertRow.alert_id,
                              unit_match(MissingUnitRow.unit)),
               exists().where(StockUnitRow.alert_id == AlertRow.alert_id,
                              unit_match(StockUnitRow.unit)))


def of_sector(sector: str) -> ColumnElement[bool]:
    """The alerts a sector operator sees: those concerning at least one unit of its sector
    (docs/architecture.md, "The sector line")."""
    units = select(Unit.code).where(Unit.sector == sector)
    return _concerns(lambda column: column.in_(units))


def beyond_sector(sector: str) -> ColumnElement[bool]:
    """The alert concerns a unit of another sector too: a sector operator may see it (for its
    own units) but not acknowledge or close it for the territorial command centre."""
    units = select(Unit.code).where(Unit.sector != sector)
    return _concerns(lambda column: column.in_(units))


async def sector_allows(session: AsyncSession, alert_id: uuid.UUID, sector: str | None,
                        acting: bool) -> bool:
    """Whether an operator of `sector` (None: territorial) may see the alert, or act on it."""
    if sector is None:
        return True
    test = of_sector(sector) & ~beyond_sector(sector) if acting else of_sector(sector)
    return bool(await session.scalar(select(test).where(AlertRow.alert_id == alert_id)))


async def units_of_sector(session: AsyncSession, units: set[str], sector: str) -> set[str]:
    return set(await session.scalars(select(Unit.code).where(
        Unit.code.in_(units), Unit.sector == sector)))


@dataclass(frozen=True, slots=True)
class Selection:
    """Which alerts: of `node` exactly or of its whole subtree, by status, kind and day; a
    sector operator's only those concerning its sector."""

    node: str
    exact: bool = False
    status: str = "active"
    kind: str | None = None
    day: date | None = None
    sector: str | None = None

    def where(self) -> list[ColumnElement[bool]]:
        node = (AlertRow.node == self.node if self.exact
                else AlertRow.node.startswith(self.node, autoescape=True))
        out = [node, AlertRow.status.in_(STATUSES[self.status])]
        if self.sector:
            out.append(of_sector(self.sector))
        if self.kind:
            out.append(AlertRow.kind == self.kind)
        if self.day:
            out.append(AlertRow.day == self.day)
        return out


@dataclass(frozen=True, slots=True)
class Position:
    """Where a page ended, in the list's order: the cursor of the next page."""

    rank: int
    deadline: datetime
    alert_id: uuid.UUID

    @classmethod
    def of(cls, row: AlertRow) -> "Position":
        return cls(0 if row.status == "open" else 1, row.deadline, row.alert_id)

    def cursor(self) -> str:
        raw = json.dumps([self.rank, self.deadline.isoformat(), str(self.alert_id)])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def parse(cls, cursor: str) -> "Position":
        """ValueError if `cursor` is not one that `cursor()` made."""
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            rank, deadline, alert_id = json.loads(raw)
            at = datetime.fromisoformat(deadline)
            if type(rank) is not int or rank not in (0, 1) or at.tzinfo is None:
                raise ValueError(cursor)
            return cls(rank, at.astimezone(UTC), uuid.UUID(alert_id))
        except (TypeError, OverflowError) as exc:  # decoding errors are ValueErrors already
            raise ValueError(cursor) from exc


async def page(session: AsyncSession, selection: Selection, limit: int,
               after: Position | None = None) -> tuple[list[AlertRow], Position | None]:
    """Up to `limit` alerts after `after`, and the position to continue from (None at the
    end). Alerts opened meanwhile are listed once, on the page their place falls on."""
    query = (select(AlertRow).where(*selection.where())
             .order_by(RANK, AlertRow.deadline, AlertRow.alert_id).limit(limit + 1))
    if after is not None:
        query = query.where(tuple_(RANK, AlertRow.deadline, AlertRow.alert_id) > tuple_(
            literal(after.rank), literal(after.deadline, TZ), literal(after.alert_id, Uuid)))
    rows = list(await session.scalars(query))
    if len(rows) > limit:
        return rows[:limit], Position.of(rows[limit - 1])
    return rows, None


async def one(session: AsyncSession, alert_id: uuid.UUID) -> AlertRow | None:
    return await session.get(AlertRow, alert_id)


async def nodes_seen(session: AsyncSession, alert_ids: Sequence[uuid.UUID], sector: str | None
                     ) -> dict[uuid.UUID, str]:
    """The node of each alert asked for that exists and that an operator of `sector` (None:
    territorial) sees."""
    query = select(AlertRow.alert_id, AlertRow.node).where(AlertRow.alert_id.in_(alert_ids))
    if sector is not None:
        query = query.where(of_sector(sector))
    return dict((await session.execute(query)).tuples().all())


async def views(session: AsyncSession, rows: Sequence[AlertRow | AlertState], now: datetime,
                sector: str | None = None) -> list[AlertView]:
    """The alerts as operators see them; a sector operator sees, on an alert of several
    sectors, only its own sector's units listed."""
    missing: defaultdict[uuid.UUID, list[MissingUnit]] = defaultdict(list)
    ids = [r.alert_id for r in rows if r.kind == "missing_report"]
    if ids:
        for m in await session.scalars(select(MissingUnitRow).where(
                MissingUnitRow.alert_id.in_(ids)).order_by(MissingUnitRow.unit)):
            missing[m.alert_id].append(MissingUnit(unit=m.unit, reported_at=m.reported_at,
                                                     exempted_by=m.exempted_by))
    out = [view(r, now, missing.get(r.alert_id)) for r in rows]
    if sector is not None:
        listed = {m.unit for ms in missing.values() for m in ms} | {
            u["unit"] for v in out for u in v.details.get("units", []) if isinstance(u, dict)}
        mine = await units_of_sector(session, listed, sector) if listed else set()
        for v in out:
            if v.missing_units is not None:
                v.missing_units = [m for m in v.missing_units if m.unit in mine]
            if isinstance(v.details.get("units"), list):
                v.details = {**v.details, "units": [
                    u for u in v.details["units"] if isinstance(u, dict) and u.get("unit") in mine]}
    return out


def view(row: AlertRow | AlertState, now: datetime, missing: list[MissingUnit] | None = None
         ) -> AlertView:
    running = row.status == "open"
    return AlertView(
        alert_id=row.alert_id, kind=row.kind, status=row.status,  # type: ignore[arg-type]
        node=row.node, unit=row.unit, unit_type=row.unit_type, case_id=row.case_id,
        case_kind=row.case_kind, recipients=list(row.recipients),
        level=clock.level_name(row.responsible), responsible=row.responsible, day=row.day,
        started_at=row.started_at, deadline=row.deadline,
        seconds_left=deadlines.seconds_left(row.deadline, now) if running else None,
        overdue=running and deadlines.is_past(row.deadline, now), late=row.late,
        escalations=max(0, row.stage - 1), opened_at=row.opened_at,
        acknowledged_at=row.acknowledged_at, acknowledged_by=row.acknowledged_by,
        closed_at=row.closed_at, closed_by=row.closed_by, outcome=row.outcome, note=row.note,
        details=row.details, missing_units=missing)


@dataclass(frozen=True, slots=True)
class Count:
    kind: str
    level: str  # of the node now responsible
    alerts: int
    overdue: int  # open and past their deadline


async def counts(session: AsyncSession, selection: Selection, now: datetime) -> list[Count]:
    """How many alerts of the selection there are, per kind and responsible level."""
    length = func.length(AlertRow.responsible)
    overdue = (AlertRow.status == "open") & is_past_sql(AlertRow.deadline, now)
    rows = await session.execute(
        select(AlertRow.kind, length, func.count(), func.count().filter(overdue))
        .where(*selection.where()).group_by(AlertRow.kind, length)
        .order_by(AlertRow.kind, length))
    return [Count(kind, LEVEL_BY_LENGTH[n].name.lower(), alerts, late)
            for kind, n, alerts, late in rows]


async def counts_by_level(session: AsyncSession, now: datetime) -> dict[str, tuple[int, int]]:
    """Per responsible level: alerts not closed, and those of them open past their deadline."""
    out: defaultdict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for c in await counts(session, Selection(node=""), now):
        active, overdue = out[c.level]
        out[c.level] = (active + c.alerts, overdue + c.overdue)
    return dict(out)


async def intake(session: AsyncSession) -> dict[str, int]:
    """What the service has taken in (case events; unit-days holding a report), and how many
    alerts are not closed."""
    cases = await session.scalar(text("SELECT count(*) FROM alerts.applied_events"))
    reports = await session.scalar(text(
        "SELECT count(*) FROM alerts.unit_days WHERE report_revision IS NOT NULL"))
    active = await session.scalar(select(func.count()).select_from(AlertRow)
                                  .where(AlertRow.status != "closed"))
    return {"cases_applied": cases or 0, "reports_applied": reports or 0,
            "alerts_active": active or 0}


CHANNEL_NAMES = {"sms": "短信", "email": "邮件", "wecom": "企业微信", "dingtalk": "钉钉",
                 "none": "无联系方式"}
OUTCOME_NAMES = {"sent": "已发送", "delivered": "已送达", "failed": "发送失败"}


def told_text(channel: str, outcome: str, at: datetime, person: str, reason: str | None,
              zone: ZoneInfo) -> str:
    """One delivery outcome as the alert's history says it: "短信已送达 13:30 张某"."""
    said = (f"{CHANNEL_NAMES.get(channel, channel)}{OUTCOME_NAMES.get(outcome, outcome)} "
            f"{at.astimezone(zone):%H:%M} {person}")
    return f"{said}({reason})" if outcome == "failed" and reason else said
