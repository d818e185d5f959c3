"""`RollupUpdated` notifications for live views, coalesced per node and day.

A committed batch marks the node-days it touched; a node-day is announced at once if it was not
announced within the last interval, else when the interval has passed, so a burst of reports
makes about one notification per node and second instead of one per report.

They go out on core NATS (`rollup.updated.<node>`), not into a stream: they are hints to fetch
the rollup again, worthless a second later, and a view that missed one fetches on the next (or
on reconnect). A stream would store and replicate every hint for nothing.

A hint names the sectors whose units' reports moved the node-day (`sectors`), so that the
console passes it only to the pages of those sectors (docs/architecture.md, "The sector line");
a cutoff's passing names the sectors of the units with that cutoff (`cutoffs.sectors_of`); a
hint without `sectors` concerns every sector.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from services.aggregate.rollup import NodeDay
from shared.contracts import RollupUpdated

log = logging.getLogger(__name__)


class Coalescer:
    """Which node-days are due for a notification; pure bookkeeping with an injectable clock."""

    def __init__(self, interval: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._monotonic = monotonic
        # Each pending node-day with the sectors that moved it (None: every sector).
        self._pending: dict[NodeDay, set[str] | None] = {}
        self._last: dict[NodeDay, float] = {}

    def touch(self, node_days: Iterable[NodeDay],
              sectors: dict[NodeDay, set[str]] | None = None) -> None:
        for nd in node_days:
            known = None if sectors is None else sectors.get(nd)
            if nd not in self._pending:
                self._pending[nd] = None if known is None else set(known)
            elif (held := self._pending[nd]) is not None:
                if known is None:
                    self._pending[nd] = None
                else:
                    held |= known

    def due_with_sectors(self) -> list[tuple[NodeDay, set[str] | None]]:
        """The pending node-days that may be announced now, with their sectors; they are
        marked announced."""
        now = self._monotonic()
        ready = [(nd, sectors) for nd, sectors in self._pending.items()
                 if now - self._last.get(nd, -self.interval) >= self.interval]
        for nd, _ in ready:
            del self._pending[nd]
            self._last[nd] = now
        if len(self._last) > 4 * len(self._pending) + 10_000:  # forget what is long past
            self._last = {nd: t for nd, t in self._last.items() if now - t < self.interval}
        return ready

    def due(self) -> list[NodeDay]:
        """The pending node-days that may be announced now; they are marked announced."""
        return [nd for nd, _ in self.due_with_sectors()]

    def wait(self) -> float | None:
        """Seconds until the next pending node-day is due; None when nothing is pending."""
        if not self._pending:
            return None
        now = self._monotonic()
        return max(0.0, min(self._last.get(nd, -self.interval) + self.interval - now
                            for nd in self._pending))


class Announcer:
    """Runs beside the consumer: publishes what the coalescer says is due."""

    def __init__(self, publish: Callable[[str, bytes], Awaitable[None]],
                 clock: Callable[[], datetime], interval: float = 1.0) -> None:
        self.coalescer = Coalescer(interval)
        self._publish = publish
        self._clock = clock
        self._wake = asyncio.Event()
        self.sent = 0

    def touched(self, node_days: Iterable[NodeDay],
                sectors: dict[NodeDay, set[str]] | None = None) -> None:
        """Called after a batch committed (with the sectors of its reports per node-day) or a
        cutoff passed (the sectors of its units); without sectors, every sector's."""
        self.coalescer.touch(node_days, sectors)
        self._wake.set()

    async def run(self) -> None:
        while True:
            wait = self.coalescer.wait()
            if wait is None:
                self._wake.clear()
                await self._wake.wait()
                continue
            if wait > 0:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation
                # that meets the wake-up, and shutdown then waits for this loop forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                self._wake.clear()
                continue
            await self.flush()

    async def flush(self) -> None:
        due = self.coalescer.due_with_sectors()
        if not due:
            return
        now = self._clock().replace(microsecond=0)
        # The RollupUpdated JSON, written out directly: thousands go out each second at peak.
        stamp = RollupUpdated(node="43", day=now.date(), updated_at=now).model_dump(
            mode="json")["updated_at"]
        try:
            for (node, day), sectors in sorted(due, key=lambda d: d[0]):
                named = ("" if sectors is None else
                         ',"sectors":[' + ",".join(f'"{s}"' for s in sorted(sectors)) + "]")
                await self._publish(f"rollup.updated.{node}", (
                    f'{{"node":"{node}","day":"{day.isoformat()}","updated_at":"{stamp}"'
                    f'{named}}}').encode())
            self.sent += len(due)
        except Exception:  # a hint lost is harmless; the consumer must not stop for it
            log.exception("could not announce %d rollup updates", len(due))
