"""Read side: the alerts of a node's subtree, one alert, and the views operators see."""

import uuid
from collections import defaultdict
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import clock
from services.alerts.models import AlertRow, MissingUnitRow
from services.alerts.schemas import AlertView, MissingUnit
from shared import deadlines
from shared.hierarchy import LEVEL_BY_LENGTH

STATUSES = {"active": ("open", "acknowledged"), "open": ("open",),
            "acknowledged": ("acknowledged",), "closed": ("closed",)}


async def subtree(session: AsyncSession, node: str, status: str, kind: str | None,
                  limit: int) -> list[AlertRow]:
    """Alerts whose node is `node` or below it; open ones first, the nearest deadline first."""
    query = (select(AlertRow).where(AlertRow.node.startswith(node, autoescape=True),
                                    AlertRow.status.in_(STATUSES[status]))
             .order_by(case((AlertRow.status == "open", 0), else_=1), AlertRow.deadline)
             .limit(limit))
    if kind:
        query = query.where(AlertRow.kind == kind)
    return list(await session.scalars(query))


async def one(session: AsyncSession, alert_id: uuid.UUID) -> AlertRow | None:
    return await session.get(AlertRow, alert_id)


async def views(session: AsyncSession, rows: list[AlertRow], now: datetime) -> list[AlertView]:
    missing: defaultdict[uuid.UUID, list[MissingUnit]] = defaultdict(list)
    ids = [r.alert_id for r in rows if r.kind == "missing_report"]
    if ids:
        for m in await session.scalars(select(MissingUnitRow).where(
                MissingUnitRow.alert_id.in_(ids)).order_by(MissingUnitRow.unit)):
            missing[m.alert_id].append(MissingUnit(unit=m.unit, reported_at=m.reported_at))
    return [view(r, now, missing.get(r.alert_id)) for r in rows]


def view(row: AlertRow, now: datetime, missing: list[MissingUnit] | None = None) -> AlertView:
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


async def counts_by_level(session: AsyncSession, now: datetime) -> dict[str, tuple[int, int]]:
    """Per responsible level: alerts not closed, and those of them open past their deadline."""
    rows = await session.execute(
        select(func.length(AlertRow.responsible), func.count(),
               func.count().filter((AlertRow.status == "open") & (AlertRow.deadline < now)))
        .where(AlertRow.status != "closed").group_by(func.length(AlertRow.responsible)))
    return {LEVEL_BY_LENGTH[length].name.lower(): (active, overdue)
            for length, active, overdue in rows}
