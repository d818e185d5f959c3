"""Aggregate's bus edge: accepted reports in batches, one transaction per batch; registry changes.

Acknowledgement is explicit: a batch is acknowledged after its transaction committed, and handed
back for redelivery (after a pause) when it failed, e.g. while PostgreSQL restarts. Redelivery is
harmless: the projector ignores revisions it already holds. A batch is applied while the next one
is fetched: batches in flight together are ordinary concurrent transactions (unit-days and
node-day rows are locked in one order), exactly like batches of two replicas."""

import logging
import re
import time
from typing import Annotated

from faststream import Context
from faststream.message import StreamMessage
from faststream.middlewares import AckPolicy
from faststream.nats import NatsBroker, PullSub
from faststream.nats.message import NatsBatchMessage
from nats.js.api import AckPolicy as JsAckPolicy
from nats.js.api import ConsumerConfig
from pydantic import ValidationError

from services.aggregate.service import AggregateContext
from shared.bus import REPORTS
from shared.contracts import RegistryChanged, ReportAccepted
from shared.observability import ROLLUP_APPLY_SECONDS, ROLLUP_EVENTS

log = logging.getLogger(__name__)
DURABLE = "aggregate"
RETRY_DELAY_S = 1.0


def filters(subject_filter: str) -> list[str]:
    """`ROLLCALL_AGGREGATE_FILTER` may list several subjects, comma-separated."""
    return [s.strip() for s in subject_filter.split(",") if s.strip()] or ["report.accepted.>"]


def durable_name(subject_filter: str) -> str:
    """`aggregate` for all traffic, `aggregate-430621` for `report.accepted.430621.>`,
    `aggregate-430621-430622` for two counties: replicas with the same filter share a durable."""
    parts = [re.sub(r"[^0-9A-Za-z]+", "-", s.removeprefix("report.accepted.")).strip("-")
             for s in filters(subject_filter)]
    part = "-".join(p for p in parts if p)
    return f"{DURABLE}-{part}" if part else DURABLE


async def _raw_bodies(message: StreamMessage) -> list[bytes]:
    """The batch as it came: the handler validates each event itself, once (FastStream's own
    decoder would parse every message as JSON first, for nothing)."""
    return [m.data for m in message.raw_message]


async def _apply_and_acknowledge(ctx: AggregateContext, message: NatsBatchMessage,
                                 events: list[ReportAccepted]) -> None:
    started = time.perf_counter()
    try:
        await ctx.apply(events)
    except Exception:
        log.exception("batch of %d reports failed; redelivering", len(events))
        await message.nack(delay=RETRY_DELAY_S)
        return
    ROLLUP_APPLY_SECONDS.observe(time.perf_counter() - started)
    ROLLUP_EVENTS.inc(len(events))
    await message.ack()  # after the commit: a crash in between means a harmless redelivery


def subscribe(broker: NatsBroker, ctx: AggregateContext) -> None:
    # Replicas bind to the same durable pull consumer and share its messages; a deployment that
    # pins counties to replicas gives each group its own filter (and so its own durable).
    subjects = filters(ctx.settings.aggregate_filter)
    config = ConsumerConfig(ack_policy=JsAckPolicy.EXPLICIT, max_ack_pending=20_000,
                            ack_wait=ctx.settings.aggregate_ack_wait)
    if len(subjects) > 1:
        config.filter_subjects = subjects

    @broker.subscriber(
        subjects[0], stream=REPORTS, durable=durable_name(ctx.settings.aggregate_filter),
        config=config, ack_policy=AckPolicy.MANUAL, decoder=_raw_bodies,
        pull_sub=PullSub(batch_size=ctx.settings.aggregate_batch, timeout=0.05, batch=True))
    async def on_reports_accepted(
            message: Annotated[NatsBatchMessage, Context("message")]) -> None:
        events: list[ReportAccepted] = []
        for raw in message.raw_message:
            try:
                events.append(ReportAccepted.model_validate_json(raw.data))
            except ValidationError as exc:
                # Not a report event: retrying cannot help. Logged whole, then terminated.
                ctx.stats.poisoned += 1
                log.error("not a ReportAccepted on %s (seq %s): %s; data=%r", raw.subject,
                          raw.metadata.sequence.stream, exc, raw.data[:2000])
                await raw.term()
        # The next batch is fetched and parsed while this one is applied (a few at most).
        if not await ctx.pipeline.enter():
            await message.nack()  # shutting down: let another replica have them now
            return
        ctx.pipeline.start(_apply_and_acknowledge(ctx, message, events))

    # A notification only: core NATS delivers it to every replica; recounting is idempotent.
    # no_reply: the JetStream publish that carries it has a reply inbox meant for the stream.
    @broker.subscriber(RegistryChanged.subject, no_reply=True)
    async def on_registry_changed(event: RegistryChanged) -> None:
        await ctx.registry_changed()
