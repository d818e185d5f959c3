"""Notify's HTTP edge for operators: the staff records and rosters of their subtree (list,
import a file, put a day's roster) and who was told of an alert. An operator's token is scoped
to a node; they see and edit only inside its subtree."""

import hmac
import uuid
from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query, Request

from services.notify import receipts, staffing, store
from services.notify.schemas import (
    ContactView,
    DeliveryView,
    Imported,
    PersonView,
    ReceiptIn,
    ReceiptsTaken,
    RosterIn,
    RosterView,
    ShiftView,
)
from services.notify.service import NotifyContext
from shared.auth import Principal
from shared.errors import FieldError
from shared.http_auth import Operator, Territorial, area
from shared.http_problems import http_error
from shared.periods import IsoDate
from shared.refusals import Refused, refusal, refuse
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
async def get_roster(ctx: Ctx, who: Operator, node: str, day: IsoDate) -> RosterView:
    """A node's duty roster for a day: who is on duty and who leads, and when."""
    async with ctx.sessions() as session:
        return _roster(area(who, node), day, await store.roster(session, node, day))


@router.put("/rosters/{node}/{day}", response_model=RosterView)
async def put_roster(ctx: Ctx, who: Territorial, node: str, day: IsoDate,
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
            session, kind, data, kind, json_format, who.scope, ctx.clock(), ctx.today(),
            hosts=ctx.hosts)
    if problems:
        raise _refused(problems)
    return Imported(kind=kind, written=written)


def _view(row: dict) -> DeliveryView:
    return DeliveryView(**{**row, "next_attempt_at": row["next_attempt_at"]
                           if row["status"] == "pending" else None})


async def _on_line(ctx: NotifyContext, who: Principal, request: Request,
                   alerts: list[uuid.UUID], field: str) -> None:
    """A sector operator is told only of the alerts it sees at the alerts service (those
    concerning a unit of its sector); a territorial one of every alert of its area."""
    if who.sector is None or not alerts:
        return
    if ctx.alerts is None:
        raise refuse("unavailable", field, service="alerts")
    seen = await ctx.alerts.seen(request.headers["authorization"], alerts)
    if outside := [a for a in alerts if a not in seen]:
        raise refuse("outside_sector", field, what=outside[0], sector=who.sector)


@router.get("/deliveries", response_model=dict[uuid.UUID, list[DeliveryView]])
async def many_deliveries(ctx: Ctx, who: Operator, request: Request, alert: Annotated[
        list[uuid.UUID], Query(min_length=1, max_length=MAX_ALERTS)]
                          ) -> dict[uuid.UUID, list[DeliveryView]]:
    """`/alerts/{alert_id}/deliveries` for many alerts in one call (a page of the console): an
    alert notify has not heard of yet has none; one outside the operator's area, or for a
    sector operator off its line, is refused."""
    alerts = list(dict.fromkeys(alert))
    async with ctx.sessions() as session:
        nodes = await store.alert_nodes(session, alerts)
    if outside := [a for a, node in nodes.items() if not who.may_see(node)]:
        raise refuse("outside_area", "alert", what=outside[0])
    await _on_line(ctx, who, request, list(nodes), "alert")
    async with ctx.sessions() as session:
        found = await store.deliveries_of_many(session, alerts)
    return {alert_id: [_view(row) for row in rows] for alert_id, rows in found.items()}


@router.get("/alerts/{alert_id}/deliveries", response_model=list[DeliveryView])
async def alert_deliveries(ctx: Ctx, who: Operator, request: Request, alert_id: uuid.UUID
                           ) -> list[DeliveryView]:
    """Who was told of an alert, how, when, and whether it went out."""
    async with ctx.sessions() as session:
        node = await store.alert_node(session, alert_id)
    if node is None:
        raise refuse("unknown_alert", "alert_id", alert_id=alert_id)
    if not who.may_see(node):
        raise refuse("outside_area", "alert_id", what=alert_id)
    await _on_line(ctx, who, request, [alert_id], "alert_id")
    async with ctx.sessions() as session:
        rows = await store.deliveries_of(session, alert_id)
    return [_view(dict(row)) for row in rows]


def gateway(ctx: Ctx, authorization: Annotated[str | None, Header()] = None,
            x_receipt_secret: Annotated[str | None, Header()] = None) -> None:
    """The SMS gateway, by the shared secret of ROLLCALL_NOTIFY_SMS_RECEIPT_SECRET, sent as
    `X-Receipt-Secret` or as `Authorization: Bearer …`. Checked before the body is read."""
    secret = ctx.settings.notify_sms_receipt_secret
    if secret is None:
        raise refuse("receipts_off", "receipt")
    given = x_receipt_secret or (authorization or "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), secret.get_secret_value().encode()):
        raise refuse("bad_receipt_secret", "X-Receipt-Secret")


@router.post("/receipts/sms", response_model=ReceiptsTaken, dependencies=[Depends(gateway)],
             responses={401: {}, 404: {}})
async def sms_receipts(ctx: Ctx, body: ReceiptIn | list[ReceiptIn]) -> ReceiptsTaken:
    """The SMS gateway's delivery receipts (one, or a list): a message it took reached the
    phone (`delivered`) or did not (`failed`, with its code). Each is applied once, matched by
    the message id the gateway answered the send with; a receipt posted again is a
    `duplicate`. One naming no message notify sent is kept and refused (404,
    `unknown_message`), after the others are applied."""
    given = body if isinstance(body, list) else [body]
    async with ctx.sessions() as session, session.begin():
        results = await receipts.take_receipts(
            session, "sms", [receipts.Receipt(r.message_id, r.status, r.at, r.error)
                             for r in given], ctx.clock())
    if ctx.relay is not None:
        ctx.relay.wake()
    unknown = [i for i, result in enumerate(results) if result == "unknown_message"]
    if unknown:
        raise Refused(404, [refusal("unknown_message", f"[{i}].message_id" if isinstance(
            body, list) else "message_id", message_id=given[i].message_id) for i in unknown])
    return ReceiptsTaken(results=results)  # type: ignore[arg-type]
