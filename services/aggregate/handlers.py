"""Aggregate's bus edge: accepted reports in batches, one transaction per batch."""

import re
import time

from faststream.nats import NatsBroker, PullSub
from nats.js.api import AckPolicy, ConsumerConfig

from services.aggregate.projector import apply_batch
from services.aggregate.service import AggregateContext
from shared.bus import REPORTS
from shared.contracts import ReportAccepted
from shared.observability import ROLLUP_APPLY_SECONDS, ROLLUP_EVENTS

DURABLE = "aggregate"


def durable_name(subject_filter: str) -> str:
    """`aggregate` for all traffic, `aggregate-430621` for `report.accepted.430621.>`."""
    part = re.sub(r"[^0-9A-Za-z]+", "-", subject_filter.removeprefix("report.accepted.")).strip("-")
    return f"{DURABLE}-{part}" if part else DURABLE


def subscribe(broker: NatsBroker, ctx: AggregateContext) -> None:
    # Replicas bind to the same durable pull consumer and share its messages; a deployment that
    # pins counties to replicas gives each group its own filter (and durable name).
    durable = durable_name(ctx.settings.aggregate_filter)

    @broker.subscriber(
        ctx.settings.aggregate_filter, stream=REPORTS, durable=durable,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, max_ack_pending=20_000,
                              ack_wait=60),
        pull_sub=PullSub(batch_size=ctx.settings.aggregate_batch, timeout=0.05, batch=True))
    async def on_reports_accepted(events: list[ReportAccepted]) -> None:
        started = time.perf_counter()
        async with ctx.sessions() as session, session.begin():
            await apply_batch(session, events, ctx.catalogue, ctx.clock())
        ROLLUP_APPLY_SECONDS.observe(time.perf_counter() - started)
        ROLLUP_EVENTS.inc(len(events))
