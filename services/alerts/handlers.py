"""Alerts' bus edge: fever and flu-like cases, accepted reports (outbreak counts, supplies
below a stock level, missing reports resolved), what became of notify's deliveries (the
alerts' histories), confirmations, the countdowns of people under control, and calendars
declared after a cutoff (exempted units taken off missing-report alerts). Durable pull
consumers run by the shared batch consumer (`shared/consumer.py`): one transaction per batch
holds the effect and the record of
what was applied, and the batch is acknowledged after it committed; events go out through the
outbox.
A batch that fails is handed back, never terminated (its cases would never open their alerts);
applying it twice changes nothing."""

from nats.aio.client import Client as NatsClient
from pydantic import TypeAdapter

from services.alerts import detection, repository
from services.alerts.service import AlertsContext
from shared.consumer import BatchConsumer
from shared.contracts import (
    CalendarChanged,
    CaseReported,
    CountdownChanged,
    DeliveryOutcome,
    ReportAccepted,
    SignoffChanged,
    reports_of,
)
from shared.streams import CALENDARS, CASES, CONTROL, DELIVERIES, REPORTS, SIGNOFF

COUNTDOWN = TypeAdapter(CountdownChanged)


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

    async def on_countdowns(events: list) -> None:
        async with ctx.sessions() as session, session.begin():
            closed = await detection.apply_countdowns(session, events, ctx.rules, ctx.clock())
        if closed:
            ctx.relay.wake()

    async def on_delivery_outcomes(events: list[DeliveryOutcome]) -> None:
        # Who was told: the alert's history grows, its state and clock do not change, and
        # nothing is published (the outbox is not touched).
        async with ctx.sessions() as session, session.begin():
            await repository.record_told(session, events, ctx.clock())

    async def on_confirmations(events: list[SignoffChanged]) -> None:
        async with ctx.sessions() as session, session.begin():
            changed = await detection.apply_confirmations(session, events, ctx.rules,
                                                          ctx.clock(), ctx.reference)
        if changed:
            ctx.relay.wake()

    async def on_calendars(events: list[CalendarChanged]) -> None:
        async with ctx.sessions() as session, session.begin():
            changed = await detection.apply_calendars(session, events, ctx.rules, ctx.clock())
        if changed:
            ctx.relay.wake()

    return [
        # Cases are few and urgent: small batches that go with whatever has come, never
        # waiting to fill (case → open alert within 0.1 s).
        BatchConsumer(nc, name="alerts-cases", stream=CASES, durable=f"{durable}-cases",
                      subjects=["case.reported.>"], handle=on_cases_reported,
                      decode=lambda msg: CaseReported.model_validate_json(msg.data),
                      batch=100, max_ack_pending=5_000, linger_s=0),
        BatchConsumer(nc, name="alerts-reports", stream=REPORTS, durable=durable,
                      subjects=["report.accepted.>"], handle=on_reports_accepted,
                      decode=reports_of,
                      batch=1000),
        # The ledger of people under control: countdowns announced and settled, in order.
        BatchConsumer(nc, name="alerts-control", stream=CONTROL, durable=f"{durable}-control",
                      subjects=["control.>"], handle=on_countdowns,
                      decode=lambda msg: COUNTDOWN.validate_json(msg.data), batch=500),
        # What became of notify's deliveries; the events name a masked person, never an
        # address, and may still be kept out of the log like every staff detail.
        BatchConsumer(nc, name="alerts-deliveries", stream=DELIVERIES,
                      durable=f"{durable}-deliveries", subjects=["notify.delivery.>"],
                      handle=on_delivery_outcomes,
                      decode=lambda msg: DeliveryOutcome.model_validate_json(msg.data),
                      batch=500, log_data=False),
        # Confirmations (确认上报) and reopenings: who has confirmed, for the confirmation times.
        BatchConsumer(nc, name="alerts-signoff", stream=SIGNOFF, durable=f"{durable}-signoff",
                      subjects=["signoff.confirmed.>", "signoff.reopened.>"],
                      handle=on_confirmations,
                      decode=lambda msg: SignoffChanged.model_validate_json(msg.data),
                      batch=500),
        # Calendars (免报) declared after a cutoff take their units off missing-report alerts;
        # an ending puts nothing back, so only declarations are read.
        BatchConsumer(nc, name="alerts-calendars", stream=CALENDARS,
                      durable=f"{durable}-calendars", subjects=["calendar.declared"],
                      handle=on_calendars,
                      decode=lambda msg: CalendarChanged.model_validate_json(msg.data),
                      batch=100),
    ]
