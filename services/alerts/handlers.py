"""Alerts' bus edge: fever and flu-like cases, and accepted reports (outbreak counts, missing
reports resolved). Durable pull consumers; one transaction per batch holds the effect and the
record of what was applied; events go out through the outbox after commit."""

from faststream.nats import NatsBroker, PullSub
from nats.js.api import AckPolicy, ConsumerConfig

from services.alerts import detection
from services.alerts.service import AlertsContext
from shared.bus import CASES, REPORTS
from shared.contracts import CaseReported, ReportAccepted


def subscribe(broker: NatsBroker, ctx: AlertsContext) -> None:
    durable = ctx.settings.alerts_durable
    zone = ctx.settings.zone

    # Cases are few and urgent: small batches, short waits (case → open alert within 0.5 s).
    @broker.subscriber(
        "case.reported.>", stream=CASES, durable=f"{durable}-cases",
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=5_000, ack_wait=60),
        pull_sub=PullSub(batch_size=100, timeout=0.05, batch=True))
    async def on_cases_reported(events: list[CaseReported]) -> None:
        async with ctx.sessions() as session, session.begin():
            await detection.apply_cases(session, events, ctx.rules, zone, ctx.clock())
        ctx.relay.wake()

    @broker.subscriber(
        "report.accepted.>", stream=REPORTS, durable=durable,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20_000,
                              ack_wait=60),
        pull_sub=PullSub(batch_size=500, timeout=0.05, batch=True))
    async def on_reports_accepted(events: list[ReportAccepted]) -> None:
        async with ctx.sessions() as session, session.begin():
            changed = await detection.apply_reports(session, events, ctx.rules, zone,
                                                    ctx.clock())
        if changed:
            ctx.relay.wake()
