"""Submissions per unit, as a token bucket: a burst of `burst`, then one every `interval_s`.

A unit sends one report a day plus its cases and the odd correction, so only a broken device or
a runaway script meets the limit. The limit is per unit, never per request or per credential:
an operator's bulk upload of many units spends one token from each unit's own bucket.

Buckets live in this process: with several ingest replicas each keeps its own, so a unit may
send up to `burst` × replicas at once (still bounded, and far above what a unit needs).
"""

import math
import time
from collections.abc import Callable

from shared.errors import FieldError


class UnitRate:
    def __init__(self, burst: int, interval_s: float,
                 monotonic: Callable[[], float] = time.monotonic,
                 max_entries: int = 500_000) -> None:
        self.burst, self.interval_s = burst, interval_s
        self._monotonic = monotonic
        self._max_entries = max_entries
        self._buckets: dict[str, tuple[float, float]] = {}  # unit → (tokens, when)

    @property
    def enabled(self) -> bool:
        return self.burst > 0 and self.interval_s > 0

    def take(self, unit: str) -> float | None:
        """None if the unit may submit now (a token is spent), else seconds until it may."""
        if not self.enabled:
            return None
        now = self._monotonic()
        tokens, then = self._buckets.get(unit, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) / self.interval_s)
        if tokens >= 1:
            if len(self._buckets) >= self._max_entries and unit not in self._buckets:
                self._forget_full(now)
            self._buckets[unit] = (tokens - 1, now)
            return None
        self._buckets[unit] = (tokens, now)
        return (1 - tokens) * self.interval_s

    def _forget_full(self, now: float) -> None:
        """A bucket that has filled up again is the same as none: bounded memory."""
        horizon = self.burst * self.interval_s
        self._buckets = {u: b for u, b in self._buckets.items() if now - b[1] < horizon}
        if len(self._buckets) >= self._max_entries:
            self._buckets.clear()

    def refusal(self, unit: str, wait_s: float) -> FieldError:
        wait = max(1, math.ceil(wait_s))
        every = f"{self.interval_s:g}"
        return FieldError(
            "unit", "rate_limited",
            f"单位 {unit} 报送过于频繁:最多连续 {self.burst} 份,之后每 {every} 秒 1 份;"
            f"请 {wait} 秒后重试",
            f"unit {unit} is sending too fast: at most {self.burst} submissions at once, then "
            f"one every {every} s; retry in {wait} s")
