"""Aggregate's bus edge: accepted reports in batches, one transaction per batch.

The shared batch consumer (`shared/consumer.py`) acknowledges a batch after its transaction
committed and hands it back when it failed; redelivery is harmless, the projector ignores
revisions it already holds. `aggregate_concurrency` batches are applied while the next one is
fetched: batches in flight together are ordinary concurrent transactions (unit-days and node-day
rows are locked in one order), exactly like batches of two replicas."""

import time

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from services.aggregate.service import AggregateContext, durable_name, filters
from shared.consumer import BatchConsumer
from shared.contracts import ReportAccepted, reports_of
from shared.observability import ROLLUP_APPLY_SECONDS, ROLLUP_EVENTS
from shared.streams import REPORTS


def consumers(nc: NatsClient, ctx: AggregateContext) -> list[BatchConsumer]:
    # Replicas bind to the same durable pull consumer and share its messages; a deployment that
    # pins counties to replicas gives each group its own filter (and so its own durable).
    settings = ctx.settings

    async def on_reports_accepted(messages: list[list[ReportAccepted]]) -> None:
        events = [report for reports in messages for report in reports]
        started = time.perf_counter()
        await ctx.apply(events)
        ROLLUP_APPLY_SECONDS.observe(time.perf_counter() - started)
        ROLLUP_EVENTS.inc(len(events))

    def poisoned(msg: Msg) -> None:
        ctx.stats.poisoned += 1

    return [BatchConsumer(
        nc, name="aggregate", stream=REPORTS, durable=durable_name(settings.aggregate_filter),
        subjects=filters(settings.aggregate_filter), handle=on_reports_accepted,
        decode=reports_of,
        batch=settings.aggregate_batch, ack_wait=settings.aggregate_ack_wait,
        concurrency=settings.aggregate_concurrency, on_malformed=poisoned)]
