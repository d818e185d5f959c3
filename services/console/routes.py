"""The console's HTTP edge: the pages, and a small backend for them that asks the other services
with the signed-in operator's token and keeps each operator inside their own area."""

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from services.console import bulletin, compose, editions, live, reference, summary
from services.console.compose import Passed, Span
from services.console.compose import must as _must
from services.console.service import ConsoleContext
from services.console.upstream import Answer, UpstreamDown
from shared.auth import Principal
from shared.hierarchy import level_of
from shared.http_auth import territorial
from shared.periods import IsoDate, ending
from shared.refusals import on_refused, refuse
from shared.registry.unit_types import sectors

COOKIE = "rollcall_token"
STATIC = resources.files("services.console") / "static"

pages = APIRouter(tags=["pages"], include_in_schema=False)
api = APIRouter(prefix="/api", tags=["console"])


async def on_upstream_down(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UpstreamDown)
    return await on_refused(request, refuse("unavailable", exc.service, service=exc.service))


def context(request: Request) -> ConsoleContext:
    return request.app.state.console


Ctx = Annotated[ConsoleContext, Depends(context)]


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    return request.cookies.get(COOKIE)


@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    token: str


async def signed_in(request: Request, ctx: Ctx) -> Session:
    token = _token(request)
    principal = await ctx.principal(token) if token else None
    if principal is None:
        raise refuse("signed_out", "token")
    assert token is not None
    return Session(principal=principal, token=token)


async def operator(who: Annotated[Session, Depends(signed_in)]) -> Session:
    if who.principal.kind != "operator":
        raise refuse("not_operator", "token")
    return who


Anyone = Annotated[Session, Depends(signed_in)]
Operator = Annotated[Session, Depends(operator)]


def _node(who: Session, node: str | None) -> str:
    node = node or who.principal.scope
    try:
        level_of(node)
    except ValueError:
        raise refuse("bad_node", "node", node=node) from None
    if not who.principal.may_see(node):
        raise refuse("outside_area", "node", what=node)
    return node


def _relay(answer: Answer) -> JSONResponse:
    return JSONResponse(answer.body, status_code=answer.status)


async def on_passed(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Passed)
    return _relay(exc.answer)


# ---- pages -------------------------------------------------------------------------------

def _page(name: str) -> FileResponse:
    return FileResponse(str(STATIC / name), headers={"Cache-Control": "no-cache"})


@pages.get("/")
async def console_page() -> FileResponse:
    return _page("index.html")


@pages.get("/report")
async def report_page() -> FileResponse:
    return _page("report.html")


@pages.get("/roster")
async def roster_page() -> FileResponse:
    return _page("roster.html")


@pages.get("/control")
async def control_page() -> FileResponse:
    return _page("control.html")


@pages.get("/trend")
async def trend_page() -> FileResponse:
    return _page("trend.html")
@pages.get("/review")
async def review_page() -> FileResponse:
    return _page("review.html")


@pages.get("/summary")
async def summary_page() -> FileResponse:
    return _page("summary.html")


@pages.get("/bulletin")
async def bulletin_page() -> FileResponse:
    return _page("bulletin.html")


@pages.get("/static/{name}")
async def static(name: str) -> Response:
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return Response(status_code=404)
    return FileResponse(str(path), headers={"Cache-Control": "no-cache"})


# ---- sign-in -----------------------------------------------------------------------------

class SignIn(BaseModel):
    token: str = Field(min_length=1, max_length=200)


async def _me(ctx: ConsoleContext, principal: Principal) -> dict:
    async with ctx.sessions() as session:
        if principal.kind == "operator":
            names = await reference.node_names(session, [principal.scope])
            unit = None
        else:
            names, unit = {}, await reference.unit(session, principal.scope, ctx.today())
    line = sectors().get(principal.sector) if principal.sector else None
    return {"kind": principal.kind, "scope": principal.scope, "holder": principal.holder,
            "scope_name": names.get(principal.scope) or (unit or {}).get("name"),
            # A sector operator's line (行业部门): every page shows that sector's view.
            "sector": principal.sector,
            "sector_name": {"zh": line.name_zh, "en": line.name_en} if line else None,
            "unit": unit, "today": ctx.today().isoformat(),
            # Every time on the pages is shown in the deployment's zone, whatever the browser's.
            "zone": ctx.settings.zone.key}


@api.post("/session")
async def sign_in(body: SignIn, ctx: Ctx, request: Request) -> JSONResponse:
    """Sign in with an access token: it is kept in an HttpOnly cookie for this console."""
    principal = await ctx.principal(body.token.strip())
    if principal is None:
        raise refuse("bad_token", "token")
    response = JSONResponse(await _me(ctx, principal))
    response.set_cookie(COOKIE, body.token.strip(), httponly=True, samesite="strict",
                        secure=ctx.settings.console_secure_cookie, max_age=30 * 86400)
    return response


@api.delete("/session")
async def sign_out() -> JSONResponse:
    response = JSONResponse({"signed_out": True})
    response.delete_cookie(COOKIE)
    return response


@api.get("/me")
async def me(who: Anyone, ctx: Ctx) -> dict:
    return await _me(ctx, who.principal)


@api.get("/catalogue")
async def catalogue(ctx: Ctx) -> dict:
    """The metrics with their unit of measure, and the form of each unit type."""
    return {"metrics": [{"code": m.code, "name_zh": m.name_zh, "name_en": m.name_en,
                         "value_type": m.value_type, "over_days": m.over_days,
                         "measure_zh": m.measure_zh,
                         "measure_en": m.measure_en} for m in ctx.catalogue.metrics.values()],
            "forms": {unit_type: {"code": f.code, "name_zh": f.name_zh, "name_en": f.name_en,
                                  "required": list(f.required), "optional": list(f.optional)}
                      for unit_type, f in ctx.catalogue.form_of_type.items()}}


# ---- the command centre's picture ---------------------------------------------------------

@api.get("/overview/{node}")
async def overview(node: str, who: Operator, ctx: Ctx, day: IsoDate | None = None) -> dict:
    """A node's figures with each child's, and the way back up to the operator's own node."""
    node = _node(who, node)
    view, children = await asyncio.gather(
        ctx.upstream.get("aggregate", f"/v1/rollups/{node}", who.token, day=day, limit=500),
        ctx.upstream.get("aggregate", f"/v1/rollups/{node}/children", who.token, day=day))
    view, children = _must(view), _must(children)
    scope = who.principal.scope
    path = [code for code in reference.ancestors(node) if code.startswith(scope)]
    async with ctx.sessions() as session:
        names = await reference.node_names(session, path)
    return {"node": view, "children": children,
            "path": [{"node": code, "name": names.get(code)} for code in path]}


@api.get("/alerts")
async def alerts(who: Operator, ctx: Ctx, node: str | None = None,
                 status: str = "active") -> JSONResponse:
    """The alerts of the operator's area, each with its unit's and node's names and who was
    told of it (`deliveries`, null when notify cannot say). Each kind is asked for apart: a
    county has a missing-report alert per village and cutoff, and they must not crowd the fever
    cases out of a page."""
    node = _node(who, node)
    answers = await asyncio.gather(*(
        ctx.upstream.get("alerts", "/v1/alerts", who.token, node=node, status=status,
                         kind=kind, limit=limit)
        for kind, limit in (("case", 500), ("outbreak", 100), ("missing_report", 300),
                            ("supply_low", 100), ("missing_confirmation", 100),
                            ("test_overdue", 200), ("release_overdue", 200),
                            ("team_signoff_missing", 200))))
    alerts = [alert for answer in answers for alert in _must(answer)]
    told = await _deliveries(ctx, who, [alert["alert_id"] for alert in alerts])
    for alert in alerts:
        alert["deliveries"] = None if told is None else told.get(alert["alert_id"], [])
    async with ctx.sessions() as session:
        await reference.name_alerts(session, alerts)
    return JSONResponse(jsonable_encoder(alerts))


DELIVERIES_PER_CALL = 100  # notify's most alerts per batch read


async def _deliveries(ctx: ConsoleContext, who: Session, alert_ids: list[str]
                      ) -> dict[str, list] | None:
    """Who was told of each alert, from notify in a few batch reads; None when notify cannot
    answer: the alerts still show, their deliveries marked unavailable."""
    chunks = [alert_ids[i:i + DELIVERIES_PER_CALL]
              for i in range(0, len(alert_ids), DELIVERIES_PER_CALL)]
    try:
        answers = await asyncio.gather(*(
            ctx.upstream.get("notify", "/v1/deliveries", who.token, alert=chunk)
            for chunk in chunks))
    except UpstreamDown:
        return None
    if not all(answer.ok for answer in answers):
        return None
    return {alert_id: rows for answer in answers for alert_id, rows in answer.body.items()}


@api.get("/alerts/{alert_id}/deliveries")
async def alert_deliveries(alert_id: uuid.UUID, who: Operator, ctx: Ctx) -> JSONResponse:
    """Who was told of one alert, how, when and whether it went out; refused as unavailable
    without notify."""
    told = await _deliveries(ctx, who, [str(alert_id)])
    if told is None:
        raise UpstreamDown("notify", "unanswered")
    return JSONResponse(told.get(str(alert_id), []))


@api.get("/alerts/{alert_id}")
async def alert_detail(alert_id: str, who: Operator, ctx: Ctx) -> JSONResponse:
    """The alert with who was told of it (`told`), as the alerts service keeps it."""
    return _relay(await ctx.upstream.get("alerts", f"/v1/alerts/{alert_id}", who.token))


@api.get("/alerts/{alert_id}/history")
async def alert_history(alert_id: str, who: Operator, ctx: Ctx) -> JSONResponse:
    return _relay(await ctx.upstream.get("alerts", f"/v1/alerts/{alert_id}/history", who.token))


@api.post("/alerts/{alert_id}/acknowledge")
async def acknowledge(alert_id: str, who: Operator, ctx: Ctx,
                      body: Annotated[dict | None, Body()] = None) -> JSONResponse:
    return _relay(await ctx.upstream.post("alerts", f"/v1/alerts/{alert_id}/acknowledge",
                                          who.token, body or {}))


@api.post("/alerts/{alert_id}/close")
async def close(alert_id: str, who: Operator, ctx: Ctx,
                body: Annotated[dict, Body()]) -> JSONResponse:
    return _relay(await ctx.upstream.post("alerts", f"/v1/alerts/{alert_id}/close",
                                          who.token, body))


# ---- duty rosters: read and put through notify, which holds the staff records -------------

@api.get("/rosters/{node}/{day}")
async def roster(node: str, day: IsoDate, who: Operator, ctx: Ctx) -> dict:
    """A node's duty roster for a day with the staff of the node's subtree (names to show, and
    whom a shift may name)."""
    node = _node(who, node)
    shifts, people = await asyncio.gather(
        ctx.upstream.get("notify", f"/v1/rosters/{node}/{day}", who.token),
        ctx.upstream.get("notify", "/v1/people", who.token, node=node))
    async with ctx.sessions() as session:
        names = await reference.node_names(session, [node])
    return {**_must(shifts), "node_name": names.get(node),
            "people": [{"code": p["code"], "name": p["name"], "node": p["node"]}
                       for p in _must(people)]}


@api.put("/rosters/{node}/{day}")
async def put_roster(node: str, day: IsoDate, who: Operator, ctx: Ctx,
                     body: Annotated[dict, Body()]) -> JSONResponse:
    return _relay(await ctx.upstream.put("notify", f"/v1/rosters/{_node(who, node)}/{day}",
                                         who.token, body))


# ---- people under control (一人一案): read and recorded through the ledger, which keeps the
# names to the village's and the town's operators -----------------------------------------

@api.get("/control/{what}")
async def control(what: str, who: Operator, ctx: Ctx, node: str | None = None,
                  day: IsoDate | None = None) -> JSONResponse:
    """The register (`people`), the day's work (`due`), the missing sign-offs
    (`signoffs/missing` as `signoffs-missing`) and the headcounts (`stock`) of the operator's
    area, as the ledger answers them."""
    paths = {"people": "/v1/control/people", "due": "/v1/control/due",
             "signoffs-missing": "/v1/control/signoffs/missing", "stock": "/v1/control/stock",
             "regimes": "/v1/control/regimes"}
    if what not in paths:
        raise refuse("unknown_node", "what", node=what)
    params = {"node": _node(who, node)} if what != "regimes" else {}
    if day is not None and what not in ("people", "regimes"):
        params["day"] = day.isoformat()
    return _relay(await ctx.upstream.get("ledger", paths[what], who.token, **params))


@api.post("/control/people/{person_id}/{action}")
async def control_action(person_id: uuid.UUID, action: str, who: Operator, ctx: Ctx,
                         body: Annotated[dict, Body()]) -> JSONResponse:
    """A test result, a release or a team member's sign-off, recorded by the ledger."""
    if action not in ("tests", "release", "signoffs"):
        raise refuse("unknown_node", "action", node=action)
    return _relay(await ctx.upstream.post("ledger", f"/v1/control/people/{person_id}/{action}",
                                          who.token, body))


# ---- calendars (免报): declared and ended through aggregate, which recounts the figures ------

@api.get("/calendars")
async def calendars(who: Operator, ctx: Ctx, node: str | None = None) -> JSONResponse:
    return _relay(await ctx.upstream.get("aggregate", "/v1/calendars", who.token,
                                         node=_node(who, node)))


@api.post("/calendars")
async def declare_calendar(who: Operator, ctx: Ctx, body: Annotated[dict, Body()]
                           ) -> JSONResponse:
    return _relay(await ctx.upstream.post("aggregate", "/v1/calendars", who.token, body))


@api.post("/calendars/{exemption_id}/end")
async def end_calendar(exemption_id: int, who: Operator, ctx: Ctx,
                       body: Annotated[dict, Body()]) -> JSONResponse:
    return _relay(await ctx.upstream.post("aggregate", f"/v1/calendars/{exemption_id}/end",
                                          who.token, body))


@api.get("/units/{unit}")
async def unit_history(unit: str, who: Anyone, ctx: Ctx) -> dict:
    """A unit with its report history (every revision) and its cases."""
    reports, cases = await asyncio.gather(
        ctx.upstream.get("ingest", f"/v1/units/{unit}/reports", who.token),
        ctx.upstream.get("ingest", f"/v1/units/{unit}/cases", who.token))
    reports = _must(reports)
    async with ctx.sessions() as session:
        info = await reference.unit(session, unit, ctx.today())
    return {"unit": info or {"code": unit}, "reports": reports,
            "cases": cases.body if cases.ok else []}


# ---- the reporting form --------------------------------------------------------------------

@api.post("/reports")
async def submit_report(who: Anyone, ctx: Ctx, body: Annotated[dict, Body()]) -> JSONResponse:
    return _relay(await ctx.upstream.post("ingest", "/v1/reports", who.token, body))


@api.post("/reports/zero")
async def submit_zero(who: Anyone, ctx: Ctx, body: Annotated[dict, Body()]) -> JSONResponse:
    return _relay(await ctx.upstream.post("ingest", "/v1/reports/zero", who.token, body))


@api.post("/cases")
async def submit_case(who: Anyone, ctx: Ctx, body: Annotated[dict, Body()]) -> JSONResponse:
    return _relay(await ctx.upstream.post("ingest", "/v1/cases", who.token, body))


@api.get("/units")
async def units_below(who: Anyone, ctx: Ctx, q: Annotated[str, Query(max_length=50)] = "",
                      ) -> list[dict]:
    """Units the signed-in credential may report for, matching a code or name (the form's
    picker): a unit token reaches only its own unit."""
    async with ctx.sessions() as session:
        if who.principal.kind == "unit":
            one = await reference.unit(session, who.principal.scope, ctx.today())
            return [one] if one else []
        return await reference.find_units(session, who.principal.scope, q, ctx.today(),
                                          who.principal.sector)


@api.post("/reports/{unit}/{day}/corrections")
async def correct_report(unit: str, day: IsoDate, who: Anyone, ctx: Ctx,
                         body: Annotated[dict, Body()]) -> JSONResponse:
    """A correction (a report sent back is corrected this way): a new revision with a reason."""
    return _relay(await ctx.upstream.post("ingest", f"/v1/reports/{unit}/{day}/corrections",
                                          who.token, body))


@api.get("/units/{unit}/sendbacks")
async def unit_sendbacks(unit: str, who: Anyone, ctx: Ctx) -> JSONResponse:
    """退回: the unit's reports sent back, with the reason (ingest keeps what signoff said)."""
    return _relay(await ctx.upstream.get("ingest", f"/v1/units/{unit}/sendbacks", who.token))


# ---- review and sign-off (逐级审核上报), through the signoff service ---------------------------

@api.get("/signoff/{node}")
async def signoff(node: str, who: Operator, ctx: Ctx, day: IsoDate | None = None) -> JSONResponse:
    """A node's day and its children's: confirmed, reopened after a correction, unconfirmed."""
    return _relay(await ctx.upstream.get("signoff", f"/v1/signoff/{_node(who, node)}",
                                         who.token, day=day))


@api.get("/review/{node}")
async def review(node: str, who: Operator, ctx: Ctx, day: IsoDate | None = None) -> JSONResponse:
    """Every unit below a node with its latest report of the day and its open send-back."""
    return _relay(await ctx.upstream.get("signoff", f"/v1/review/{_node(who, node)}",
                                         who.token, day=day))


@api.get("/signoff-audit/{node}")
async def signoff_audit(node: str, who: Operator, ctx: Ctx, day: IsoDate | None = None
                        ) -> JSONResponse:
    return _relay(await ctx.upstream.get("signoff", "/v1/audit", who.token,
                                         node=_node(who, node), day=day))


@api.post("/sendbacks")
async def send_back(who: Operator, ctx: Ctx, body: Annotated[dict, Body()]) -> JSONResponse:
    return _relay(await ctx.upstream.post("signoff", "/v1/sendbacks", who.token, body))


@api.post("/confirmations")
async def confirm(who: Operator, ctx: Ctx, body: Annotated[dict, Body()]) -> JSONResponse:
    return _relay(await ctx.upstream.post("signoff", "/v1/confirmations", who.token, body))


# ---- the daily summary (日报/通报) -----------------------------------------------------------

def _span(day: IsoDate | None = None, start: IsoDate | None = None, end: IsoDate | None = None,
          period: Literal["day", "week", "month"] | None = None) -> Span:
    """What a summary covers: one day (today by default), the week or month of `day`
    (`period`), or a range (`start`, `end`)."""
    return Span(day, start, end, period)


Spanned = Annotated[Span, Depends(_span)]


def _filename(doc: dict, extension: str) -> str:
    period = doc["start"] if doc["start"] == doc["end"] else f"{doc['start']}_{doc['end']}"
    return f"summary-{doc['node']}-{period}.{extension}"


@api.get("/summary/{node}")
async def daily_summary(node: str, who: Operator, ctx: Ctx, span: Spanned) -> dict:
    """The summary of a day (today by default), of the week or month of `day` (`period`), or
    of a range (`start`, `end`)."""
    return await compose.summary_of(ctx, who.token, _node(who, node), span)


@api.get("/summary/{node}/csv")
async def daily_summary_csv(node: str, who: Operator, ctx: Ctx, span: Spanned) -> Response:
    doc = await compose.summary_of(ctx, who.token, _node(who, node), span)
    return Response(summary.to_csv(doc), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="{_filename(doc, "csv")}"'})


XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@api.get("/summary/{node}/xlsx")
async def daily_summary_xlsx(node: str, who: Operator, ctx: Ctx, span: Spanned) -> Response:
    """The same summary as an XLSX workbook laid out like a command centre's template, to
    print on A4 landscape and sign (填报人, 审核人, 填报时间, 盖章)."""
    doc = await compose.summary_of(ctx, who.token, _node(who, node), span)
    return Response(summary.to_workbook(doc), media_type=XLSX,
                    headers={"Content-Disposition":
                             f'attachment; filename="{_filename(doc, "xlsx")}"'})


@api.get("/series/{node}")
async def series(node: str, who: Operator, ctx: Ctx, span: Spanned,
                 since: IsoDate | None = None) -> JSONResponse:
    """A node's figures day by day over a week, a month or a range (the last 30 days by
    default), with the running totals (累计) of the flows since `since` and the period's
    totals, as aggregate folds them."""
    params = span.params() if span.period or span.start or span.end else {}
    return _relay(await ctx.upstream.get("aggregate", f"/v1/rollups/{_node(who, node)}/series",
                                         who.token, since=since, **params))


# ---- scheduled editions (kept as they were made) -------------------------------------------

@api.get("/editions")
async def list_editions(who: Operator, ctx: Ctx, node: str | None = None,
                        day: IsoDate | None = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict]:
    """The scheduled editions of a node and the nodes below it, newest first. They hold every
    sector's figures: a sector operator is refused (`territorial_only`)."""
    territorial(who.principal)
    node = _node(who, node)
    async with ctx.sessions() as session:
        return await editions.listed(session, node, who.principal.scope, day, limit)


async def _edition(ctx: ConsoleContext, who: Session, edition_id: uuid.UUID
                   ) -> editions.EditionRow:
    territorial(who.principal)
    async with ctx.sessions() as session:
        row = await editions.one(session, edition_id)
    if row is None:
        raise refuse("unknown_edition", "edition_id", edition_id=edition_id)
    _node(who, row.node)
    return row


@api.get("/editions/{edition_id}/xlsx")
async def edition_xlsx(edition_id: uuid.UUID, who: Operator, ctx: Ctx) -> Response:
    """An edition's workbook, byte for byte as it was made (its SHA-256 in `ETag`)."""
    row = await _edition(ctx, who, edition_id)
    return Response(row.xlsx, media_type=editions.XLSX, headers={
        "Content-Disposition": f'attachment; filename="{row.filename}"',
        "ETag": f'"{row.sha256}"'})


@api.get("/editions/{edition_id}/csv")
async def edition_csv(edition_id: uuid.UUID, who: Operator, ctx: Ctx) -> Response:
    row = await _edition(ctx, who, edition_id)
    return Response(row.csv, media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition":
            f'attachment; filename="{row.filename.removesuffix(".xlsx")}.csv"'})


# ---- the weekly 通报: accountability (aggregate) and 疑似瞒报 flags (alerts) ---------------------

async def _bulletin(ctx: ConsoleContext, who: Session, node: str, start: date | None,
                    end: date | None) -> dict:
    node = _node(who, node)
    end = end or ctx.today() - timedelta(days=1)  # a week of whole days: up to yesterday
    start = start or ending(end, 7)
    span = {"start": start, "end": end}
    tallies, flags, counts = await asyncio.gather(
        ctx.upstream.get("aggregate", f"/v1/accountability/{node}", who.token, **span),
        ctx.upstream.get("alerts", "/v1/flags", who.token, node=node, **span),
        ctx.upstream.get("alerts", "/v1/flags/counts", who.token, node=node, **span))
    flags = _must(flags)
    async with ctx.sessions() as session:
        await reference.name_alerts(session, flags)  # names units and nodes alike
    generated = datetime.now(ctx.settings.zone).strftime("%Y-%m-%d %H:%M")
    return bulletin.build(_must(tallies), flags, _must(counts), generated,
                          await _sendbacks(ctx, who, node, start, end))


async def _sendbacks(ctx: ConsoleContext, who: Session, node: str, start: date, end: date
                     ) -> list[dict] | None:
    """Every send-back (退回) below the node on the days of the range, from signoff; None when
    signoff cannot say (the 通报 then shows the column empty)."""
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    try:
        answers = await asyncio.gather(*(
            ctx.upstream.get("signoff", "/v1/sendbacks", who.token, node=node, day=day)
            for day in days))
    except UpstreamDown:
        return None
    if not all(answer.ok for answer in answers):
        return None
    return [s for answer in answers for s in answer.body]


@api.get("/bulletin/{node}")
async def weekly_bulletin(node: str, who: Operator, ctx: Ctx, start: IsoDate | None = None,
                          end: IsoDate | None = None) -> dict:
    return await _bulletin(ctx, who, node, start, end)


@api.get("/bulletin/{node}/csv")
async def weekly_bulletin_csv(node: str, who: Operator, ctx: Ctx, start: IsoDate | None = None,
                              end: IsoDate | None = None) -> Response:
    doc = await _bulletin(ctx, who, node, start, end)
    filename = f"bulletin-{doc['node']}-{doc['start']}-{doc['end']}.csv"
    return Response(bulletin.to_csv(doc), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@api.post("/flags/{flag_id}/dismiss")
async def dismiss_flag(flag_id: str, who: Operator, ctx: Ctx,
                       body: Annotated[dict, Body()]) -> JSONResponse:
    return _relay(await ctx.upstream.post("alerts", f"/v1/flags/{flag_id}/dismiss", who.token,
                                          body))


# ---- live updates ----------------------------------------------------------------------------

def _alert_checker(ctx: ConsoleContext, who: Session) -> live.Allow:
    """For a sector operator's page: whether an alert concerns its sector, asked of alerts (the
    rule's home, `services/alerts/queries.py` `of_sector`) once per alert and page."""
    known: dict[str, bool] = {}

    async def allow(event: live.LiveEvent) -> bool:
        alert_id = str(event.data.get("alert_id"))
        if alert_id not in known:
            try:
                answer = await ctx.upstream.get("alerts", f"/v1/alerts/{alert_id}", who.token)
            except UpstreamDown:
                return False  # said nothing rather than too much; the page refetches later
            known[alert_id] = answer.ok
        return known[alert_id]

    return allow


@api.get("/events")
async def events(who: Operator, ctx: Ctx, request: Request) -> StreamingResponse:
    """Server-sent events: `rollup` (a node's figures changed: fetch again) and `alert` (an alert
    opened, was warned, escalated, acknowledged or closed), only for the operator's area."""
    audience = live.Audience(who.principal.scope, who.principal.sector)
    return StreamingResponse(
        live.stream(ctx.hub, audience, request.is_disconnected,
                    allow=_alert_checker(ctx, who) if who.principal.sector else None),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
