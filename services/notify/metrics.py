"""Notify's counters, exported at /metrics with every service's (shared/observability.py)."""

from prometheus_client import Counter

DELIVERIES = Counter(
    "rollcall_notify_deliveries_total",
    "Delivery attempts by channel and outcome: sent, retry (failed, to be tried again), failed "
    "(for good; channel `none`: nobody could be told)", ["channel", "outcome"])
