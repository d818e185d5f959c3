"""Signoff's bus edge: accepted reports (REPORTS stream, its own durable; decoded by
`contracts.reports_of`, every version), taken in batches by the shared consumer
(`shared/consumer.py`). One transaction per batch stores the unit-days' newest revisions,
clears the send-backs they answer and reopens the confirmations they touch, with the audit
entries and their events (the outbox); the batch is acknowledged after commit. Taking a batch
twice changes nothing: only a newer revision of a unit-day counts."""

from nats.aio.client import Client as NatsClient

from services.signoff import desk
from services.signoff.service import SignoffContext
from shared.consumer import BatchConsumer
from shared.contracts import ReportAccepted, reports_of
from shared.streams import REPORTS


def consumers(nc: NatsClient, ctx: SignoffContext) -> list[BatchConsumer]:
    async def on_reports_accepted(messages: list[list[ReportAccepted]]) -> None:
        events = [report for reports in messages for report in reports]
        async with ctx.sessions() as session, session.begin():
            recorded = await desk.take_reports(session, events, ctx.rules, ctx.kinds,
                                               ctx.clock())
        if recorded:
            ctx.relay.wake()

    return [BatchConsumer(nc, name="signoff-reports", stream=REPORTS,
                          durable=ctx.settings.signoff_durable, subjects=["report.accepted.>"],
                          handle=on_reports_accepted,
                          decode=reports_of,
                          batch=1000)]
