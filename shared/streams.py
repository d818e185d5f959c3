"""JetStream streams, declared idempotently at start-up by every service that needs them."""

import asyncio
import logging
import time

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, NotFoundError

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_S = 2 * 60 * 60  # Nats-Msg-Id dedup window: covers an outbox replay after a crash
# The streams the services' batch consumers read.
REPORTS, CASES, ALERTS, SUBMISSIONS = "REPORTS", "CASES", "ALERTS", "SUBMISSIONS"
CONTROL = "CONTROL"  # the countdowns of people under control (services/ledger)
EDITIONS = "EDITIONS"
# What became of notify's deliveries about alerts (DeliveryOutcome): alerts keeps them in the
# alert's history.
DELIVERIES = "DELIVERIES"
SIGNOFF = "SIGNOFF"
# Calendars (免报) declared and ended (CalendarChanged): alerts takes exempted units off its
# missing-report alerts.
CALENDARS = "CALENDARS"

STREAMS = (
    StreamConfig(name=REPORTS, subjects=["report.accepted.>"]),
    StreamConfig(name=CASES, subjects=["case.reported.>"]),
    StreamConfig(name="REJECTED", subjects=["report.rejected.>", "case.rejected.>"]),
    StreamConfig(name=ALERTS, subjects=["alert.>"]),
    StreamConfig(name=CONTROL, subjects=["control.>"]),
    StreamConfig(name=DELIVERIES, subjects=["notify.delivery.>"]),
    StreamConfig(name=SIGNOFF, subjects=["signoff.>"]),
    StreamConfig(name=CALENDARS, subjects=["calendar.>"]),
    StreamConfig(name="REGISTRY", subjects=["registry.>"], max_msgs_per_subject=100),
    # Scheduled editions of the summaries, for notify or a gateway to deliver (the files stay
    # in the console's database: an event says where).
    StreamConfig(name=EDITIONS, subjects=["edition.>"]),
    # What gateways submit, kept until ingest has committed its outcome (work queue: removed
    # once acknowledged; the ledger and ingest.rejections keep the record).
    StreamConfig(name=SUBMISSIONS, retention=RetentionPolicy.WORK_QUEUE, subjects=[
        "report.submit", "report.submit.>", "report.correct", "report.correct.>",
        "case.submit", "case.submit.>"]),
)


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Create or update each stream so that its config matches this code."""
    for base in STREAMS:
        config = StreamConfig(
            name=base.name,
            subjects=base.subjects,
            retention=base.retention or RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            duplicate_window=DUPLICATE_WINDOW_S,
            num_replicas=replicas,
            max_msgs_per_subject=base.max_msgs_per_subject,
        )
        try:
            await js.stream_info(base.name)
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)


async def ensure_streams_patiently(js: JetStreamContext, replicas: int = 1,
                                   patience_s: float = 120) -> None:
    """`ensure_streams`, retried. On a NATS cluster that has just started, JetStream answers
    only once its meta leader is elected, a replicated stream takes a moment to form, and every
    service declares the same streams at once: a timeout or a refusal is retried (declaring is
    idempotent) until `patience_s` has passed."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            await ensure_streams(js, replicas)
            return
        except (nats.errors.TimeoutError, APIError) as exc:
            if time.monotonic() > deadline:
                raise
            log.warning("declaring the streams failed, retrying: %r", exc)
            await asyncio.sleep(1)
