"""Aggregate's HTTP edge: rollups with drill-down, ranges, time series and completeness lists.

Every rollup read needs a bearer token: an operator's reaches the node it is scoped to and every
node below it (403 outside); a unit's token reads nothing here (a unit reads its own reports from
ingest). `/v1/status` carries only this replica's counters and stays open, like /readyz."""

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as FastApiPath
from fastapi.responses import JSONResponse, Response

from services.aggregate import accountability, schemas, views
from services.aggregate import dhis2 as dhis2_export
from services.aggregate.queries import Filter
from services.aggregate.service import AggregateContext, durable_name
from services.aggregate.views import Span
from shared import dhis2
from shared.auth import Principal
from shared.errors import FieldError
from shared.hierarchy import level_of
from shared.http_auth import Authenticated, Territorial, line
from shared.periods import IsoDate, Period, ending, period_span
from shared.refusals import refuse
from shared.registry import calendar
from shared.registry.unit_types import unit_types

router = APIRouter(prefix="/v1", tags=["rollups"])
MAX_SPAN_DAYS = 366


class BadQuery(Exception):
    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = errors


async def on_bad_query(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, BadQuery)
    return JSONResponse({"detail": "bad query", "errors": [e.as_dict() for e in exc.errors]},
                        status_code=422)


def context(request: Request) -> AggregateContext:
    return request.app.state.aggregate


Ctx = Annotated[AggregateContext, Depends(context)]
Day = Annotated[IsoDate | None, Query(description="one reporting day (default today)")]
Start = Annotated[IsoDate | None, Query(description="first day of a range")]
End = Annotated[IsoDate | None, Query(description="last day of a range (default today)")]
Sector = Annotated[str | None, Query(description="only units of this sector, e.g. education")]
UnitType = Annotated[str | None, Query(description="only units of this type, e.g. primary_school")]
PeriodOf = Annotated[Period | None, Query(description=(
    "the week (Monday to Sunday) or month holding `day` (default today), up to today"))]


def _node(node: str) -> str:
    try:
        level_of(node)
    except ValueError:
        raise BadQuery([FieldError("node", "bad_node", f"区划代码无效: {node}",
                                   f"not a division code: {node} (2, 4, 6, 9 or 12 digits)")]
                       ) from None
    return node


def _visible(principal: Principal, node: str) -> str:
    """The node, if it is a division code inside the credential's area."""
    node = _node(node)
    if not principal.may_see(node):
        raise refuse("outside_area", "node", what=node)
    return node


PROBLEMS = {code: {"description": text} for code, text in (
    (401, "missing, unknown or revoked token"), (403, "the node is outside the token's area"),
    (422, "a bad node code or query"))}


def _filter(principal: Principal, sector: str | None, unit_type: str | None) -> Filter:
    """The filter a read asks for, limited to the credential's sector when it has one (every
    figure and list a sector operator reads is its sector's: docs/architecture.md, "The sector
    line")."""
    types = unit_types()
    errors = []
    if unit_type is not None and unit_type not in types:
        errors.append(FieldError("unit_type", "unknown_unit_type", f"未知单位类型 {unit_type}",
                                 f"unknown unit type {unit_type}"))
    if sector is not None and sector not in {t.sector for t in types.values()}:
        errors.append(FieldError("sector", "unknown_sector", f"未知行业 {sector}",
                                 f"unknown sector {sector}"))
    if errors:
        raise BadQuery(errors)
    return Filter(line(principal, sector, unit_type), unit_type)


def _span(ctx: AggregateContext, day: date | None, start: date | None, end: date | None,
          period: Period | None = None) -> Span:
    if period is not None:
        if start is not None or end is not None:
            raise BadQuery([FieldError("period", "period_or_range", "周期与日期范围只能二选一",
                                       "give either period (with day) or start/end, not both")])
        return Span(*period_span(period, day or ctx.today(), ctx.today()))
    if day is not None and (start is not None or end is not None):
        raise BadQuery([FieldError("day", "day_or_range", "日期与日期范围只能二选一",
                                   "give either day or start/end, not both")])
    if day is not None or (start is None and end is None):
        day = day or ctx.today()
        return Span(day, day)
    if start is None:
        raise BadQuery([FieldError("start", "missing_start", "缺少起始日期",
                                   "a range needs its start")])
    end = end or ctx.today()
    if start > end:
        raise BadQuery([FieldError("start", "start_after_end", "起始日期晚于结束日期",
                                   f"start {start} is after end {end}")])
    if (end - start).days + 1 > MAX_SPAN_DAYS:
        raise BadQuery([FieldError("start", "range_too_long",
                                   f"日期范围不能超过 {MAX_SPAN_DAYS} 天",
                                   f"a range spans at most {MAX_SPAN_DAYS} days")])
    return Span(start, end)


@router.get("/rollups/{node}", responses=PROBLEMS)
async def rollup(node: str, principal: Authenticated, ctx: Ctx, day: Day = None,
                 start: Start = None, end: End = None, sector: Sector = None,
                 unit_type: UnitType = None, period: PeriodOf = None,
                 limit: Annotated[int, Query(ge=0, le=100_000, description=(
                     "at most this many pending, missing, exempt and late units listed "
                     "(single day)"))] = 1000,
                 ) -> dict:
    """A node's totals, ratios and completeness for a day (today by default) or a range of days
    (summed: unit-days expected, reported, ...) or a week or month (`period`), optionally for
    one sector or unit type. Over several days each metric folds by its catalogue aggregation
    over days: a flow sums, a stock is its last day's figure."""
    node = _visible(principal, node)
    span, where = _span(ctx, day, start, end, period), _filter(principal, sector, unit_type)
    async with ctx.sessions() as session:
        return await views.node_view(session, node, span, ctx.catalogue, ctx.moment(), where,
                                     limit)


@router.get("/rollups/{node}/children", responses=PROBLEMS)
async def rollup_children(node: str, principal: Authenticated, ctx: Ctx, day: Day = None,
                          start: Start = None, end: End = None, sector: Sector = None,
                          unit_type: UnitType = None, period: PeriodOf = None) -> list[dict]:
    """Drill-down: each child node (`kind: node`), then each unit placed at the node itself
    (`kind: unit`, with its report's revision, zero/late flags and status; single day only).
    A village's children are its units."""
    node = _visible(principal, node)
    span, where = _span(ctx, day, start, end, period), _filter(principal, sector, unit_type)
    async with ctx.sessions() as session:
        return await views.children_view(session, node, span, ctx.catalogue, ctx.moment(),
                                         where)


@router.get("/rollups/{node}/series", responses=PROBLEMS)
async def rollup_series(
        node: str, principal: Authenticated, ctx: Ctx, start: Start = None, end: End = None,
        sector: Sector = None, unit_type: UnitType = None, period: PeriodOf = None,
        day: Annotated[IsoDate | None, Query(description="with `period`: a day of it")] = None,
        since: Annotated[IsoDate | None, Query(description=(
            "running totals (累计) of the flows count from this day (default: start)"))] = None,
        ) -> dict:
    """A node's figures day by day from start to end (default: the last 30 days) or over a
    week or month, each day with the running totals (`running`, 累计) of the flows since
    `since`, and the period's totals (`totals`: each metric by its aggregation over days)."""
    node = _visible(principal, node)
    if period is not None or day is not None:
        span = _span(ctx, day, start, end, period or "day")
    else:
        end = end or ctx.today()
        span = _span(ctx, None, start or ending(end, 30), end)
    if since is not None and since > span.start:
        raise BadQuery([FieldError("since", "since_after_start", "累计起始日期晚于区间开始",
                                   f"since {since} is after the series' start {span.start}")])
    if since is not None and (span.end - since).days + 1 > MAX_SPAN_DAYS:
        raise BadQuery([FieldError("since", "range_too_long",
                                   f"累计区间不能超过 {MAX_SPAN_DAYS} 天",
                                   f"running totals span at most {MAX_SPAN_DAYS} days")])
    where = _filter(principal, sector, unit_type)
    async with ctx.sessions() as session:
        return await views.series_view(session, node, span, ctx.catalogue, ctx.moment(), where,
                                       since or span.start)


@router.get("/rollups/{node}/completeness", responses=PROBLEMS)
async def rollup_completeness(
        node: str, principal: Authenticated, ctx: Ctx, day: Day = None, sector: Sector = None,
        unit_type: UnitType = None,
        limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
        offset: Annotated[int, Query(ge=0)] = 0) -> dict:
    """Expected, reported, zero, late, pending, missing and exempt units with the lists of
    pending (待报), missing (漏报), exempt (免报, with the reason) and late (迟报) units, in code
    order; `limit`/`offset` page through large lists. Pending and missing are as of now."""
    node = _visible(principal, node)
    span, where = _span(ctx, day, None, None), _filter(principal, sector, unit_type)
    async with ctx.sessions() as session:
        return await views.completeness_view(session, node, span.start, ctx.catalogue,
                                             ctx.moment(), where, limit, offset)


@router.get("/export/dhis2/dataValueSets.{fmt}", tags=["dhis2"], responses={
    **PROBLEMS, 200: {"content": {"application/json": {}, "application/csv": {}},
                      "description": "a DHIS2 data value set"}})
async def export_dhis2(
        fmt: dhis2.Format, principal: Territorial, ctx: Ctx,
        node: Annotated[str, Query(description="the node whose figures are exported")],
        day: Day = None, start: Start = None, end: End = None, period: PeriodOf = None,
        children: Annotated[bool, Query(
            description="each child node's figures instead of the node's own")] = False,
        unmapped: Annotated[dhis2.WhenUnmapped, Query(description=(
            "a metric or node the mapping lacks: `refuse` the export (422, naming every "
            "code), or `skip` it (listed in the Rollcall-Unmapped header)"))] = "refuse",
) -> Response:
    """A node's figures as a DHIS2 data value set (JSON or CSV): for each day of the range and
    each metric, the node's rollup (or each child node's), its data element and org unit from
    the deployment's mapping (ROLLCALL_DHIS2_MAPPING), the period as DHIS2's daily yyyyMMdd.
    The units' own reports are exported by ingest (`/v1/export/dhis2/…` there). The node's
    figures are every sector's: a sector operator's token is refused (`territorial_only`)."""
    node = _visible(principal, node)
    span = _span(ctx, day, start, end, period)
    if children and views.child_length(node) is None:
        raise BadQuery([FieldError("children", "units_from_ingest",
                                   "村的下级是报告单位:请从 ingest 导出各单位的数据",
                                   "a village's children are units: export their reports "
                                   "from ingest")])
    async with ctx.sessions() as session:
        figures = await dhis2_export.node_figures(session, node, span, ctx.catalogue,
                                                  ctx.moment(), children)
    body, media, headers, errors = dhis2.rendered(
        figures, ctx.dhis2, fmt, unmapped, f"rollcall-{node}-{span.start}-{span.end}")
    if body is None:
        raise BadQuery(errors)
    return Response(body, media_type=media, headers=headers)



@router.get("/accountability/{node}", responses=PROBLEMS)
async def node_accountability(
        node: str, principal: Authenticated, ctx: Ctx, start: Start = None, end: End = None,
        sector: Sector = None, unit_type: UnitType = None,
        limit: Annotated[int | None, Query(ge=1, le=100_000, description=(
            "at most this many units listed, the worst first (the totals count them all)"))
        ] = None) -> dict:
    """Accountability over a range of days (the 7 days ending `end` by default; `end` today by
    default): per unit and per child node the unit-days expected, reported, zero, late,
    missing, corrected and exempt, with the rates; units ranked by missing and late days, child
    nodes by the lowest reporting rate (一天一通报). `sent_back` is null here: signoff keeps
    the send-backs (the console's 通报 counts them)."""
    node = _visible(principal, node)
    end = end or ctx.today()
    span = _span(ctx, None, start or ending(end, 7), end)
    where = _filter(principal, sector, unit_type)
    async with ctx.sessions() as session:
        return await accountability.tallies(session, node, span.start, span.end, where,
                                            ctx.moment(), views.child_length(node), limit)


# Calendars (免报) are declared here rather than in the registry's CLI only: they change the
# completeness figures this service keeps and recounts at once, and operators already read
# those figures here with the token that bounds their area.
def _operator(principal: Principal) -> str:
    """The subtree an operator's calendars may cover; a unit's token declares none."""
    if principal.kind != "operator":
        raise refuse("outside_area", "authorization", what=principal.scope)
    return principal.scope


def _refused(exc: calendar.CalendarRefused, sector: str | None = None) -> Exception:
    if exc.code == "outside_area":
        return refuse("outside_area", exc.field, what=exc.en)
    if exc.code == "outside_sector":
        return refuse("outside_sector", exc.field, what=exc.en, sector=sector)
    return BadQuery([FieldError(exc.field, exc.code, exc.zh, exc.en)])


@router.get("/calendars", responses=PROBLEMS)
async def list_calendars(principal: Authenticated, ctx: Ctx,
                         node: Annotated[str | None, Query(
                             description="those concerning this node (default: the token's)")
                         ] = None,
                         current: Annotated[bool, Query(
                             description="only those lasting until today or later")] = True,
                         ) -> list[calendar.Exemption]:
    """The calendars (免报) that concern a node's area, with who declared or ended them, when and
    why."""
    scope = _visible(principal, node) if node else _operator(principal)
    async with ctx.sessions() as session:
        found = await calendar.listed(session, scope, ctx.today() if current else None)
    return found


@router.post("/calendars", status_code=201, responses=PROBLEMS)
async def declare_calendar(body: schemas.DeclareExemption, principal: Authenticated,
                           ctx: Ctx) -> calendar.Exemption:
    """Declare that units are not expected to report (免报) for a period, with a reason, inside
    the token's area; from today at the earliest (a past day keeps its figures). Today's and
    later days' expected units are recounted at once; a report from an exempt unit is still
    accepted and counted."""
    scope = _operator(principal)
    declaration = calendar.Declaration(
        valid_from=body.valid_from or ctx.today(), reason=body.reason, node_code=body.node_code,
        unit_code=body.unit_code, unit_type=body.unit_type, weekday=body.weekday,
        valid_to=body.valid_to)
    try:
        x = await ctx.declare_exemption(declaration, scope, principal.holder, principal.sector)
    except calendar.CalendarRefused as exc:
        raise _refused(exc, principal.sector) from None
    return x


@router.post("/calendars/{exemption_id}/end", responses=PROBLEMS)
async def end_calendar(exemption_id: Annotated[int, FastApiPath(ge=1, le=2**63 - 1)],
                       body: schemas.EndExemption, principal: Authenticated,
                       ctx: Ctx) -> calendar.Exemption:
    """End a calendar from today on, with a reason: the days before keep it."""
    try:
        x = await ctx.end_exemption(exemption_id, body.reason, _operator(principal),
                                    principal.holder, principal.sector)
    except calendar.CalendarRefused as exc:
        raise _refused(exc, principal.sector) from None
    return x


@router.get("/status")
async def status(ctx: Ctx) -> dict:
    """What this replica has consumed: its subject filter and durable, and its counters."""
    stats = ctx.stats
    return {"filter": ctx.settings.aggregate_filter,
            "durable": durable_name(ctx.settings.aggregate_filter),
            "events": stats.events, "applied": stats.applied, "batches": stats.batches,
            "poisoned": stats.poisoned,
            "announced": ctx.announcer.sent if ctx.announcer else 0}
