"""Alerts' bus edge: fever and flu-like cases, and accepted reports (outbreak counts, missing
reports resolved). Durable pull consumers; one transaction per batch holds the effect and the
record of what was applied; events go out through the outbox after commit.

A batch that fails (the database restarting, a connection cut mid-transaction) is handed back
for redelivery after a pause, never terminated: FastStream's default policy would TERM it, and
the cases in it would never open their alerts. Applying a batch twice changes nothing."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Annotated, TypeVar

from faststream import Context
from faststream.middlewares import AckPolicy as FsAckPolicy
from faststream.nats import NatsBroker, PullSub
from faststream.nats.message import NatsBatchMessage
from nats.js.api import AckPolicy, ConsumerConfig
from pydantic import BaseModel, ValidationError

from services.alerts import detection
from services.alerts.service import AlertsContext
from shared.bus import CASES, REPORTS
from shared.contracts import CaseReported, ReportAccepted

log = logging.getLogger(__name__)
E = TypeVar("E", bound=BaseModel)
RETRY_DELAY_S = 1.0


@contextlib.asynccontextmanager
async def _redelivered_on_failure(what: str, size: int) -> AsyncIterator[None]:
    """Re-raised after a pause: NACK_ON_ERROR hands the batch back, and a database that is down
    is not hammered meanwhile."""
    try:
        yield
    except Exception:
        log.exception("%s: batch of %d failed; redelivering", what, size)
        await asyncio.sleep(RETRY_DELAY_S)
        raise


async def _undecoded(message) -> None:
    """Batches are validated by the handler, once per message, from the raw bytes
    (FastStream would parse each as JSON first and validate the Python objects after)."""
    return None


async def _valid(message: NatsBatchMessage, model: type[E]) -> list[E]:
    """The batch's events; one that is not a `model` is logged whole and terminated (retrying
    cannot help), and NACK_ON_ERROR hands back only those not terminated."""
    events = []
    for raw in message.raw_message:
        try:
            events.append(model.model_validate_json(raw.data))
        except ValidationError as exc:
            log.error("not a %s on %s: %s; data=%r", model.__name__, raw.subject, exc,
                      raw.data[:2000])
            await raw.term()
    return events


def subscribe(broker: NatsBroker, ctx: AlertsContext) -> None:
    durable = ctx.settings.alerts_durable
    zone = ctx.settings.zone

    # Cases are few and urgent: small batches, short waits (case → open alert within 0.5 s).
    @broker.subscriber(
        "case.reported.>", stream=CASES, durable=f"{durable}-cases",
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=5_000, ack_wait=60),
        pull_sub=PullSub(batch_size=100, timeout=0.05, batch=True), decoder=_undecoded,
        ack_policy=FsAckPolicy.NACK_ON_ERROR)
    async def on_cases_reported(
            message: Annotated[NatsBatchMessage, Context("message")]) -> None:
        # Validated one by one: a malformed message is terminated alone, never handed back
        # with the batch (it would hold the fever cases beside it forever).
        events = await _valid(message, CaseReported)
        if not events:
            return
        async with (_redelivered_on_failure("cases", len(events)), ctx.sessions() as session,
                    session.begin()):
            await detection.apply_cases(session, events, ctx.rules, zone, ctx.clock())
        ctx.relay.wake()

    @broker.subscriber(
        "report.accepted.>", stream=REPORTS, durable=durable,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20_000,
                              ack_wait=60),
        pull_sub=PullSub(batch_size=1000, timeout=0.05, batch=True), decoder=_undecoded,
        ack_policy=FsAckPolicy.NACK_ON_ERROR)
    async def on_reports_accepted(
            message: Annotated[NatsBatchMessage, Context("message")]) -> None:
        events = await _valid(message, ReportAccepted)
        if not events:
            return
        async with (_redelivered_on_failure("reports", len(events)), ctx.sessions() as session,
                    session.begin()):
            changed = await detection.apply_reports(session, events, ctx.rules, zone,
                                                    ctx.clock())
        if changed:
            ctx.relay.wake()
