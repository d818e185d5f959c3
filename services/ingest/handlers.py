"""Ingest's bus edge: what gateways publish to the submit subjects is handled exactly as over
HTTP. The SUBMISSIONS stream holds each message until its outcome is committed, so a gateway's
publish, once acknowledged by the server, survives an ingest crash or restart.

- `report.submit[.…]`: a daily or zero report (the body of `POST /v1/reports`), or a batch of
  them as a JSON array (the body of `POST /v1/reports/bulk`, at most `ROLLCALL_BULK_MAX_ITEMS`),
  answered with one result per report as the bulk call is
- `report.correct[.…]`: a correction (the body of a correction, with `unit` and `day`)
- `case.submit[.…]`: a fever or flu-like case (the body of `POST /v1/cases`)

The credential travels in an `Authorization: Bearer …` header. A `reply_to` header asks for the
outcome (the same JSON as one result of a bulk request). Refused messages are kept and published
on `report.rejected.<unit>` / `case.rejected.<unit>` like any refusal.
"""

import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence

import orjson
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from pydantic import BaseModel, ValidationError

from services.ingest import sendbacks, submissions
from services.ingest.schemas import CorrectionCommand, SubmitCase, SubmitReport
from services.ingest.service import IngestContext
from services.ingest.submissions import Incoming, Outcome, read
from shared.consumer import BatchConsumer
from shared.contracts import CASE_SUBMIT, REPORT_CORRECT, REPORT_SUBMIT, SignoffChanged
from shared.errors import FieldError
from shared.http_auth import token_from_header
from shared.streams import SIGNOFF, SUBMISSIONS

log = logging.getLogger(__name__)

DURABLE = "ingest-submissions"
_REJECTIONS = uuid.UUID("6f1c2a52-4f43-4c1e-9b7e-2f0d6c1b9a11")

Handler = Callable[[IngestContext, Sequence[Incoming]], Awaitable[list[Outcome]]]
KINDS: dict[str, tuple[type[BaseModel], Handler, str]] = {
    REPORT_SUBMIT: (SubmitReport, submissions.submit_reports, "report"),
    REPORT_CORRECT: (CorrectionCommand, submissions.correct_reports, "report"),
    CASE_SUBMIT: (SubmitCase, submissions.report_cases, "case"),
}


def command_of(subject: str) -> str:
    """`report.submit` for `report.submit` and for `report.submit.430621`."""
    return ".".join(subject.split(".")[:2])


def rejection_id_of(msg: Msg, index: int | None = None) -> uuid.UUID:
    """Named after the message's place in the stream (and the item's in a batch), so that a
    redelivery keeps one."""
    try:
        meta = msg.metadata
    except Exception:  # not a JetStream message: no stable position
        return uuid.uuid4()
    key = f"{meta.stream}:{meta.sequence.stream}:{meta.timestamp.isoformat()}"
    return uuid.uuid5(_REJECTIONS, key if index is None else f"{key}:{index}")


def is_batch(data: bytes) -> bool:
    """A `report.submit` message holding a JSON array: a batch of reports."""
    return data.lstrip()[:1] == b"["


def batch_of(msg: Msg, principal, limit: int) -> tuple[list[Incoming], bool]:
    """The reports of a batch message, read as a bulk request's, and True; or, for a batch
    refused whole (not JSON, too many), one refused item and False (answered as one)."""
    items = submissions.read_bulk(msg.data, principal, limit, "bus",
                                  lambda i: rejection_id_of(msg, i))
    if isinstance(items, tuple):
        status, error, payload = items
        return [Incoming(payload, None, principal, [error], status, source="bus",
                         rejection_id=lambda: rejection_id_of(msg))], False
    return items, True


def incoming_of(msg: Msg, model: type[BaseModel], principal) -> Incoming:
    def rejection_id() -> uuid.UUID:  # only a refused message needs one
        return rejection_id_of(msg)

    try:
        # The common case in one step: JSON parsed and checked by pydantic's own parser.
        return Incoming(None, model.model_validate_json(msg.data), principal,  # type: ignore[arg-type]
                        source="bus", rejection_id=rejection_id)
    except ValidationError:
        pass
    try:
        payload = json.loads(msg.data)
    except ValueError:
        raw = {"raw": msg.data[:10_000].decode("utf-8", "replace"), "subject": msg.subject}
        return Incoming(raw, None, principal, [FieldError(
            "body", "invalid_json", "不是有效的 JSON", "not valid JSON")], source="bus",
            rejection_id=rejection_id)
    return read(model, payload, principal, "bus", rejection_id)


def reply_body(outcome: Outcome) -> bytes:
    body: dict = {"status": outcome.status, "code": outcome.code}
    if outcome.receipt is not None:
        body.update(outcome.receipt.model_dump(mode="json"))
    else:
        body.update(outcome.problem())
        if outcome.retry_after:  # sent too fast (429): when the unit may send again
            body["retry_after"] = outcome.retry_after
    return json.dumps(body, ensure_ascii=False).encode()


def _header(msg: Msg, name: str) -> str | None:
    headers = msg.headers
    if not headers:
        return None
    found = headers.get(name) or headers.get(name.lower())
    if found is None:  # any other spelling of the name
        found = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return found


async def handle(ctx: IngestContext, msgs: Sequence[Msg],
                 reply: Callable[[str, bytes], Awaitable[None]]) -> None:
    """One command's messages of a batch, in one transaction of its use case, then answered.
    A credential store that does not answer fails them all: the consumer hands them back."""
    command = command_of(msgs[0].subject)
    items: list[Incoming] = []
    spans = []  # per message: where its items start, how many, and whether it was a batch
    for msg in msgs:
        principal = await ctx.authenticator.principal(
            token_from_header(_header(msg, "Authorization")))
        start, many = len(items), False
        if command == REPORT_SUBMIT and is_batch(msg.data):
            batch, many = batch_of(msg, principal, ctx.settings.bulk_max_items)
            items += batch
        elif command in KINDS:
            items.append(incoming_of(msg, KINDS[command][0], principal))
        else:  # the stream captures only the submit subjects; kept all the same
            items.append(Incoming({"subject": msg.subject}, None, principal, [FieldError(
                "subject", "unknown_subject", f"未知主题 {msg.subject}",
                f"unknown subject {msg.subject}")], source="bus"))
        spans.append((msg, start, len(items) - start, many))
    outcomes: list[Outcome] = []
    for chunk in _chunks(spans, ctx.settings.bulk_max_items):
        # Batch messages make a fetch of many reports: transactions of at most a bulk
        # request's size (a redelivery after a failure finds the earlier ones stored).
        part = items[chunk[0][1]:chunk[-1][1] + chunk[-1][2]]
        if command in KINDS:
            outcomes += await KINDS[command][1](ctx, part)
        else:
            outcomes += await submissions.keep_refused(ctx, part, "report")
    for msg, start, count, batch in spans:
        if reply_to := _header(msg, "reply_to"):
            await reply(reply_to, orjson.dumps(submissions.bulk_result(
                outcomes[start:start + count])) if batch else reply_body(outcomes[start]))


def _chunks(spans: list, most: int) -> list[list]:
    """Consecutive messages whose items add up to at most `most` (a larger one alone)."""
    chunks: list[list] = []
    size = 0
    for span in spans:
        if not chunks or size + span[2] > most:
            chunks.append([])
            size = 0
        chunks[-1].append(span)
        size += span[2]
    return chunks


def consumers(nc: NatsClient, ctx: IngestContext) -> list[BatchConsumer]:
    """One durable pull consumer over the whole work-queue stream (replicas share it), one
    batch at a time: no batch overtakes the one before it. A batch is handled per command, in
    the order each first appears, each acknowledged or handed back on its own."""
    async def reply(subject: str, body: bytes) -> None:
        try:
            await nc.publish(subject, body, headers={"content-type": "application/json"})
        except Exception:  # the outcome is committed; a lost reply is the publisher's retry
            log.warning("could not reply on %s", subject, exc_info=True)

    async def on_submissions(msgs: list[Msg]) -> None:
        await handle(ctx, msgs, reply)

    async def on_signoff(events: list[SignoffChanged]) -> None:
        async with ctx.sessions() as session, session.begin():
            await sendbacks.take(session, events)

    return [BatchConsumer(
        nc, name="ingest-submissions", stream=SUBMISSIONS, durable=DURABLE,
        handle=on_submissions, split=lambda msg: command_of(msg.subject),
        batch=ctx.settings.submit_batch, ack_wait=ctx.settings.submit_ack_wait_s),
        # What signoff said of a unit's reports (sent back, cleared), shown to the unit.
        BatchConsumer(nc, name="ingest-signoff", stream=SIGNOFF,
                      durable=ctx.settings.ingest_signoff_durable,
                      subjects=["signoff.sent_back.>", "signoff.cleared.>"],
                      handle=on_signoff,
                      decode=lambda msg: SignoffChanged.model_validate_json(msg.data),
                      batch=500)]
