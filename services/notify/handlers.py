"""Notify's bus edge: alert events from the ALERTS stream, scheduled editions from EDITIONS
(the node's people on duty hear one is out), and accepted reports (who has reported, not to be
reminded), on durable pull consumers of its own, run by the shared batch
consumer (`shared/consumer.py`). One transaction per batch records the events as applied and the
deliveries they make; the batch is acknowledged after commit and the worker is woken to send.
A batch that fails is handed back, never terminated; a message that is not the event expected
is terminated alone (logged without its data: it may name a person). Taking a batch twice
records nothing twice."""

from typing import Annotated

from nats.aio.client import Client as NatsClient
from pydantic import Field, TypeAdapter

from services.notify import intake, reminders
from services.notify.service import NotifyContext
from shared.consumer import BatchConsumer
from shared.contracts import AlertChanged, EditionPublished, ReportAccepted, reports_of
from shared.streams import ALERTS, EDITIONS, REPORTS

ALERT_EVENT = TypeAdapter(Annotated[AlertChanged, Field(discriminator="change")])


def consumers(nc: NatsClient, ctx: NotifyContext) -> list[BatchConsumer]:
    durable = ctx.settings.notify_durable

    async def on_alert_events(events: list[AlertChanged]) -> None:
        async with ctx.sessions() as session, session.begin():
            await intake.take_alert_events(session, events, ctx.policy, ctx.channels,
                                           ctx.settings.zone, ctx.clock())
        ctx.worker.wake()
        if ctx.relay is not None:  # nobody to tell is an outcome already: its event
            ctx.relay.wake()

    async def on_editions(events: list[EditionPublished]) -> None:
        async with ctx.sessions() as session, session.begin():
            await intake.take_editions(session, events, ctx.policy, ctx.channels,
                                       ctx.settings.zone, ctx.clock(), ctx.settings.console_url)
        ctx.worker.wake()

    async def on_reports_accepted(messages: list[list[ReportAccepted]]) -> None:
        events = [report for reports in messages for report in reports]
        async with ctx.sessions() as session, session.begin():
            await reminders.record_reports(session, events)

    # The durables start at the streams' end when first created: notify added to a running
    # system tells nobody of alerts that were handled, or editions made, before it existed.
    return [
        BatchConsumer(nc, name="notify-alerts", stream=ALERTS, durable=durable,
                      subjects=["alert.>"], handle=on_alert_events,
                      decode=lambda msg: ALERT_EVENT.validate_json(msg.data),
                      batch=100, max_ack_pending=5_000, log_data=False, only_new=True),
        BatchConsumer(nc, name="notify-editions", stream=EDITIONS,
                      durable=f"{durable}-editions", subjects=["edition.published.>"],
                      handle=on_editions,
                      decode=lambda msg: EditionPublished.model_validate_json(msg.data),
                      batch=100, log_data=False, only_new=True),
        BatchConsumer(nc, name="notify-reports", stream=REPORTS, durable=f"{durable}-reports",
                      subjects=["report.accepted.>"], handle=on_reports_accepted,
                      decode=reports_of,
                      batch=1000, log_data=False, only_new=True),
    ]
