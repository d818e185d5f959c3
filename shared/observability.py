"""Metrics and logs for every service: Prometheus metrics at /metrics and JSON log lines.

One process runs one service, so the metrics live in prometheus_client's default registry (which
also carries the process and Python collectors). Counters that an edge bumps are defined here so
that their names and labels are the same wherever they are used; figures that are read from
elsewhere (consumer lag from JetStream, open alerts from the database) are refreshed when
Prometheus scrapes, by the callables given to `metrics_router`.
"""

import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from fastapi import APIRouter, FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger(__name__)

# ingest: what came to the door and what became of it (duplicates are neither accepted nor
# rejected: a retry changes nothing).
RECEIVED = Counter("rollcall_ingest_received_total", "Submissions received", ["kind"])
ACCEPTED = Counter("rollcall_ingest_accepted_total",
                   "Submissions accepted as a new revision", ["kind"])
REJECTED = Counter("rollcall_ingest_rejected_total",
                   "Submissions refused, by the code of their first error", ["kind", "code"])

# aggregate: one observation per batch applied in one transaction.
ROLLUP_APPLY_SECONDS = Histogram(
    "rollcall_rollup_apply_seconds", "Time to apply one batch of accepted reports to the rollups",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
ROLLUP_EVENTS = Counter("rollcall_rollup_events_total", "Accepted-report events applied")

# Every consumer: read from JetStream's consumer info at each scrape.
CONSUMER_PENDING = Gauge("rollcall_consumer_pending_messages",
                         "Messages in the stream not yet delivered to the consumer (its lag)",
                         ["stream", "consumer"])
CONSUMER_ACK_PENDING = Gauge("rollcall_consumer_ack_pending_messages",
                             "Messages delivered to the consumer and not yet acknowledged",
                             ["stream", "consumer"])
CONSUMER_REDELIVERED = Gauge("rollcall_consumer_redelivered_messages",
                             "Messages delivered more than once and still unacknowledged",
                             ["stream", "consumer"])

# alerts: set by the alerts service at each scrape (a refresher given to `metrics_router`);
# nothing is exported until it does, rather than a misleading zero.
ALERTS_OPEN = Gauge("rollcall_alerts_open", "Open alerts (not closed), by responsible level",
                    ["level"])
ALERTS_OVERDUE = Gauge("rollcall_alerts_overdue",
                       "Open alerts past their deadline and not acknowledged, by level", ["level"])

Refresher = Callable[[FastAPI], Awaitable[None]]


def _consumers(app: FastAPI) -> Iterable[tuple[str, str]]:
    """(stream, durable) of each batch consumer the service runs (`shared.runtime.running`)."""
    for consumer in getattr(app.state, "consumers", ()):
        yield consumer.stream, consumer.durable


async def consumer_lag(app: FastAPI) -> None:
    """Refresh the consumer gauges from JetStream; a failure leaves the last values in place."""
    broker = getattr(app.state, "broker", None)
    connection = getattr(broker, "_connection", None)
    if connection is None or not connection.is_connected:
        return
    js = connection.jetstream()
    for stream, durable in set(_consumers(app)):
        try:
            info = await js.consumer_info(stream, durable, timeout=2)
        except Exception as exc:  # a scrape reports what it can, and never fails
            log.warning("consumer info failed", extra={"stream": stream, "consumer": durable,
                                                       "error": repr(exc)})
            continue
        CONSUMER_PENDING.labels(stream, durable).set(info.num_pending or 0)
        CONSUMER_ACK_PENDING.labels(stream, durable).set(info.num_ack_pending or 0)
        CONSUMER_REDELIVERED.labels(stream, durable).set(info.num_redelivered or 0)


def metrics_router(*refreshers: Refresher) -> APIRouter:
    """`GET /metrics` in Prometheus' text format; consumer lag is always refreshed, and each
    refresher (an async function of the app) sets the gauges its service owns."""
    router = APIRouter(tags=["health"])

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        results = await asyncio.gather(
            *(refresh(request.app) for refresh in (consumer_lag, *refreshers)),
            return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.warning("metrics refresh failed", extra={"error": repr(result)})
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


# Attributes every LogRecord has; anything else was passed with `extra=` and is logged as a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "color_message"}  # uvicorn's copy of the message with colour codes


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, the service, any extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Route every logger (uvicorn's and FastStream's included) to stderr, as JSON lines unless
    `fmt` is "text". Access logs stay off below DEBUG: one line per report is too many."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if fmt == "json" else logging.Formatter(
        f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "faststream", "faststream.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    access = logging.DEBUG if root.level <= logging.DEBUG else logging.WARNING
    logging.getLogger("uvicorn.access").setLevel(access)
    logging.getLogger("faststream.access").setLevel(access)
