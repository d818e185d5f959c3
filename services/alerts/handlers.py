"""Alerts' bus edge: accepted reports (outbreak counts, missing reports) and fever cases."""

from faststream.nats import NatsBroker, PullSub
from nats.js.api import AckPolicy, ConsumerConfig
from sqlalchemy import text

from services.alerts.service import AlertsContext
from shared.bus import REPORTS
from shared.contracts import ReportAccepted

RECORD = text("""
    INSERT INTO alerts.applied_events (msg_id, applied_at) VALUES (:msg_id, :now)
    ON CONFLICT DO NOTHING
""")


def subscribe(broker: NatsBroker, ctx: AlertsContext) -> None:
    @broker.subscriber(
        "report.accepted.>", stream=REPORTS, durable="alerts",
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20_000),
        pull_sub=PullSub(batch_size=500, timeout=0.05, batch=True))
    async def on_reports_accepted(events: list[ReportAccepted]) -> None:
        # Wired and recorded; the rules that read these events come with the alert clocks.
        now = ctx.clock()
        async with ctx.sessions() as session, session.begin():
            await session.execute(RECORD, [{"msg_id": e.msg_id, "now": now} for e in events])
