"""The clock loop: every few seconds (and on demand in tests) it claims the alerts whose
deadlines are due, FOR UPDATE SKIP LOCKED, takes their steps, records them and commits; then it
checks the cutoffs that have passed for missing reports. Deadlines live in the database, so a
restart neither loses nor repeats a step, and with several replicas exactly one takes each."""

import asyncio
import logging
from datetime import date, datetime, time

from services.alerts import clock, detection, repository
from services.alerts.service import AlertsContext
from shared.hierarchy import Level
from shared.registry.reference import Reference

log = logging.getLogger(__name__)


class Ticker:
    def __init__(self, ctx: AlertsContext, batch: int = 200) -> None:
        self._ctx = ctx
        self._batch = batch
        self._checked: set[tuple[date, time]] = set()  # cutoffs known to be done
        self._cutoffs: tuple[Reference, set[time]] | None = None  # of the reference loaded
        self._confirmations: set[tuple[date, Level]] = set()  # confirmation times done
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def tick(self) -> int:
        """Take every step due now; returns how many were taken (alert changes + cutoffs)."""
        now = self._ctx.clock()
        taken = (await self._run_countdowns(now) + await self._run_clocks(now)
                 + await self._run_cutoffs(now) + await self._run_confirmations(now))
        if taken:
            self._ctx.relay.wake()
        return taken

    async def _run_clocks(self, now: datetime) -> int:
        ctx, taken = self._ctx, 0
        while True:
            async with ctx.sessions() as session, session.begin():
                rows = await repository.claim_due(session, now, self._batch)
                taken += await repository.advance(session, rows, now, ctx.rules)
            if len(rows) < self._batch:
                return taken

    async def _run_countdowns(self, now: datetime) -> int:
        """The ledger's countdowns past their deadline: their alerts open (then the clocks
        below take any step already due on them)."""
        ctx, opened = self._ctx, 0
        while True:
            async with ctx.sessions() as session, session.begin():
                taken, n = await detection.run_countdowns(session, ctx.rules, now, self._batch)
            opened += n
            if taken < self._batch:
                return opened

    async def _run_cutoffs(self, now: datetime) -> int:
        ctx, opened = self._ctx, 0
        reference = ctx.reference
        if self._cutoffs is None or self._cutoffs[0] is not reference:
            # Read once per reference loaded, not every tick: a province has 200,000 units.
            self._cutoffs = (reference, {u.cutoff for u in reference.units.values()})
        cutoffs = self._cutoffs[1]
        due = clock.cutoffs_due(now, ctx.settings.zone, cutoffs, ctx.rules)
        self._checked &= set(due)  # forget the days that have left the catch-up window
        for day, cutoff in due:
            if (day, cutoff) in self._checked:
                continue
            async with ctx.sessions() as session, session.begin():
                n = await detection.run_cutoff(session, reference, day, cutoff, ctx.rules,
                                               ctx.settings.zone, now)
            self._checked.add((day, cutoff))
            opened += n or 0
        return opened

    async def _run_confirmations(self, now: datetime) -> int:
        """The confirmation times (确认上报) that have passed: each checked once."""
        ctx, opened = self._ctx, 0
        due = ctx.signoff.levels_due(now, ctx.settings.zone, ctx.rules.missing_catch_up_days,
                                     ctx.rules.missing_grace)
        self._confirmations &= set(due)
        for day, level in due:
            if (day, level) in self._confirmations:
                continue
            async with ctx.sessions() as session, session.begin():
                n = await detection.run_confirmations(session, ctx.reference, day, level,
                                                      ctx.signoff, ctx.rules,
                                                      ctx.settings.zone, now)
            self._confirmations.add((day, level))
            opened += n or 0
        return opened

    async def run(self, interval_s: float) -> None:
        while not self._stop.is_set():
            try:
                await self.tick()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("alert clock tick failed; retrying")
            try:
                async with asyncio.timeout(interval_s):
                    await self._stop.wait()
            except TimeoutError:
                pass
