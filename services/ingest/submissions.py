"""What ingest does with what units send, whichever door it came through (one report, a bulk
request, the bus): check it, store it with its event, or refuse it and keep the refusal.

Each call is one unit of work: every item's outcome, the stored rows, their events and the kept
rejections commit together, and then the relay is woken to publish.
"""

import contextlib
import json
import math
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from typing import Literal

from pydantic import BaseModel, TypeAdapter, ValidationError

from services.ingest import intake, ledger
from services.ingest.schemas import (
    CaseReceipt,
    CorrectionCommand,
    Receipt,
    SubmitCase,
    SubmitReport,
)
from services.ingest.service import IngestContext
from shared import deadlines
from shared.auth import Principal
from shared.contracts import CaseReported, SubmissionRejected
from shared.errors import FieldError
from shared.observability import ACCEPTED, RECEIVED, REJECTED
from shared.problems import from_pydantic
from shared.refusals import Refused, problem, refusal
from shared.registry.reference import UnitInfo

Source = Literal["http", "bus"]


@dataclass(slots=True)
class Incoming:
    """One submission as received: its payload (kept if refused; None when `parsed` says it
    all) and its parsed form, or the reasons it could not be read."""

    payload: dict | None
    parsed: SubmitReport | CorrectionCommand | SubmitCase | None
    principal: Principal | None
    errors: list[FieldError] = field(default_factory=list)
    status: int = 422
    source: Source = "http"
    # Set by the bus from the message's stream position, so a redelivery keeps one rejection.
    rejection_id: Callable[[], uuid.UUID] | None = None


@dataclass(slots=True)
class Outcome:
    status: Literal["accepted", "duplicate", "rejected"]
    code: int  # the HTTP status that says it
    receipt: Receipt | CaseReceipt | None = None
    errors: list[FieldError] = field(default_factory=list)
    rejection_id: uuid.UUID | None = None
    retry_after: int | None = None  # seconds, when refused for sending too fast (429)

    def problem(self) -> dict:
        return problem(self.code, self.errors,
                       rejection_id=str(self.rejection_id) if self.rejection_id else None)


[INVALID_JSON] = from_pydantic([{"type": "json_invalid", "loc": ()}])


def read(model: type[BaseModel], payload: object, principal: Principal | None,
         source: Source = "http", rejection_id: Callable[[], uuid.UUID] | None = None,
         path: Mapping[str, object] | None = None) -> Incoming:
    """A payload as received, parsed into `model` or with every reason it cannot be. `path`:
    fields the address gives (a correction's unit and day), which the body may not repeat."""
    if not isinstance(payload, dict):
        return Incoming({"body": payload, **(path or {})}, None, principal, [FieldError(
            "body", "not_an_object", "每份报送须为一个 JSON 对象",
            "each submission is a JSON object")], source=source, rejection_id=rejection_id)
    errors = from_pydantic([{"type": "extra_forbidden", "loc": (name,), "msg": ""}
                            for name in path or () if name in payload])
    whole = {**payload, **path} if path else payload
    try:
        parsed = model.model_validate(whole)
    except ValidationError as exc:
        errors += from_pydantic(exc.errors(), skip=())
    if errors:
        return Incoming({**payload, **(path or {})}, None, principal, errors, source=source,
                        rejection_id=rejection_id)
    return Incoming(whole, parsed, principal, source=source,  # type: ignore[arg-type]
                    rejection_id=rejection_id)


def read_json(model: type[BaseModel], data: bytes, principal: Principal | None,
              source: Source = "http", rejection_id: Callable[[], uuid.UUID] | None = None,
              path: Mapping[str, object] | None = None) -> Incoming:
    """A body as received (bytes), parsed into `model` or with every reason it cannot be: a body
    that is not even JSON is a submission too, refused and kept with an excerpt of it."""
    if not path:
        try:  # the common case in one step: JSON parsed and checked by pydantic's own parser
            return Incoming(None, model.model_validate_json(data), principal,  # type: ignore[arg-type]
                            source=source, rejection_id=rejection_id)
        except ValidationError:
            pass
    try:
        payload = json.loads(data)
    except ValueError:
        return Incoming({**excerpt(data), **(path or {})}, None, principal, [INVALID_JSON],
                        source=source, rejection_id=rejection_id)
    return read(model, payload, principal, source, rejection_id, path)


BULK = TypeAdapter(list[SubmitReport])
NOT_A_LIST = FieldError("body", "not_a_list", "批量报送须为 JSON 数组",
                        "a bulk request is a JSON array")


def too_many(limit: int) -> FieldError:
    return FieldError("body", "too_many", f"一次最多 {limit} 份报告",
                      f"at most {limit} reports in one request")


def read_bulk(data: bytes, principal: Principal | None, limit: int, source: Source = "http",
              rejection_id: Callable[[int], uuid.UUID] | None = None
              ) -> list[Incoming] | tuple[int, FieldError, dict]:
    """A JSON array of reports (a bulk request, or a batch published on `report.submit`): one
    item per report, a malformed one refused alone; or, when the whole body is refused (not
    JSON, not an array, too many), its status, reason and what to keep of it. `rejection_id`
    names the refusal of the item at an index (the bus: stable across redeliveries)."""
    def named(i: int) -> Callable[[], uuid.UUID] | None:
        return (lambda: rejection_id(i)) if rejection_id else None

    try:
        items = [Incoming(None, report, principal, source=source, rejection_id=named(i))
                 for i, report in enumerate(BULK.validate_json(data))]
    except ValidationError:
        # Some report is malformed: read them one by one, so the others still go in.
        try:
            body = json.loads(data)
        except ValueError:
            return 422, INVALID_JSON, excerpt(data)
        if not isinstance(body, list):
            return 422, NOT_A_LIST, {"body": body}
        items = [read(SubmitReport, payload, principal, source, named(i))
                 for i, payload in enumerate(body)]
    if len(items) > limit:
        return 413, too_many(limit), {"items": len(items)}
    return items


def bulk_result(outcomes: Sequence["Outcome"]) -> dict:
    """The answer to a batch: the counts, and one result per report in order (`index`).
    Built by hand: 10,000 results through a response model cost more than the whole insert."""
    results = []
    counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
    for i, o in enumerate(outcomes):
        counts[o.status] += 1
        r = o.receipt
        if r is not None:
            assert isinstance(r, Receipt)
            results.append({"index": i, "status": o.status, "code": o.code,
                            "report_id": str(r.report_id), "unit": r.unit,
                            "day": r.day.isoformat(), "revision": r.revision, "zero": r.zero,
                            "late": r.late})
        else:
            result = {"index": i, "status": o.status, "code": o.code,
                      "errors": [e.as_dict() for e in o.errors],
                      "rejection_id": str(o.rejection_id)}
            if o.retry_after:  # sent too fast (429): when the unit may send again
                result["retry_after"] = o.retry_after
            results.append(result)
    return {**counts, "results": results}


def excerpt(data: bytes) -> dict:
    """What is kept of a body that cannot be read: its start, and its size."""
    return {"raw": data[:10_000].decode("utf-8", "replace"), "bytes": len(data)}


def actor_of(principal: Principal | None) -> str | None:
    return f"{principal.kind}:{principal.holder}"[:120] if principal else None


class _Batch:
    """Outcomes in request order, and the refusals to keep."""

    def __init__(self, items: Sequence[Incoming], kind: Literal["report", "case"],
                 ctx: IngestContext) -> None:
        self.items, self.kind, self.ctx = items, kind, ctx
        self.outcomes: list[Outcome | None] = [None] * len(items)
        self.rejections: list[ledger.Rejection] = []
        self.now = ctx.clock()
        self.charged: list[str] = []  # units whose rate budget this batch spent
        self._late: dict[tuple, bool] = {}  # (day, cutoff) → late: thousands share a few

    def admissible(self, i: int) -> bool:
        """Whether item i was read and comes with a credential; refuses it otherwise."""
        item = self.items[i]
        if item.errors:
            self.refuse(i, item.status, item.errors)
        elif item.principal is None:
            self.refuse(i, 401, [refusal("unauthenticated", "authorization")])
        else:
            return item.parsed is not None
        return False

    def refuse(self, i: int, status: int, errors: list[FieldError]) -> None:
        item = self.items[i]
        payload = item.payload
        if payload is None:
            # What was sent, field for field (defaults it left out stay out).
            payload = (item.parsed.model_dump(mode="json", exclude_unset=True)
                       if item.parsed is not None else {})
        unit = getattr(item.parsed, "unit", None) or payload.get("unit")
        event = SubmissionRejected(
            rejection_id=item.rejection_id() if item.rejection_id else uuid.uuid4(),
            kind=self.kind,
            unit=unit if isinstance(unit, str) else None, received_at=self.now,
            errors=[e.as_dict() for e in errors], payload=ledger.jsonable(payload))
        principal = item.principal
        self.rejections.append(ledger.Rejection(
            event, principal.credential_id if principal else None, actor_of(principal),
            item.source))
        self.outcomes[i] = Outcome("rejected", status, errors=errors,
                                   rejection_id=event.rejection_id)

    def report_unit(self, i: int, body: SubmitReport | CorrectionCommand,
                    principal: Principal) -> UnitInfo | None:
        """The unit of a report or correction that passed the door's checks and the unit's rate
        limit; None, with item i refused, otherwise."""
        unit, status, errors = _check(self.ctx, principal, body.unit, body.day, body.values,
                                      self.now, body.note)
        if status != 403 and unit is not None and self.throttled(i, body.unit):
            return None
        if errors:
            self.refuse(i, status, errors)
            return None
        return unit

    def throttled(self, i: int, unit: str) -> bool:
        """Whether the unit has sent too much lately; refuses item i (429) if so. Asked only
        once the credential may act for the unit, so nobody can spend another unit's budget."""
        limiter = self.ctx.limiter
        wait = limiter.take(unit)
        if wait is None:
            self.charged.append(unit)
            return False
        self.refuse(i, 429, [limiter.refusal(unit, wait)])
        outcome = self.outcomes[i]
        assert outcome is not None
        outcome.retry_after = max(1, math.ceil(wait))
        return True

    def report(self, i: int) -> ledger.Submission | None:
        """Item i (a report or a correction) ready to store; None, with item i refused, when it
        may not be stored."""
        if not self.admissible(i):
            return None
        body, principal = self.items[i].parsed, self.items[i].principal
        assert isinstance(body, SubmitReport | CorrectionCommand) and principal is not None
        if (unit := self.report_unit(i, body, principal)) is None:
            return None
        values = self.ctx.catalogue.typed(body.values)  # 2, not 2.0, stored and published
        # A correction's timeliness is its first report's, decided when it is stored.
        correction = body if isinstance(body, CorrectionCommand) else None
        late = correction is None and self.late(body.day, unit.cutoff)
        return ledger.Submission(
            unit=unit, day=body.day, values=values, zero=intake.is_zero(values), late=late,
            reporter=body.reporter, submitted_at=self.now, report_id=body.report_id,
            reason=correction.reason if correction else None,
            revision=correction.revision if correction else None,
            credential_id=principal.credential_id, actor=actor_of(principal), note=body.note)

    def late(self, day: date, cutoff: time) -> bool:
        """迟报: a report of `day` now, from a unit with this cutoff (`deadlines`' rule)."""
        key = (day, cutoff)
        if (late := self._late.get(key)) is None:
            late = self._late[key] = deadlines.report_is_late(day, cutoff, self.now,
                                                              self.ctx.settings.zone)
        return late

    def settle(self, i: int, result: Receipt | CaseReceipt | Refused) -> None:
        if isinstance(result, Refused):
            self.refuse(i, result.status, result.errors)
        else:
            self.outcomes[i] = Outcome(result.status, 201 if result.status == "accepted" else 200,
                                       receipt=result)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator:
        """The batch's transaction. If it does not commit (the database is down, say), what the
        batch spent of the units' rate budgets is given back: the retry that follows an outage
        must not be refused as too fast."""
        try:
            async with self.ctx.sessions() as session, session.begin():
                yield session
        except BaseException:
            for unit in self.charged:
                self.ctx.limiter.give_back(unit)
            self.charged.clear()
            raise

    async def keep_rejections(self, session) -> None:
        await ledger.reject_many(session, self.rejections)

    def done(self) -> list[Outcome]:
        self.ctx.relay.wake()
        assert all(o is not None for o in self.outcomes)
        RECEIVED.labels(self.kind).inc(len(self.outcomes))
        # Counted here and added once: a bulk request holds thousands.
        accepted, refused = 0, Counter[str]()
        for outcome in self.outcomes:
            if outcome.status == "accepted":
                accepted += 1
            elif outcome.status == "rejected":
                refused[outcome.errors[0].code if outcome.errors else "refused"] += 1
        if accepted:
            ACCEPTED.labels(self.kind).inc(accepted)
        for code, n in refused.items():
            REJECTED.labels(self.kind, code).inc(n)
        return self.outcomes  # type: ignore[return-value]


def _check(ctx: IngestContext, principal: Principal, unit_code: str, day, values, now,
           note: str | None = None) -> tuple[object, int, list[FieldError]]:
    unit, errors = intake.check_report(
        unit_code, day, values, reference=ctx.reference, catalogue=ctx.catalogue, now=now,
        zone=ctx.settings.zone, lock_days=ctx.settings.lock_days,
        unlocked=principal.kind == "operator", note=note)
    # A credential that may not write for the unit learns nothing more about the report.
    if (denied := intake.check_access(principal, unit_code, unit, day)) is not None:
        return unit, 403, [denied]
    return unit, 422, errors


async def submit_reports(ctx: IngestContext, items: Sequence[Incoming]) -> list[Outcome]:
    """First reports and zero reports (零报告), any number in one transaction. A retry answers
    with what is stored; a different report for a day already reported is refused."""
    batch = _Batch(items, "report", ctx)
    subs: list[ledger.Submission] = []
    where: list[int] = []
    for i in range(len(items)):
        if (sub := batch.report(i)) is not None:
            subs.append(sub)
            where.append(i)
    async with batch.transaction() as session:
        if subs:
            for i, result in zip(where, await ledger.record_first_reports(session, subs),
                                 strict=True):
                batch.settle(i, result)
        await batch.keep_rejections(session)
    return batch.done()


async def correct_reports(ctx: IngestContext, items: Sequence[Incoming]) -> list[Outcome]:
    """Corrections: each a new revision replacing the latest, with who and why. Past the lock
    window only an operator may correct."""
    batch = _Batch(items, "report", ctx)
    async with batch.transaction() as session:
        for i in range(len(items)):
            if (sub := batch.report(i)) is not None:
                batch.settle(i, await ledger.record_correction(session, sub))
        await batch.keep_rejections(session)
    return batch.done()


async def report_cases(ctx: IngestContext, items: Sequence[Incoming]) -> list[Outcome]:
    """Fever and flu-like cases; late when found more than two hours before they arrived."""
    batch = _Batch(items, "case", ctx)
    settings = ctx.settings
    cases: list[ledger.Case] = []
    where: list[int] = []
    for i, item in enumerate(items):
        if not batch.admissible(i):
            continue
        body, principal = item.parsed, item.principal
        assert isinstance(body, SubmitCase) and principal is not None
        found_at = body.found_at
        if found_at.tzinfo is None:
            found_at = found_at.replace(tzinfo=settings.zone)  # local time, as clinics write it
        unit, errors = intake.check_case(
            body.unit, body.kind, found_at, body.temperature, body.person_ref, body.symptoms,
            reference=ctx.reference, now=batch.now, zone=settings.zone,
            lock_days=settings.lock_days, unlocked=principal.kind == "operator",
            fever_threshold=settings.fever_threshold_c,
            clock_skew=timedelta(seconds=settings.clock_skew_s),
            second_temperature=body.second_temperature)
        found_day = deadlines.local_day(found_at, settings.zone)
        if (denied := intake.check_access(principal, body.unit, unit, found_day)) is not None:
            batch.refuse(i, 403, [denied])
            continue
        if unit is not None and batch.throttled(i, body.unit):
            continue
        if errors:
            batch.refuse(i, 422, errors)
            continue
        assert unit is not None
        deadline = deadlines.case_deadline(found_at, body.kind, unit.unit_type, ctx.rules)
        # Built from values already checked: construct without validating again.
        event = CaseReported.model_construct(
            case_id=body.case_id or uuid.uuid4(), unit=unit.code, node=unit.node_on(found_day),
            unit_type=unit.unit_type, sector=unit.sector, kind=body.kind, found_at=found_at,
            received_at=batch.now, temperature=body.temperature, symptoms=list(body.symptoms),
            person_ref=body.person_ref, late=deadlines.is_past(deadline, batch.now),
            actor=actor_of(principal))
        cases.append(ledger.Case(event, deadline, id_chosen=body.case_id is not None,
                                 credential_id=principal.credential_id,
                                 details=body.details() or None))
        where.append(i)
    async with batch.transaction() as session:
        if cases:
            for i, result in zip(where, await ledger.record_cases(session, cases), strict=True):
                batch.settle(i, result)
        await batch.keep_rejections(session)
    return batch.done()


async def keep_refused(ctx: IngestContext, items: Sequence[Incoming],
                       kind: Literal["report", "case"]) -> list[Outcome]:
    """Items refused before they could be read (malformed, unauthenticated): kept all the same."""
    batch = _Batch(items, kind, ctx)
    for i, item in enumerate(items):
        batch.refuse(i, item.status if item.errors else 401,
                     item.errors or [refusal("unauthenticated", "authorization")])
    async with batch.transaction() as session:
        await batch.keep_rejections(session)
    return batch.done()
