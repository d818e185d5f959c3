"""Alerts' bus edge: fever and flu-like cases, and accepted reports (outbreak counts, missing
reports resolved). Durable pull consumers; one transaction per batch holds the effect and the
record of what was applied; events go out through the outbox after commit."""

import logging
from typing import Annotated

from faststream import Context
from faststream.nats import NatsBroker, PullSub
from faststream.nats.message import NatsBatchMessage
from nats.js.api import AckPolicy, ConsumerConfig
from pydantic import ValidationError

from services.alerts import detection
from services.alerts.service import AlertsContext
from shared.bus import CASES, REPORTS
from shared.contracts import CaseReported, ReportAccepted

log = logging.getLogger(__name__)


async def _undecoded(message) -> None:
    """Report batches are validated by the handler, once per message, from the raw bytes
    (FastStream would parse each as JSON first and validate the Python objects after)."""
    return None


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
        pull_sub=PullSub(batch_size=1000, timeout=0.05, batch=True), decoder=_undecoded)
    async def on_reports_accepted(
            message: Annotated[NatsBatchMessage, Context("message")]) -> None:
        events = []
        for raw in message.raw_message:
            try:
                events.append(ReportAccepted.model_validate_json(raw.data))
            except ValidationError as exc:  # not a report event: retrying cannot help
                log.error("not a ReportAccepted on %s: %s; data=%r", raw.subject, exc,
                          raw.data[:2000])
                await raw.term()
        async with ctx.sessions() as session, session.begin():
            changed = await detection.apply_reports(session, events, ctx.rules, zone,
                                                    ctx.clock())
        if changed:
            ctx.relay.wake()
