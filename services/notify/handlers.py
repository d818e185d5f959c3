"""Notify's bus edge: alert events from the ALERTS stream, on a durable pull consumer of its
own. One transaction per batch records the events as applied and the deliveries they make;
the batch is acknowledged after commit and the worker is woken to send.

A batch that fails (the database restarting) is handed back for redelivery after a pause,
never terminated; a message that is not an alert event is logged and terminated alone.
Taking a batch twice records nothing twice."""

import asyncio
import logging
from typing import Annotated

from faststream import Context
from faststream.middlewares import AckPolicy as FsAckPolicy
from faststream.nats import JStream, NatsBroker, PullSub
from faststream.nats.message import NatsBatchMessage
from nats.js.api import AckPolicy, ConsumerConfig
from pydantic import Field, TypeAdapter, ValidationError

from services.notify import intake
from services.notify.service import NotifyContext
from shared.contracts import AlertChanged

log = logging.getLogger(__name__)
ALERTS = JStream(name="ALERTS", declare=False)  # declared by shared/streams.py
EVENT = TypeAdapter(Annotated[AlertChanged, Field(discriminator="change")])
RETRY_DELAY_S = 1.0


async def _undecoded(message) -> None:
    """Validated by the handler, once per message, from the raw bytes."""
    return None


def subscribe(broker: NatsBroker, ctx: NotifyContext) -> None:
    @broker.subscriber(
        "alert.>", stream=ALERTS, durable=ctx.settings.notify_durable,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=5_000, ack_wait=60),
        pull_sub=PullSub(batch_size=100, timeout=0.05, batch=True), decoder=_undecoded,
        ack_policy=FsAckPolicy.NACK_ON_ERROR)
    async def on_alert_events(message: Annotated[NatsBatchMessage, Context("message")]) -> None:
        events = []
        for raw in message.raw_message:
            try:
                events.append(EVENT.validate_json(raw.data))
            except ValidationError as exc:
                log.error("not an alert event on %s: %s", raw.subject, exc)
                await raw.term()
        if not events:
            return
        try:
            async with ctx.sessions() as session, session.begin():
                await intake.take_alert_events(session, events, ctx.policy, ctx.channels,
                                               ctx.settings.zone, ctx.clock())
        except Exception:
            log.exception("alert events: batch of %d failed; redelivering", len(events))
            await asyncio.sleep(RETRY_DELAY_S)
            raise
        ctx.worker.wake()
