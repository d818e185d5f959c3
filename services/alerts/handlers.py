"""Alerts' bus edge: fever and flu-like cases, and accepted reports (outbreak counts, supplies
below a stock level, missing reports resolved). Durable pull consumers run by the shared batch
consumer (`shared/consumer.py`): one transaction per batch holds the effect and the record of
what was applied, and the batch is acknowledged after it committed; events go out through the
outbox.
A batch that fails is handed back, never terminated (its cases would never open their alerts);
applying it twice changes nothing."""

from nats.aio.client import Client as NatsClient

from services.alerts import detection
from services.alerts.service import AlertsContext
from shared.consumer import BatchConsumer
from shared.contracts import CaseReported, ReportAccepted, reports_of
from shared.streams import CASES, REPORTS


def consumers(nc: NatsClient, ctx: AlertsContext) -> list[BatchConsumer]:
    durable = ctx.settings.alerts_durable
    zone = ctx.settings.zone

    async def on_cases_reported(events: list[CaseReported]) -> None:
        async with ctx.sessions() as session, session.begin():
            await detection.apply_cases(session, events, ctx.rules, zone, ctx.clock())
        ctx.relay.wake()

    async def on_reports_accepted(messages: list[list[ReportAccepted]]) -> None:
        events = [report for reports in messages for report in reports]
        async with ctx.sessions() as session, session.begin():
            changed = await detection.apply_reports(session, events, ctx.rules, zone,
                                                    ctx.clock(), catalogue=ctx.catalogue)
        if changed:
            ctx.relay.wake()

    return [
        # Cases are few and urgent: small batches, short waits (case → open alert within 0.5 s).
        BatchConsumer(nc, name="alerts-cases", stream=CASES, durable=f"{durable}-cases",
                      subjects=["case.reported.>"], handle=on_cases_reported,
                      decode=lambda msg: CaseReported.model_validate_json(msg.data),
                      batch=100, max_ack_pending=5_000),
        BatchConsumer(nc, name="alerts-reports", stream=REPORTS, durable=durable,
                      subjects=["report.accepted.>"], handle=on_reports_accepted,
                      decode=reports_of,
                      batch=1000),
    ]
