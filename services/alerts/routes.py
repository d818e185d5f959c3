"""Alerts' HTTP edge for operators on duty: the alerts of a node or its subtree with the time
left on each clock (page by page), their counts, acknowledge, close with an outcome, and an
alert's history. An operator's bearer token is scoped to a node; they see and act only inside
its subtree. Refusals come from the one catalogue (`shared.refusals`)."""

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import flags, queries, repository
from services.alerts.machine import AlertState, WrongState
from services.alerts.models import AlertRow
from services.alerts.schemas import (
    Acknowledge,
    AlertCounts,
    AlertView,
    Change,
    Close,
    Day,
    Dismiss,
    FlagCounts,
    FlagView,
    KindLevelCount,
    Problem,
    Told,
)
from services.alerts.service import AlertsContext
from shared.auth import Principal
from shared.contracts import AlertKind
from shared.http_auth import Operator, area, forbidden
from shared.periods import ending
from shared.refusals import refuse

router = APIRouter(prefix="/v1", tags=["alerts"])
PROBLEMS = {401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem},
            409: {"model": Problem}, 422: {"model": Problem}}
NEXT_CURSOR = "Next-Cursor"
PAGED = {200: {"headers": {NEXT_CURSOR: {
    "description": "present when more alerts follow: pass it as `cursor` for the next page",
    "schema": {"type": "string"}}}}}
MAX_SEEN = 100  # alerts per question: notify's batch of deliveries asks at most as many
STATUS_NAMES = {"open": ("待处置", "open"), "acknowledged": ("已确认", "acknowledged"),
                "closed": ("已关闭", "closed")}

Status = Literal["active", "open", "acknowledged", "closed"]
Kind = AlertKind  # every kind the contract knows, one list
Scope = Annotated[Literal["subtree", "exact"], Query(
    description="`subtree`: the node and every node below it; `exact`: the node alone")]


def context(request: Request) -> AlertsContext:
    return request.app.state.alerts


Ctx = Annotated[AlertsContext, Depends(context)]


async def _visible(session: AsyncSession, alert_id: uuid.UUID, who: Principal) -> AlertRow:
    row = await queries.one(session, alert_id)
    if row is None:
        raise refuse("unknown_alert", "alert_id", alert_id=alert_id)
    if not who.may_see(row.node):
        raise forbidden(row.node, "node")
    if not await queries.sector_allows(session, alert_id, who.sector, acting=False):
        raise refuse("outside_sector", "alert_id", what=alert_id, sector=who.sector)
    return row


@router.get("/alerts", response_model=list[AlertView], responses={**PROBLEMS, **PAGED})
async def list_alerts(ctx: Ctx, who: Operator, response: Response, node: str | None = None,
                      scope: Scope = "subtree", status: Status = "active",
                      kind: Kind | None = None,
                      day: Annotated[Day | None, Query(
                          description="the alerts of one day (a case's found day, a "
                                      "cutoff's day)")] = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 200,
                      cursor: str | None = None) -> list[AlertView]:
    """The alerts of a node's subtree, or of the node alone (the operator's own node by
    default): by default those not closed, open ones first, nearest deadline first, each with
    the seconds left. When more follow, the `Next-Cursor` header carries the cursor of the next
    page; each alert is listed once across the pages, even as new ones open."""
    selection = queries.Selection(area(who, node), scope == "exact", status, kind, day,
                                  who.sector)
    try:
        after = queries.Position.parse(cursor) if cursor else None
    except ValueError:
        raise refuse("bad_cursor", "cursor") from None
    async with ctx.sessions() as session:
        rows, following = await queries.page(session, selection, limit, after)
        views = await queries.views(session, rows, ctx.clock(), who.sector)
    if following is not None:
        response.headers[NEXT_CURSOR] = following.cursor()
    return views


@router.get("/alerts/counts", response_model=AlertCounts, responses=PROBLEMS)
async def count_alerts(ctx: Ctx, who: Operator, node: str | None = None,
                       scope: Scope = "subtree", status: Status = "active") -> AlertCounts:
    """How many alerts the list with the same filters holds: in all, per kind, per level now
    responsible, and how many of them are open past their deadline."""
    selection = queries.Selection(area(who, node), scope == "exact", status,
                                  sector=who.sector)
    async with ctx.sessions() as session:
        counts = await queries.counts(session, selection, ctx.clock())
    by_kind: Counter[str] = Counter()
    by_level: Counter[str] = Counter()
    for c in counts:
        by_kind[c.kind] += c.alerts
        by_level[c.level] += c.alerts
    return AlertCounts(
        node=selection.node, scope=scope, status=status,
        total=sum(c.alerts for c in counts), overdue=sum(c.overdue for c in counts),
        by_kind=dict(by_kind), by_level=dict(by_level),
        by_kind_and_level=[KindLevelCount(kind=c.kind, level=c.level,  # type: ignore[arg-type]
                                          alerts=c.alerts, overdue=c.overdue) for c in counts])


@router.get("/alerts/seen", response_model=list[uuid.UUID], responses=PROBLEMS)
async def seen_alerts(ctx: Ctx, who: Operator, alert: Annotated[
        list[uuid.UUID], Query(min_length=1, max_length=MAX_SEEN)]) -> list[uuid.UUID]:
    """Which of the alerts asked for the operator sees: inside its area and, for a sector
    operator, concerning a unit of its sector. Notify asks it, with the operator's own token,
    before it shows a sector operator who was told (it keeps no alert's units)."""
    async with ctx.sessions() as session:
        nodes = await queries.nodes_seen(session, list(dict.fromkeys(alert)), who.sector)
    return [alert_id for alert_id, node in nodes.items() if who.may_see(node)]


@router.get("/alerts/{alert_id}", response_model=AlertView, responses=PROBLEMS)
async def get_alert(alert_id: uuid.UUID, ctx: Ctx, who: Operator) -> AlertView:
    """The alert, with who was told of it (`told`): each notification's outcome as notify
    reported it, "短信已送达 13:30 张某"."""
    zone = ctx.settings.zone
    async with ctx.sessions() as session:
        row = await _visible(session, alert_id, who)
        view = (await queries.views(session, [row], ctx.clock(), who.sector))[0]
        view.told = [Told(step=t.step, channel=t.channel, outcome=t.outcome,  # type: ignore[arg-type]
                          at=t.at, person=t.person, role=t.role, reason=t.reason,
                          text=queries.told_text(t.channel, t.outcome, t.at, t.person,
                                                 t.reason, zone))
                     for t in await repository.told(session, alert_id)]
    return view


@router.get("/alerts/{alert_id}/history", response_model=list[Change], responses=PROBLEMS)
async def alert_history(alert_id: uuid.UUID, ctx: Ctx, who: Operator) -> list[Change]:
    """Every change of the alert: opened, warned, escalated, acknowledged, closed; who, when,
    why."""
    async with ctx.sessions() as session:
        await _visible(session, alert_id, who)
        return [Change(seq=t.seq, change=t.change, at=t.at, actor=t.actor, reason=t.reason,
                       details=t.details) for t in await repository.history(session, alert_id)]


Action = Callable[[AsyncSession, datetime], Awaitable[AlertState]]


async def _act(ctx: AlertsContext, alert_id: uuid.UUID, doing: tuple[str, str],
               action: Action, who: Principal) -> AlertView:
    """Run a change of the lifecycle in one transaction and answer with the alert after it."""
    now = ctx.clock()
    try:
        async with ctx.sessions() as session, session.begin():
            state = await action(session, now)
            view = (await queries.views(session, [state], now, who.sector))[0]
    except repository.AlertNotFound:
        raise refuse("unknown_alert", "alert_id", alert_id=alert_id) from None
    except repository.OutsideArea as exc:
        raise forbidden(str(exc), "node") from None
    except repository.OutsideSector:
        raise refuse("outside_sector", "alert_id", what=alert_id, sector=who.sector) from None
    except WrongState as exc:
        raise refuse("wrong_state", "status", status=STATUS_NAMES[exc.status],
                     action=doing) from None
    ctx.relay.wake()
    return view


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertView, responses=PROBLEMS)
async def acknowledge(alert_id: uuid.UUID, ctx: Ctx, who: Operator,
                      body: Acknowledge | None = None) -> AlertView:
    """Take the alert: its clock stops, and nothing escalates further."""
    reason = body.reason if body else None
    return await _act(ctx, alert_id, ("确认", "acknowledged"), lambda session, now:
                      repository.acknowledge(session, alert_id, who, reason, now, ctx.rules),
                      who)


@router.post("/alerts/{alert_id}/close", response_model=AlertView, responses=PROBLEMS)
async def close(alert_id: uuid.UUID, body: Close, ctx: Ctx, who: Operator) -> AlertView:
    """Record what was done and close the alert (an open one may be closed directly)."""
    return await _act(ctx, alert_id, ("关闭", "closed"), lambda session, now: repository.close(
        session, alert_id, who, body.outcome, body.note, now, ctx.rules), who)


# ---- 疑似瞒报 flags: listed, counted and dismissed with a reason (services/alerts/flags.py) ----

FlagStatus = Literal["open", "dismissed", "all"]
FlagKind = Literal["zero_with_case", "identical_values"]
FLAG_WINDOW_DAYS = 7


def _flag_selection(ctx: AlertsContext, who: Principal, node: str | None, start: Day | None,
                    end: Day | None, status: str = "all", kind: str | None = None
                    ) -> flags.Selection:
    end = end or ctx.today()
    start = start or ending(end, FLAG_WINDOW_DAYS)
    if start > end:
        raise refuse("bad_range", "start", start=start, end=end)
    return flags.Selection(area(who, node), start, end, status, kind, who.sector)


def _flag_view(row) -> FlagView:
    return FlagView.model_validate(row, from_attributes=True)


@router.get("/flags", response_model=list[FlagView], responses=PROBLEMS)
async def list_flags(ctx: Ctx, who: Operator, node: str | None = None,
                     start: Day | None = None, end: Day | None = None,
                     status: FlagStatus = "all", kind: FlagKind | None = None,
                     limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[FlagView]:
    """The flags (疑似瞒报) of a node's area over a range of days (the 7 days ending today by
    default), newest day first: a zero report on a day the unit sent a case, non-zero values
    identical for N days. They never change the figures."""
    selection = _flag_selection(ctx, who, node, start, end, status, kind)
    async with ctx.sessions() as session:
        return [_flag_view(row) for row in await flags.listed(session, selection, limit)]


@router.get("/flags/counts", response_model=FlagCounts, responses=PROBLEMS)
async def count_flags(ctx: Ctx, who: Operator, node: str | None = None,
                      start: Day | None = None, end: Day | None = None) -> FlagCounts:
    """How many flags: in all, open, per kind and status, and the open ones per unit."""
    selection = _flag_selection(ctx, who, node, start, end)
    async with ctx.sessions() as session:
        counted = await flags.counted(session, selection)
    return FlagCounts(node=selection.node, start=selection.start, end=selection.end, **counted)


@router.post("/flags/{flag_id}/dismiss", response_model=FlagView, responses=PROBLEMS)
async def dismiss_flag(flag_id: uuid.UUID, body: Dismiss, ctx: Ctx, who: Operator) -> FlagView:
    """Dismiss a flag with a reason (核实无误): who, when and why are kept for good, and the
    flag stays listed as dismissed."""
    try:
        async with ctx.sessions() as session, session.begin():
            row = await flags.locked(session, flag_id)
            if not who.may_see(row.node):
                raise forbidden(row.node, "node")
            if not who.covers(row.sector):
                raise refuse("outside_sector", "flag_id", what=row.unit, sector=who.sector)
            return _flag_view(await flags.dismiss(session, row, who.holder, body.reason.strip(),
                                                  ctx.clock()))
    except flags.FlagNotFound:
        raise refuse("unknown_flag", "flag_id", flag_id=flag_id) from None
    except flags.AlreadyDismissed:
        raise refuse("flag_dismissed", "flag_id", flag_id=flag_id) from None
