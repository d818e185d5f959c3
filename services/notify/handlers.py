"""Notify's bus edge: alert events from the ALERTS stream, and accepted reports (who has
reported, not to be reminded), on durable pull consumers of its own. One transaction per batch
records the events as applied and the deliveries they make; the batch is acknowledged after
commit and the worker is woken to send.

A batch that fails (the database restarting) is handed back for redelivery after a pause,
never terminated; a message that is not the event expected is logged and terminated alone.
Taking a batch twice records nothing twice."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Annotated, TypeVar

from faststream import Context
from faststream.middlewares import AckPolicy as FsAckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.message import NatsBatchMessage
from nats.js.api import AckPolicy, ConsumerConfig
from pydantic import Field, TypeAdapter, ValidationError

from services.notify import intake, reminders
from services.notify.service import NotifyContext
from shared.bus import REPORTS
from shared.contracts import AlertChanged, ReportAccepted

log = logging.getLogger(__name__)
ALERTS = JStream(name="ALERTS", declare=False)  # declared by shared/streams.py
ALERT_EVENT = TypeAdapter(Annotated[AlertChanged, Field(discriminator="change")])
RETRY_DELAY_S = 1.0
E = TypeVar("E")


async def _undecoded(message) -> None:
    """Validated by the handler, once per message, from the raw bytes."""
    return None


async def _valid(message: NatsBatchMessage, validate: Callable[[bytes], E], what: str
                 ) -> list[E]:
    events = []
    for raw in message.raw_message:
        try:
            events.append(validate(raw.data))
        except ValidationError as exc:
            log.error("not %s on %s: %s", what, raw.subject, exc)
            await raw.term()
    return events


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


def subscribe(broker: NatsBroker, ctx: NotifyContext) -> None:
    durable = ctx.settings.notify_durable

    @broker.subscriber(
        "alert.>", stream=ALERTS, durable=durable,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=5_000, ack_wait=60),
        pull_sub=PullSub(batch_size=100, timeout=0.05, batch=True), decoder=_undecoded,
        ack_policy=FsAckPolicy.NACK_ON_ERROR)
    async def on_alert_events(message: Annotated[NatsBatchMessage, Context("message")]) -> None:
        events = await _valid(message, ALERT_EVENT.validate_json, "an alert event")
        if not events:
            return
        async with (_redelivered_on_failure("alert events", len(events)),
                    ctx.sessions() as session, session.begin()):
            await intake.take_alert_events(session, events, ctx.policy, ctx.channels,
                                           ctx.settings.zone, ctx.clock())
        ctx.worker.wake()

    @broker.subscriber(
        "report.accepted.>", stream=REPORTS, durable=f"{durable}-reports",
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20_000,
                              ack_wait=60),
        pull_sub=PullSub(batch_size=1000, timeout=0.05, batch=True), decoder=_undecoded,
        ack_policy=FsAckPolicy.NACK_ON_ERROR)
    async def on_reports_accepted(
            message: Annotated[NatsBatchMessage, Context("message")]) -> None:
        events = await _valid(message, ReportAccepted.model_validate_json, "a ReportAccepted")
        if not events:
            return
        async with (_redelivered_on_failure("reports", len(events)),
                    ctx.sessions() as session, session.begin()):
            await reminders.record_reports(session, events)
