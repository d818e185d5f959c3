"""Notify's HTTP edge for operators: the staff records and rosters of their subtree (list,
import a file, put a day's roster) and who was told of an alert. An operator's token is scoped
to a node; they see and edit only inside its subtree."""

import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request

from services.notify import staffing, store
from services.notify.schemas import (
    ContactView,
    DeliveryView,
    Imported,
    PersonView,
    RosterIn,
    RosterView,
    ShiftView,
)
from services.notify.service import NotifyContext
from shared.errors import FieldError
from shared.http_auth import Operator, Territorial, area
from shared.http_problems import http_error
from shared.refusals import Refused, refuse
from shared.registry.importer import Problem

router = APIRouter(prefix="/v1", tags=["notify"])
MAX_FILE_BYTES = 5_000_000
MAX_ALERTS = 100  # alerts per batch read of deliveries: the URL stays under 5 KB


def context(request: Request) -> NotifyContext:
    return request.app.state.notify


Ctx = Annotated[NotifyContext, Depends(context)]


def _refused(problems: list[Problem]) -> Refused:
    """An import's problems as one refusal: each names the line (`[3].phone`) and field."""
    return Refused(422, [FieldError(f"[{p.line}].{p.field}" if p.line else p.field or "file",
                                    p.code, p.message_zh, p.message_en) for p in problems])


@router.get("/people", response_model=list[PersonView])
async def list_people(ctx: Ctx, who: Operator, node: str | None = None) -> list[PersonView]:
    """The staff of a node's subtree (the operator's own node by default)."""
    async with ctx.sessions() as session:
        found = await store.people_within(session, area(who, node))
    return [PersonView(code=p.code, name=p.name, node=p.node, phone=p.phone, email=p.email,
                       chat=p.chat_kind) for p in found]  # type: ignore[arg-type]


@router.get("/contacts", response_model=list[ContactView])
async def list_contacts(ctx: Ctx, who: Operator, node: str | None = None) -> list[ContactView]:
    """Who is in charge of, and reports for, each unit and node of a subtree."""
    async with ctx.sessions() as session:
        found = await store.contacts_within(session, area(who, node))
    return [ContactView(scope=s, role=r, node=n, person=p)  # type: ignore[arg-type]
            for s, r, n, p in found]


def _roster(node: str, day: date, shifts: list) -> RosterView:
    return RosterView(node=node, day=day, shifts=[
        ShiftView(person=s.person, role=s.role, starts=s.starts, ends=s.ends) for s in shifts])


@router.get("/rosters/{node}/{day}", response_model=RosterView)
async def get_roster(ctx: Ctx, who: Operator, node: str, day: date) -> RosterView:
    """A node's duty roster for a day: who is on duty and who leads, and when."""
    async with ctx.sessions() as session:
        return _roster(area(who, node), day, await store.roster(session, node, day))


@router.put("/rosters/{node}/{day}", response_model=RosterView)
async def put_roster(ctx: Ctx, who: Territorial, node: str, day: date,
                     roster: RosterIn) -> RosterView:
    """Replace a node's roster for a day; the next alert change is told to the new one."""
    area(who, node)
    async with ctx.sessions() as session, session.begin():
        shifts, problems = await staffing.put_roster_day(
            session, node, day, [s.model_dump() for s in roster.shifts], who.scope,
            ctx.today())
    if problems:
        raise _refused(problems)
    return _roster(node, day, shifts)


@router.post("/staff/{kind}", response_model=Imported, openapi_extra={"requestBody": {
    "required": True, "content": {"text/csv": {"schema": {"type": "string"}},
                                  "application/json": {"schema": {"type": "array"}}}}})
async def import_staff(ctx: Ctx, who: Territorial, request: Request,
                       kind: Literal["people", "contacts", "rosters"]) -> Imported:
    """Import a CSV file (Content-Type text/csv) or a JSON array of people, contacts or
    roster shifts, every row inside the operator's area. All or nothing: any problem refuses
    the whole file, naming each line and field."""
    data = await request.body()
    if len(data) > MAX_FILE_BYTES:
        status, error = http_error(413, None)
        raise Refused(status, [error])
    json_format = "json" in request.headers.get("content-type", "")
    async with ctx.sessions() as session, session.begin():
        written, problems = await staffing.import_staff(
            session, kind, data, kind, json_format, who.scope, ctx.clock(), ctx.today())
    if problems:
        raise _refused(problems)
    return Imported(kind=kind, written=written)


def _view(row: dict) -> DeliveryView:
    return DeliveryView(**{**row, "next_attempt_at": row["next_attempt_at"]
                           if row["status"] == "pending" else None})


@router.get("/deliveries", response_model=dict[uuid.UUID, list[DeliveryView]])
async def many_deliveries(ctx: Ctx, who: Operator, alert: Annotated[
        list[uuid.UUID], Query(min_length=1, max_length=MAX_ALERTS)]
                          ) -> dict[uuid.UUID, list[DeliveryView]]:
    """`/alerts/{alert_id}/deliveries` for many alerts in one call (a page of the console): an
    alert notify has not heard of yet has none; one outside the operator's area is refused."""
    alerts = list(dict.fromkeys(alert))
    async with ctx.sessions() as session:
        nodes = await store.alert_nodes(session, alerts)
        if outside := [a for a, node in nodes.items() if not who.may_see(node)]:
            raise refuse("outside_area", "alert", what=outside[0])
        found = await store.deliveries_of_many(session, alerts)
    return {alert_id: [_view(row) for row in rows] for alert_id, rows in found.items()}


@router.get("/alerts/{alert_id}/deliveries", response_model=list[DeliveryView])
async def alert_deliveries(ctx: Ctx, who: Operator, alert_id: uuid.UUID) -> list[DeliveryView]:
    """Who was told of an alert, how, when, and whether it went out."""
    async with ctx.sessions() as session:
        node = await store.alert_node(session, alert_id)
        if node is None:
            raise refuse("unknown_alert", "alert_id", alert_id=alert_id)
        if not who.may_see(node):
            raise refuse("outside_area", "alert_id", what=alert_id)
        rows = await store.deliveries_of(session, alert_id)
    return [_view(dict(row)) for row in rows]
