"""Notify's counters, exported at /metrics with every service's (shared/observability.py)."""

from prometheus_client import Counter, Gauge

DELIVERIES = Counter(
    "rollcall_notify_deliveries_total",
    "Delivery attempts by channel and outcome: sent, retry (failed, to be tried again), failed "
    "(for good; channel `none`: nobody could be told); and receipts: delivered, undelivered",
    ["channel", "outcome"])
PENDING = Gauge("rollcall_notify_pending_deliveries",
                "Deliveries waiting to be sent (due now, retrying or in quiet hours), by channel",
                ["channel"])
