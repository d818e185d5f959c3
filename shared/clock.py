"""Clocks are injected, so that tests can move time."""

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)
