"""Signoff's HTTP edge (逐级审核上报). Operators only, each inside their node's subtree:
review a node's reports of a day and send one back (退回) with a reason; confirm their own
node's day (确认上报); read a node's day with its children's confirmations; the audit trail."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from services.signoff import desk, store
from services.signoff.schemas import (
    AuditEntry,
    ChangeView,
    ConfirmationView,
    ConfirmIn,
    NodeDayView,
    ReportView,
    ReviewView,
    SendBackIn,
    SendbackView,
    SignoffView,
    UnitReviewView,
)
from services.signoff.service import SignoffContext
from shared.auth import Principal
from shared.deadlines import local_day
from shared.http_auth import Authenticated, Operator, area
from shared.periods import IsoDate
from shared.refusals import refuse

router = APIRouter(prefix="/v1", tags=["signoff"])
LABELS = {"correction": "更正 after confirmation", "late_report": "迟报 after confirmation"}


def context(request: Request) -> SignoffContext:
    return request.app.state.signoff


Ctx = Annotated[SignoffContext, Depends(context)]


def _day(ctx: SignoffContext, day: date | None) -> date:
    return day or local_day(ctx.clock(), ctx.settings.zone)


def sendback_view(s: store.Sendback) -> SendbackView:
    return SendbackView(sendback_id=s.sendback_id, unit=s.unit, day=s.day, node=s.node,
                        revision=s.revision, reason=s.reason, sent_by=s.sent_by,
                        sent_at=s.sent_at, status="open" if s.cleared_at is None else "cleared",
                        cleared_at=s.cleared_at, cleared_revision=s.cleared_revision,
                        cleared_by=s.cleared_by, cleared_reason=s.cleared_reason)


def node_day_view(n: desk.NodeDay) -> NodeDayView:
    c = n.confirmation
    return NodeDayView(
        node=n.node, name=n.name, level=n.level, confirms=n.confirms, due_at=n.due_at,
        status=n.status, live=n.live, reported=n.reported,
        confirmation=None if c is None or n.confirmation_id is None else ConfirmationView(
            confirmation_id=n.confirmation_id, version=c.version, figures=c.figures,
            reported=len(c.units), confirmed_at=c.confirmed_at, confirmed_by=c.confirmed_by,
            reopened_at=c.reopened_at),
        changed_after_confirmation=bool(n.changes), difference=n.difference,
        changes=[ChangeView(unit=ch.unit, revision=ch.revision,
                            confirmed_revision=ch.confirmed_revision, kind=ch.kind,  # type: ignore[arg-type]
                            label=LABELS[ch.kind], reason=ch.reason, actor=ch.actor, at=ch.at)
                 for ch in n.changes],
        open_sendbacks=n.open_sendbacks)


def _on_line(ctx: SignoffContext, who: Principal, unit: str) -> bool:
    """A sector operator reviews its sector's units only (docs/architecture.md, "The sector
    line"); a territorial one every unit."""
    info = ctx.reference.units.get(unit)
    return who.covers(info.sector if info else None)


@router.post("/sendbacks", status_code=201, response_model=SendbackView)
async def send_back(body: SendBackIn, ctx: Ctx, who: Operator) -> SendbackView:
    """退回: send a unit's report of the day back with a reason. The unit sees the reason (its
    form in the console; `GET /v1/units/{unit}/sendbacks` at ingest) and corrects; the
    correction clears it. Both are in the audit trail."""
    async with ctx.sessions() as session, session.begin():
        made, _ = await desk.send_back(session, body.unit, body.day, body.reason, who,
                                       ctx.reference, ctx.clock())
    ctx.relay.wake()
    return sendback_view(made)


@router.get("/sendbacks", response_model=list[SendbackView])
async def list_sendbacks(ctx: Ctx, who: Operator, node: str | None = None,
                         day: IsoDate | None = None, open: bool = False) -> list[SendbackView]:
    """The send-backs below a node on a day (`open=true`: those not corrected yet)."""
    node = area(who, node)
    async with ctx.sessions() as session:
        found = await store.sendbacks_below(session, node, _day(ctx, day), only_open=open)
    return [sendback_view(s) for s in found if _on_line(ctx, who, s.unit)]


@router.get("/units/{unit}/sendbacks", response_model=list[SendbackView])
async def unit_sendbacks(unit: str, ctx: Ctx, who: Authenticated) -> list[SendbackView]:
    """A unit's send-backs, newest day first: its own token, or an operator above it."""
    info = ctx.reference.units.get(unit)
    if info is None:
        raise refuse("unknown_unit", "unit", unit=unit)
    today = _day(ctx, None)
    if not who.may_submit_for(unit, info.node_on(today), info.sector):
        raise refuse("outside_area", "unit", what=unit)
    async with ctx.sessions() as session:
        return [sendback_view(s) for s in await store.sendbacks_of_unit(session, unit)]


@router.post("/confirmations", status_code=201, response_model=SignoffView)
async def confirm(body: ConfirmIn, ctx: Ctx, who: Operator, response: Response) -> SignoffView:
    """确认上报: the node's own operator freezes the day's figures (201); again while nothing
    changed, 200 with the same confirmation. Refused while a report below is sent back."""
    async with ctx.sessions() as session, session.begin():
        done = await desk.confirm(session, body.node, body.day, who, ctx.rules, ctx.kinds,
                                  ctx.clock(), ctx.reference)
    if done.created:
        ctx.relay.wake()
    else:
        response.status_code = 200
    return await _signoff(ctx, body.node, body.day)


async def _signoff(ctx: SignoffContext, node: str, day: date) -> SignoffView:
    async with ctx.sessions() as session:
        mine, children = await desk.node_days(session, node, day, ctx.rules, ctx.kinds,
                                              ctx.reference, ctx.settings.zone)
    return SignoffView(**node_day_view(mine).model_dump(), day=day,
                       children=[node_day_view(c) for c in children])


@router.get("/signoff/{node}", response_model=SignoffView)
async def signoff(node: str, ctx: Ctx, who: Operator, day: IsoDate | None = None) -> SignoffView:
    """A node's day and each child's: confirmed (the frozen figures, who, when), reopened
    (`changed_after_confirmation`, the changes, live minus confirmed), unconfirmed (live
    figures only) or not required at that level."""
    node = area(who, node)
    if node not in ctx.reference.nodes:
        raise refuse("unknown_node", "node", node=node)
    return await _signoff(ctx, node, _day(ctx, day))


@router.get("/review/{node}", response_model=ReviewView)
async def review_units(node: str, ctx: Ctx, who: Operator, day: IsoDate | None = None
                       ) -> ReviewView:
    """Every unit below the node with its latest report of the day (None: not reported) and its
    open send-back: what a town reviews."""
    node = area(who, node)
    day = _day(ctx, day)
    async with ctx.sessions() as session:
        found = await desk.units_to_review(session, node, day, ctx.reference)
    return ReviewView(node=node, day=day, units=[UnitReviewView(
        unit=u.unit, name=u.name, unit_type=u.unit_type, node=u.node,
        report=None if u.report is None else ReportView(
            revision=u.report.revision, values=u.report.values, zero=u.report.zero,
            late=u.report.late, submitted_at=u.report.submitted_at,
            reporter=u.report.reporter, reason=u.report.reason, note=u.report.note),
        sendback=sendback_view(u.sendback) if u.sendback else None, sendbacks=u.sendbacks)
        for u in found if _on_line(ctx, who, u.unit)])


@router.get("/audit", response_model=list[AuditEntry])
async def audit(ctx: Ctx, who: Operator, node: str | None = None, day: IsoDate | None = None,
                limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> list[AuditEntry]:
    """Every send-back, correction that cleared one, confirmation and reopening below a node on
    a day, in order, with who, when and why. A sector operator's: the entries of its sector's
    units only (a confirmation, the territorial line's, holds every sector's figures)."""
    node = area(who, node)
    units = (None if who.sector is None else
             [code for code, info in ctx.reference.units.items() if who.covers(info.sector)])
    async with ctx.sessions() as session:
        return [AuditEntry(**row) for row in await store.audit(session, node, _day(ctx, day),
                                                               limit, units)]
