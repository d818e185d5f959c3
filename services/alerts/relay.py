"""The outbox relay: publishes committed alert events with their Nats-Msg-Id, then deletes them.

Why an outbox rather than publishing after commit with retries: an alert event describes a
change already committed; if the process died between the commit and the publish, a retry in
memory would die with it and the event would be lost. In the outbox the event commits with the
change, and whichever replica relays it next publishes it. A crash after publishing and before
deleting publishes it again with the same message id (alert:<id>:<seq>), which the stream drops.
Replicas share the outbox through SKIP LOCKED.
"""

import asyncio
import logging

from nats.js import JetStreamContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

CLAIM = text("""
    SELECT id, subject, msg_id, payload FROM alerts.outbox
    ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
""")
DELETE = text("DELETE FROM alerts.outbox WHERE id = ANY(:ids)")


class OutboxRelay:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], js: JetStreamContext,
                 batch: int = 500, idle_poll_s: float = 0.5) -> None:
        self._sessions = sessions
        self._js = js
        self._batch = batch
        self._idle_poll_s = idle_poll_s
        self._wake = asyncio.Event()
        self._stopping = False

    def stop(self) -> None:
        """Finish the drain under way, then return from run()."""
        self._stopping = True
        self._wake.set()

    def wake(self) -> None:
        """Called after a commit that added events: publish now rather than at the next poll."""
        self._wake.set()

    async def drain_once(self) -> int:
        async with self._sessions() as session, session.begin():
            rows = (await session.execute(CLAIM, {"limit": self._batch})).all()
            if not rows:
                return 0
            # In order: an alert's events reach the stream in the order they happened.
            for _, subject, msg_id, payload in rows:
                await self._js.publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
            await session.execute(DELETE, {"ids": [row[0] for row in rows]})
        return len(rows)

    async def drain(self) -> int:
        total = 0
        while (n := await self.drain_once()) > 0:
            total += n
        return total

    async def run(self) -> None:
        # Stopped by a flag rather than by cancellation alone: a database driver may turn a
        # cancellation that lands mid-query into an error, which the loop would survive.
        while not self._stopping:
            self._wake.clear()  # before draining, so a wake during the drain is not lost
            try:
                if await self.drain_once() == self._batch:
                    continue
            except Exception:
                if self._stopping:
                    return
                log.exception("alerts outbox relay failed; retrying")
                await asyncio.sleep(1)
            try:
                async with asyncio.timeout(self._idle_poll_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
