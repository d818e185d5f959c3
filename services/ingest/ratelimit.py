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
    """A token bucket kept as one number per unit (GCRA): the time at which the unit's bucket
    would be full again. A unit whose bucket is full needs no entry at all."""

    def __init__(self, burst: int, interval_s: float,
                 monotonic: Callable[[], float] = time.monotonic,
                 max_entries: int = 500_000) -> None:
        self.burst, self.interval_s = burst, interval_s
        self._monotonic = monotonic
        self._max_entries = max_entries
        self._tolerance = (burst - 1) * interval_s
        self._full_at: dict[str, float] = {}

    @property
    def enabled(self) -> bool:
        return self.burst > 0 and self.interval_s > 0

    def take(self, unit: str) -> float | None:
        """None if the unit may submit now (a token is spent), else seconds until it may."""
        if not self.enabled:
            return None
        now = self._monotonic()
        full_at = max(self._full_at.get(unit, now), now)
        if full_at - now > self._tolerance:
            return full_at - self._tolerance - now
        if len(self._full_at) >= self._max_entries and unit not in self._full_at:
            self._forget_full(now)
        self._full_at[unit] = full_at + self.interval_s
        return None

    def give_back(self, unit: str) -> None:
        """Return a token `take` spent on a submission that was not stored after all."""
        if unit in self._full_at:
            self._full_at[unit] -= self.interval_s
            if self._full_at[unit] <= self._monotonic():
                del self._full_at[unit]  # full again: the same as no entry

    def _forget_full(self, now: float) -> None:
        """Buckets that have filled up again are the same as none: bounded memory."""
        self._full_at = {u: t for u, t in self._full_at.items() if t > now}
        if len(self._full_at) >= self._max_entries:
            self._full_at.clear()

    def refusal(self, unit: str, wait_s: float) -> FieldError:
        wait = max(1, math.ceil(wait_s))
        every = f"{self.interval_s:g}"
        return FieldError(
            "unit", "rate_limited",
            f"单位 {unit} 报送过于频繁:最多连续 {self.burst} 份,之后每 {every} 秒 1 份;"
            f"请 {wait} 秒后重试",
            f"unit {unit} is sending too fast: at most {self.burst} submissions at once, then "
            f"one every {every} s; retry in {wait} s")
