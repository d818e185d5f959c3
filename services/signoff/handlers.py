"""Signoff's bus edge: accepted reports (REPORTS stream, its own durable), taken in batches by
the shared consumer (`shared/consumer.py`). One transaction per batch stores the unit-days'
newest revisions, clears the send-backs they answer and reopens the confirmations they touch,
with the audit entries and their events (the outbox); the batch is acknowledged after commit.
Taking a batch twice changes nothing: only a newer revision of a unit-day counts."""

from nats.aio.client import Client as NatsClient

from services.signoff import desk
from services.signoff.service import SignoffContext
from shared.consumer import BatchConsumer
from shared.contracts import ReportAccepted
from shared.streams import REPORTS


def consumers(nc: NatsClient, ctx: SignoffContext) -> list[BatchConsumer]:
    async def on_reports_accepted(events: list[ReportAccepted]) -> None:
        async with ctx.sessions() as session, session.begin():
            recorded = await desk.take_reports(session, events, ctx.rules, ctx.kinds,
                                               ctx.clock())
        if recorded:
            ctx.relay.wake()

    return [BatchConsumer(nc, name="signoff-reports", stream=REPORTS,
                          durable=ctx.settings.signoff_durable, subjects=["report.accepted.>"],
                          handle=on_reports_accepted,
                          decode=lambda msg: ReportAccepted.model_validate_json(msg.data),
                          batch=1000)]
