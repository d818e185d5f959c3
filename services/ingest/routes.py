"""Ingest's HTTP edge: validate, call the ledger, answer. No SQL and no business branching here."""

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.ingest import ledger
from services.ingest.intake import check_report, is_late, is_zero
from services.ingest.schemas import CorrectReport, Problem, Receipt, SubmitReport
from services.ingest.service import IngestContext
from shared.contracts import SubmissionRejected
from shared.errors import FieldError
from shared.observability import ACCEPTED, RECEIVED, REJECTED

router = APIRouter(prefix="/v1", tags=["reports"])


def context(request: Request) -> IngestContext:
    return request.app.state.ingest


Ctx = Annotated[IngestContext, Depends(context)]


class Refused(Exception):
    def __init__(self, status: int, detail: str, errors: list[FieldError], payload: dict,
                 unit: str | None) -> None:
        self.status, self.detail, self.errors, self.payload, self.unit = (
            status, detail, errors, payload, unit)


async def _submit(ctx: Ctx, unit_code: str, day: date, values: dict[str, float], reporter: str,
                  report_id: uuid.UUID | None, reason: str | None, payload: dict) -> Receipt:
    RECEIVED.labels("report").inc()
    now = ctx.clock()
    unit, errors = check_report(unit_code, day, values, reference=ctx.reference,
                                catalogue=ctx.catalogue, now=now, zone=ctx.settings.zone,
                                lock_days=ctx.settings.lock_days)
    if errors:
        raise Refused(422, "report refused", errors, payload, unit_code)
    assert unit is not None
    sub = ledger.Submission(unit=unit, day=day, values=values, zero=is_zero(values),
                            late=is_late(unit, day, now, ctx.settings.zone), reporter=reporter,
                            submitted_at=now, report_id=report_id, reason=reason)
    try:
        async with ctx.sessions() as session, session.begin():
            receipt = await ledger.record(session, sub)
    except ledger.AlreadyReported as exc:
        raise Refused(409, "already reported", [FieldError(
            "day", "already_reported", f"该单位当日已报告(第 {exc.args[0]} 版),请提交更正",
            f"this unit already reported for {day} (revision {exc.args[0]}); send a correction")],
            payload, unit_code) from None
    except ledger.NothingToCorrect:
        raise Refused(404, "nothing to correct", [FieldError(
            "day", "no_report", "该单位当日尚无报告,无法更正",
            f"this unit has no report for {day} to correct")], payload, unit_code) from None
    if receipt.status == "accepted":
        ACCEPTED.labels("report").inc()
        ctx.relay.wake()
    return receipt


@router.post("/reports", response_model=Receipt, status_code=201,
             responses={409: {"model": Problem}, 422: {"model": Problem}})
async def submit_report(body: SubmitReport, ctx: Ctx) -> Receipt:
    """Submit today's report; send empty or all-zero values for a zero report (零报告)."""
    return await _submit(ctx, body.unit, body.day, body.values, body.reporter, body.report_id,
                         None, body.model_dump(mode="json"))


@router.post("/reports/{unit}/{day}/corrections", response_model=Receipt, status_code=201,
             responses={404: {"model": Problem}, 422: {"model": Problem}})
async def correct_report(unit: str, day: date, body: CorrectReport, ctx: Ctx) -> Receipt:
    """A new revision that replaces the latest everywhere; the history keeps both, with why."""
    return await _submit(ctx, unit, day, body.values, body.reporter, body.report_id,
                         body.reason, body.model_dump(mode="json"))


@router.get("/units/{unit}/reports")
async def unit_reports(unit: str, ctx: Ctx, day: date | None = None) -> list[dict]:
    """A unit's reports with every revision, newest day first."""
    async with ctx.sessions() as session:
        rows = await ledger.history(session, unit, day)
    return [{"report_id": r.report_id, "day": r.day, "revision": r.revision, "values": r.values,
             "zero": r.zero, "late": r.late, "submitted_at": r.submitted_at,
             "reporter": r.reporter, "reason": r.reason} for r in rows]


async def _keep(ctx: IngestContext, refused: Refused) -> uuid.UUID:
    event = SubmissionRejected(
        rejection_id=uuid.uuid4(), kind="report", unit=refused.unit, received_at=ctx.clock(),
        errors=[e.as_dict() for e in refused.errors], payload=refused.payload)
    async with ctx.sessions() as session, session.begin():
        await ledger.reject(session, event)
    ctx.relay.wake()
    return event.rejection_id


async def on_refused(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    REJECTED.labels("report", exc.errors[0].code if exc.errors else "refused").inc()
    rejection_id = await _keep(context(request), exc)
    problem = Problem(detail=exc.detail, errors=[e.as_dict() for e in exc.errors],
                      rejection_id=rejection_id)
    return JSONResponse(problem.model_dump(mode="json"), status_code=exc.status)


async def on_invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """Malformed bodies are refused like any other bad report, and kept."""
    assert isinstance(exc, RequestValidationError)
    RECEIVED.labels("report").inc()
    errors = [FieldError(".".join(str(p) for p in err["loc"] if p != "body") or "body",
                         err["type"], err["msg"], err["msg"]) for err in exc.errors()]
    try:
        body = await request.json()
    except ValueError:
        body = {"raw": (await request.body()).decode("utf-8", "replace")[:10_000]}
    payload = body if isinstance(body, dict) else {"body": body}
    unit = payload.get("unit") if isinstance(payload.get("unit"), str) else None
    return await on_refused(request, Refused(422, "invalid request", errors, payload, unit))


