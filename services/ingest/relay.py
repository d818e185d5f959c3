"""The outbox relay: publishes committed events with their Nats-Msg-Id, then deletes them.

A crash after publishing and before deleting publishes the same message again on restart; the
stream drops it as a duplicate (same Nats-Msg-Id within the window) and every consumer is
idempotent besides. A crash before publishing leaves the rows in the outbox, committed, for the
next run. Several ingest replicas share the outbox through SKIP LOCKED.
"""

import asyncio
import contextlib
import logging
import os
import signal

from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

CLAIM = text("""
    SELECT id, subject, msg_id, payload FROM ingest.outbox
    ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
""")
DELETE = text("DELETE FROM ingest.outbox WHERE id = ANY(:ids)")


class OutboxRelay:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], js: JetStreamContext,
                 batch: int = 1000, idle_poll_s: float = 0.5, paused: bool = False,
                 crash_after_publish: bool = False) -> None:
        self._sessions = sessions
        self._js = js
        self._batch = batch
        self._idle_poll_s = idle_poll_s
        self._wake = asyncio.Event()
        # Test hooks (ROLLCALL_RELAY_PAUSED, ROLLCALL_RELAY_CRASH_AFTER_PUBLISH), off by default.
        self._paused = paused
        self._crash_after_publish = crash_after_publish
        self._stopping = False
        self._task: asyncio.Task | None = None

    def wake(self) -> None:
        """Called after a commit that added events: publish now rather than at the next poll."""
        self._wake.set()

    async def drain_once(self) -> int:
        """Publish one batch; the number published. Rows whose publish failed stay for the next
        round, so one bad message cannot hold back the others."""
        async with self._sessions() as session, session.begin():
            rows = (await session.execute(CLAIM, {"limit": self._batch})).all()
            if not rows:
                return 0
            results = await asyncio.gather(*(
                self._js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
                for _, subject, msg_id, payload in rows), return_exceptions=True)
            if self._crash_after_publish:
                os.kill(os.getpid(), signal.SIGKILL)  # as if killed right here: nothing deleted
            done = [row[0] for row, result in zip(rows, results, strict=True)
                    if not isinstance(result, BaseException)]
            failed = len(rows) - len(done)
            if failed:
                first = next(r for r in results if isinstance(r, BaseException))
                log.warning("outbox relay: %d of %d publishes failed (%r); retrying", failed,
                            len(rows), first)
            if done:
                await session.execute(DELETE, {"ids": done})
        if failed:
            raise RelayStalled(failed)
        return len(done)

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the round in hand, publish what is left once more, and end."""
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def run(self) -> None:
        if self._paused:
            log.warning("outbox relay paused (ROLLCALL_RELAY_PAUSED): nothing is published")
            return
        # A flag, not cancellation: on Python 3.11 wait_for may swallow a cancel that meets a
        # wake-up, and the loop would never end.
        while not self._stopping:
            self._wake.clear()  # before draining, so a wake during the drain is not lost
            try:
                if await self.drain_once() == self._batch:
                    continue
            except RelayStalled:
                await asyncio.sleep(1)
            except Exception:
                log.exception("outbox relay failed; retrying")
                await asyncio.sleep(1)
            try:
                await asyncio.wait_for(self._wake.wait(), self._idle_poll_s)
            except TimeoutError:
                pass
        with contextlib.suppress(Exception):  # a last round; what remains waits for a restart
            await self.drain_once()


class RelayStalled(Exception):
    """Some publishes of a batch failed; the rest went out and were deleted."""
