"""Ingest's HTTP edge: read the request, call `submissions`, answer. Every refusal names the
field, a stable code and the reason in Chinese and English, and is kept (ingest.rejections and
`report.rejected.<unit>`); only a request without valid credentials (401) is not.

A submission's body is read here as bytes and handed to the use case as it came, so that a body
that is not JSON, or a field that is wrong, is refused and kept by the use case like any other
refusal (the OpenAPI schema still names each body's model)."""

import json
from datetime import date, datetime
from typing import Annotated
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from services.ingest import dhis2 as dhis2_use
from services.ingest import ledger, sendbacks, submissions
from services.ingest.csvfile import CsvRefused, read_reports, template
from services.ingest.schemas import (
    BulkResult,
    CaseReceipt,
    CaseView,
    CorrectionCommand,
    CorrectReport,
    Problem,
    Receipt,
    ReportNote,
    Revision,
    SendbackNotice,
    SubmitCase,
    SubmitReport,
    SubmitZeroReport,
)
from services.ingest.service import IngestContext
from services.ingest.submissions import INVALID_JSON, Incoming, Outcome, excerpt, read, read_json
from shared import dhis2
from shared.auth import Principal
from shared.errors import FieldError
from shared.hierarchy import level_of
from shared.http_auth import Authenticated, Operator, Territorial, forbidden, reaches_unit
from shared.refusals import Refused, problem, refuse

router = APIRouter(prefix="/v1", tags=["reports"])
# A bulk body above this is refused unread (10,000 reports take about 2 MB).
MAX_BULK_BYTES = 32 * 1024 * 1024


def context(request: Request) -> IngestContext:
    return request.app.state.ingest


Ctx = Annotated[IngestContext, Depends(context)]
REFUSED = {code: {"model": Problem} for code in (401, 403, 404, 409, 422)} | {429: {
    "model": Problem, "description": "the unit sent too much lately (ROLLCALL_SUBMIT_RATE_*): "
                                     "retry after `Retry-After` seconds"}}


def _retry_after(outcomes: list[Outcome]) -> dict[str, str] | None:
    waits = [o.retry_after for o in outcomes if o.retry_after]
    return {"Retry-After": str(max(waits))} if waits else None


def body_of(model: type[BaseModel]) -> dict:
    """The OpenAPI request body of a route that reads its body itself."""
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": model.model_json_schema()}}}}


def _answer(outcome: Outcome) -> Response:
    if outcome.receipt is not None:
        return JSONResponse(outcome.receipt.model_dump(mode="json"), status_code=outcome.code)
    return JSONResponse(outcome.problem(), status_code=outcome.code,
                        headers=_retry_after([outcome]))


@router.post("/reports", response_model=Receipt, status_code=201, responses={
    200: {"model": Receipt, "description": "a retry: the stored report, nothing new"},
    **REFUSED}, openapi_extra=body_of(SubmitReport))
async def submit_report(request: Request, principal: Authenticated, ctx: Ctx) -> Response:
    """Submit a unit's daily report. Empty or all-zero `values` is a zero report (零报告).
    After the unit's cutoff it is accepted and marked late (迟报). A retry (same `report_id`,
    or the same unit, day and values) answers 200 with the stored report and changes nothing."""
    item = read_json(SubmitReport, await request.body(), principal)
    [outcome] = await submissions.submit_reports(ctx, [item])
    return _answer(outcome)


@router.post("/reports/zero", response_model=Receipt, status_code=201, responses={
    200: {"model": Receipt}, **REFUSED}, openapi_extra=body_of(SubmitZeroReport))
async def submit_zero_report(request: Request, principal: Authenticated, ctx: Ctx
                             ) -> Response:
    """零报告: nothing to report today, all clear. It counts as reported (not as missing), with
    every value zero; sent after the unit's cutoff it is late (迟报), like any report."""
    item = read_json(SubmitZeroReport, await request.body(), principal)
    if isinstance(body := item.parsed, SubmitZeroReport):
        item.parsed = SubmitReport(unit=body.unit, day=body.day, reporter=body.reporter,
                                   report_id=body.report_id, values={}, note=body.note)
    [outcome] = await submissions.submit_reports(ctx, [item])
    return _answer(outcome)


def _bulk_answer(outcomes: list[Outcome]) -> Response:
    # A unit that sent too fast is refused alone (code 429 in its result); the header says when
    # the longest-waiting one may try again.
    return Response(orjson.dumps(submissions.bulk_result(outcomes)),
                    media_type="application/json", headers=_retry_after(outcomes))


async def _refuse_whole(ctx: IngestContext, principal: Principal, status: int,
                        error: FieldError, payload: dict) -> JSONResponse:
    """A bulk request refused as a whole (too large, not a list): kept as one refusal."""
    [outcome] = await submissions.keep_refused(
        ctx, [Incoming(payload, None, principal, [error], status)], "report")
    return JSONResponse(outcome.problem(), status_code=status)


BULK_JSON = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "array", "maxItems": 10_000, "items": SubmitReport.model_json_schema()}}}}}
BULK_CSV = {"requestBody": {"required": True, "content": {"text/csv": {
    "schema": {"type": "string"},
    "example": "unit,day,reporter,fever,ili\n430621108001-CL,2026-03-02,王医生,2,1\n"
               "430621108001-VC,2026-03-02,李主任,,\n"}}}}


@router.post("/reports/bulk", response_model=BulkResult, openapi_extra=BULK_JSON,
             responses={413: {"model": Problem}, 422: {"model": Problem}, 401: {"model": Problem}})
async def submit_bulk(request: Request, principal: Authenticated, ctx: Ctx) -> Response:
    """Up to 10,000 reports as a JSON array, one result per report in the same order
    (`index`): accepted, a duplicate of what is stored, or rejected with its reasons. One bad
    report does not refuse the others."""
    data = await request.body()
    limit = ctx.settings.bulk_max_items
    if len(data) > MAX_BULK_BYTES:
        return await _refuse_whole(ctx, principal, 413, submissions.too_many(limit),
                                   excerpt(data))
    items = submissions.read_bulk(data, principal, limit)
    if isinstance(items, tuple):
        return await _refuse_whole(ctx, principal, *items)
    return _bulk_answer(await submissions.submit_reports(ctx, items))


@router.post("/reports/bulk/csv", response_model=BulkResult, openapi_extra=BULK_CSV,
             responses={413: {"model": Problem}, 422: {"model": Problem}, 401: {"model": Problem}})
async def submit_bulk_csv(request: Request, principal: Authenticated, ctx: Ctx) -> Response:
    """Up to 10,000 reports as a CSV file (the request body, `text/csv`): columns `unit`,
    `day`, `reporter`, optional `report_id`, then one column per metric code (each row fills
    those of its unit type's form: `GET /v1/forms/{unit_type}/template.csv`). An empty cell is
    a metric not reported; a row with every metric empty is a zero report. One result per data
    row, in order."""
    data = await request.body()
    if len(data) > MAX_BULK_BYTES:
        return await _refuse_whole(ctx, principal, 413,
                                   submissions.too_many(ctx.settings.bulk_max_items),
                                   excerpt(data))
    try:
        rows = read_reports(data, ctx.settings.bulk_max_items)
    except CsvRefused as refused:
        status = 413 if refused.error.code == "too_many" else 422
        return await _refuse_whole(ctx, principal, status, refused.error, excerpt(data))
    items = []
    for payload, errors in rows:
        item = read(SubmitReport, payload, principal)
        if errors:
            item.parsed, item.errors = None, errors + item.errors
        items.append(item)
    return _bulk_answer(await submissions.submit_reports(ctx, items))


@router.post("/reports/{unit}/{day}/corrections", response_model=Receipt, status_code=201,
             responses={200: {"model": Receipt}, **REFUSED}, openapi_extra=body_of(CorrectReport))
async def correct_report(
        request: Request, unit: str,
        # Read as text: a day that is not a date is a refused submission, kept like any other.
        day: Annotated[str, Path(json_schema_extra={"format": "date"})],
        principal: Authenticated, ctx: Ctx) -> Response:
    """A new revision that replaces the latest everywhere downstream; the history keeps every
    revision with who sent it and why. Past the lock window (`ROLLCALL_LOCK_DAYS`) only an
    operator may correct. Send `revision` (latest + 1) or `report_id` to make retries safe."""
    item = read_json(CorrectionCommand, await request.body(), principal,
                     path={"unit": unit, "day": day})
    [outcome] = await submissions.correct_reports(ctx, [item])
    return _answer(outcome)


@router.get("/forms/{unit_type}/template.csv", responses={
    200: {"content": {"text/csv": {}}, "description": "the form's header"},
    401: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}})
async def form_template(
        unit_type: Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,39}$")],
        principal: Authenticated, ctx: Ctx) -> Response:
    """The bulk CSV's header for a unit type's form: the fixed columns, then its metrics."""
    form = ctx.catalogue.form_for(unit_type)
    if form is None:
        error = FieldError("unit_type", "unknown_unit_type", f"没有单位类型 {unit_type} 的报表",
                           f"no form for unit type {unit_type}")
        return JSONResponse(problem(404, [error]), status_code=404)
    return Response(template(form), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{form.code}-{unit_type}.csv"'})


def _may_read(principal: Principal, ctx: IngestContext, unit: str) -> None:
    info = ctx.reference.units.get(unit)
    if principal.kind == "unit":
        if unit != principal.scope:
            raise forbidden(unit)
    elif info is None or not any(principal.may_see(node) for _, node in info.placements):
        raise forbidden(unit)
    else:
        reaches_unit(principal, unit, info.sector)


@router.get("/units/{unit}/reports", response_model=list[Revision],
            responses={401: {"model": Problem}, 403: {"model": Problem}})
async def unit_reports(unit: str, principal: Authenticated, ctx: Ctx,
                       day: date | None = None) -> list[Revision]:
    """A unit's reports with every revision, newest day first: who sent each and why it was
    corrected."""
    _may_read(principal, ctx, unit)
    async with ctx.sessions() as session:
        rows = await ledger.history(session, unit, day)
    return [Revision(report_id=r.report_id, unit=r.unit_code, day=r.day, revision=r.revision,
                     values=ctx.catalogue.typed(r.values), zero=r.zero, late=r.late,
                     submitted_at=r.submitted_at, reporter=r.reporter, reason=r.reason,
                     actor=r.actor, note=r.note) for r in rows]


@router.get("/units/{unit}/sendbacks", response_model=list[SendbackNotice],
            responses={401: {"model": Problem}, 403: {"model": Problem}})
async def unit_sendbacks(unit: str, principal: Authenticated, ctx: Ctx,
                         day: date | None = None) -> list[SendbackNotice]:
    """退回: the unit's reports sent back by its town or county, with the reason, newest day
    first, those still waiting for a correction first. A correction of that day clears one
    (`cleared_revision`)."""
    _may_read(principal, ctx, unit)
    async with ctx.sessions() as session:
        return [SendbackNotice(status="open" if row["cleared_at"] is None else "cleared", **row)
                for row in await sendbacks.of_unit(session, unit, day)]


@router.get("/notes", response_model=list[ReportNote],
            responses={401: {"model": Problem}, 403: {"model": Problem}})
async def report_notes(principal: Authenticated, ctx: Ctx, node: str, day: date,
                       limit: Annotated[int, Query(ge=1, le=10_000)] = 1000
                       ) -> list[ReportNote]:
    """The notes units below `node` sent with their reports of `day` (the latest revision of
    each), for the drill-down and the daily summary: read beside the figures, never summed."""
    if not principal.may_see(node):
        raise forbidden(node, "node")
    async with ctx.sessions() as session:
        return [ReportNote(**row) for row in await ledger.notes(session, node, day, limit,
                                                                 principal.sector)]


cases = APIRouter(prefix="/v1", tags=["cases"])


@cases.post("/cases", response_model=CaseReceipt, status_code=201, responses={
    200: {"model": CaseReceipt, "description": "a retry: the stored case, nothing new"},
    **REFUSED}, openapi_extra=body_of(SubmitCase))
async def report_case(request: Request, principal: Authenticated, ctx: Ctx) -> Response:
    """A fever or flu-like case, as soon as it is found: it opens a two-hour clock. A case that
    arrives more than two hours after it was found is accepted and marked late. No names: the
    person is a pseudonymous reference."""
    item = read_json(SubmitCase, await request.body(), principal)
    [outcome] = await submissions.report_cases(ctx, [item])
    return _answer(outcome)


@cases.get("/units/{unit}/cases", response_model=list[CaseView],
           responses={401: {"model": Problem}, 403: {"model": Problem}})
async def unit_cases(unit: str, principal: Authenticated, ctx: Ctx,
                     since: Annotated[datetime | None, Query()] = None) -> list[CaseView]:
    """A unit's cases, most recently found first."""
    _may_read(principal, ctx, unit)
    async with ctx.sessions() as session:
        rows = await ledger.cases_of(session, unit, since)
    return [CaseView(case_id=c.case_id, unit=c.unit_code, kind=c.kind, found_at=c.found_at,
                     received_at=c.received_at, temperature=c.temperature,
                     symptoms=c.symptoms, person_ref=c.person_ref, late=c.late, actor=c.actor,
                     details=c.details or {}) for c in rows]


dhis2_router = APIRouter(prefix="/v1", tags=["dhis2"])
MAX_EXPORT_DAYS = 366


def _export_span(ctx: IngestContext, day: date | None, start: date | None,
                 end: date | None) -> tuple[date, date]:
    today = ctx.clock().astimezone(ctx.settings.zone).date()
    if day is not None and (start is not None or end is not None):
        raise Refused(422, [FieldError("day", "day_or_range", "日期与日期范围只能二选一",
                                       "give either day or start/end, not both")])
    start, end = (day, day) if day is not None else (start or end or today, end or today)
    if start > end:
        raise Refused(422, [FieldError("start", "start_after_end", "起始日期晚于结束日期",
                                       f"start {start} is after end {end}")])
    if (end - start).days + 1 > MAX_EXPORT_DAYS:
        raise Refused(422, [FieldError("start", "range_too_long",
                                       f"日期范围不能超过 {MAX_EXPORT_DAYS} 天",
                                       f"a range spans at most {MAX_EXPORT_DAYS} days")])
    return start, end


@dhis2_router.get("/export/dhis2/dataValueSets.{fmt}", responses={
    200: {"content": {"application/json": {}, "application/csv": {}},
          "description": "a DHIS2 data value set"},
    401: {"model": Problem}, 403: {"model": Problem}, 422: {"model": Problem}})
async def export_dhis2(
        fmt: dhis2.Format, principal: Territorial, ctx: Ctx,
        node: Annotated[str, Query(description="the units at or below this node")],
        day: date | None = None, start: date | None = None, end: date | None = None,
        unmapped: Annotated[dhis2.WhenUnmapped, Query(description=(
            "a metric or unit the mapping lacks: `refuse` the export (422, naming every "
            "code), or `skip` it (listed in the Rollcall-Unmapped header)"))] = "refuse",
) -> Response:
    """The units' own figures as a DHIS2 data value set (JSON or CSV): each unit's latest
    report below `node` for each day (`day`, or `start`–`end`), value by value, with its
    reporter (storedBy), first and latest arrival (created, lastUpdated) and note (comment).
    A node's rolled-up figures are exported by aggregate. Every sector's units: a sector
    operator's token is refused (`territorial_only`)."""
    try:
        level_of(node)
    except ValueError:
        raise refuse("bad_node", "node", node=node) from None
    if not principal.may_see(node):
        raise forbidden(node, "node")
    first, last = _export_span(ctx, day, start, end)
    figures = await dhis2_use.unit_figures(ctx, node, first, last)
    body, media, headers, errors = dhis2.rendered(figures, ctx.dhis2, fmt, unmapped,
                                                  f"rollcall-units-{node}-{first}-{last}")
    if body is None:
        return JSONResponse(problem(422, errors), status_code=422)
    return Response(body, media_type=media, headers=headers)


IMPORT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "required": ["dataValues"], "properties": {
        "dataValues": {"type": "array", "items": {"type": "object"}}}},
        "example": {"dataValues": [{"dataElement": "FTRrcoaog83", "period": "20260302",
                                    "orgUnit": "DiszpKrYNg8", "value": "2"}]}},
    "application/csv": {"schema": {"type": "string"}}}}}


@dhis2_router.post("/import/dhis2/dataValueSets", openapi_extra=IMPORT_BODY, responses={
    200: {"description": "DHIS2's WebMessage with its ImportSummary (status SUCCESS or "
                         "WARNING)"},
    409: {"description": "the ImportSummary when no value was written (status ERROR)"},
    401: {"model": Problem}, 403: {"model": Problem}, 413: {"model": Problem},
    422: {"model": Problem, "description": "not JSON, or not a DHIS2 CSV"}})
async def import_dhis2(request: Request, principal: Operator, ctx: Ctx) -> Response:
    """A DHIS2 data value set (JSON, or DHIS2's CSV as `application/csv` or `text/csv`) as
    reports: one per org unit (a reporting unit, by the mapping) and day (the daily period
    yyyyMMdd), through the same checks, idempotency and ledger as any submission. Answered
    with DHIS2's import summary: imported, updated and ignored values and a conflict for each
    value refused, the good ones kept. Importing the same payload again changes nothing."""
    data = await request.body()
    if len(data) > MAX_BULK_BYTES:
        return await _refuse_whole(ctx, principal, 413,
                                   submissions.too_many(dhis2_use.MAX_VALUES), excerpt(data))
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    payload: object
    if kind in ("application/csv", "text/csv"):
        try:
            payload = dhis2.from_csv(data.decode("utf-8-sig", "replace"))
        except dhis2.NotDhis2Csv as refused:
            return await _refuse_whole(ctx, principal, 422, refused.error, excerpt(data))
    else:
        try:
            payload = json.loads(data)
        except ValueError:
            return await _refuse_whole(ctx, principal, 422, INVALID_JSON, excerpt(data))
    summary = await dhis2_use.import_values(
        ctx, payload, principal, ctx.dhis2,
        "csv" if kind in ("application/csv", "text/csv") else "json")
    status, body = summary.web_message()
    return JSONResponse(body, status_code=status)


@dhis2_router.get("/import/dhis2/dataValueSets/{import_id}", responses={
    401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem}})
async def dhis2_import(import_id: UUID, principal: Operator, ctx: Ctx) -> dict:
    """An import as it was kept (its summary's `reference`): when, by whom, how many values,
    and DHIS2's import summary as it was answered. Operators whose area covers the importer's."""
    async with ctx.sessions() as session:
        row = await ledger.import_of(session, import_id)
    if row is None:
        raise refuse("unknown_import", "import_id", import_id=import_id)
    if not principal.may_see(row.scope):
        raise forbidden(str(import_id), "import_id")
    return {"import_id": row.import_id, "received_at": row.received_at, "actor": row.actor,
            "scope": row.scope, "format": row.format, "data_values": row.data_values,
            "status": row.status, "summary": row.summary}
