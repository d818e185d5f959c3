"""The outbox relay: publishes committed events with their Nats-Msg-Id, then deletes them.
Ingest (`ingest.outbox`: accepted reports and cases) and alerts (`alerts.outbox`: alert
changes) each write events in the transaction of the change they describe, and relay them here.

Why an outbox rather than publishing after commit with retries: if the process died between the
commit and the publish, a retry in memory would die with it and the event would be lost. A
crash after publishing and before deleting publishes the same message again on restart; the
stream drops it as a duplicate (same Nats-Msg-Id within the window) and every consumer is
idempotent besides. A crash before publishing leaves the rows in the outbox, committed, for the
next run. The replicas of a service share its outbox through SKIP LOCKED.

A batch is published as core messages with a reply subject each, on one shared subscription,
and its JetStream acknowledgements are counted as they come back: the server's PubAck still
confirms every message, without a request (and a future) per message, which at bulk volumes
doubles what one process can publish. Messages of one connection are stored in the order they
were sent, so the events of a round reach the stream in the order they were committed; only a
message the stream refused and a later round retries comes after those sent behind it (its
`seq`, for alert events, still says where it belongs).
"""

import asyncio
import contextlib
import json
import logging
import os
import signal
from dataclasses import dataclass, field
from datetime import datetime

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from sqlalchemy import BigInteger, Column, DateTime, Identity, LargeBinary, String, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

log = logging.getLogger(__name__)


class Outbox:
    """The outbox table's columns, for a service's own schema: `class OutboxRow(Outbox, Base)`
    with `__table_args__ = {"schema": ...}`. Events committed with the change they describe,
    published after commit by `OutboxRelay` and then deleted."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    subject: Mapped[str] = mapped_column(String(200))
    msg_id: Mapped[str] = mapped_column(String(200))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))



def create_outbox(op, schema: str) -> None:
    """Create the outbox table (`Outbox`'s columns) in a service's schema: what the migrations
    that start a service's schema call with their `alembic.op`. Those migrations are history:
    a change to the table is a migration of its own, never a change here."""
    op.create_table(
        "outbox",
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("subject", String(200), nullable=False),
        Column("msg_id", String(200), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        schema=schema,
    )

@dataclass
class _Round:
    """The acknowledgements of one batch: which messages the stream has confirmed."""

    size: int
    stored: list[bool] = field(default_factory=list)
    answered: int = 0
    first_error: str | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.stored = [False] * self.size
        if self.size == 0:
            self.done.set()


def _stored(msg: Msg) -> tuple[bool, str | None]:
    """Whether a reply is a PubAck (stored, or dropped as a duplicate: stored before)."""
    if not msg.data:  # a status without a body, e.g. 503: no stream took the subject
        return False, f"status {msg.headers.get('Status') if msg.headers else '?'}"
    try:
        ack = json.loads(msg.data)
    except ValueError:
        return False, msg.data[:200].decode("utf-8", "replace")
    if "error" in ack or "seq" not in ack:
        return False, str(ack.get("error", ack))
    return True, None


class OutboxRelay:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], nc: NatsClient,
                 outbox: type[Outbox], batch: int = 1000, idle_poll_s: float = 0.5,
                 ack_timeout_s: float = 10.0, paused: bool = False,
                 crash_after_publish: bool = False) -> None:
        table = outbox.__table__.fullname  # type: ignore[attr-defined]  (its mapped subclass)
        self._sessions = sessions
        self._nc = nc
        self._claim = text(f"SELECT id, subject, msg_id, payload FROM {table} "
                           "ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED")
        self._delete = text(f"DELETE FROM {table} WHERE id = ANY(:ids)")
        self._batch = batch
        self._idle_poll_s = idle_poll_s
        self._ack_timeout_s = ack_timeout_s
        self._wake = asyncio.Event()
        # Test hooks (ROLLCALL_RELAY_PAUSED, ROLLCALL_RELAY_CRASH_AFTER_PUBLISH), off by default.
        self._paused = paused
        self._crash_after_publish = crash_after_publish
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._inbox: str | None = None
        self._rounds: dict[int, _Round] = {}
        self._round_no = 0

    def wake(self) -> None:
        """Called after a commit that added events: publish now rather than at the next poll."""
        self._wake.set()

    async def _on_ack(self, msg: Msg) -> None:
        try:
            round_no, index = map(int, msg.subject.rsplit(".", 2)[-2:])
        except ValueError:
            return
        current = self._rounds.get(round_no)
        if current is None or not 0 <= index < current.size:
            return  # a late answer to a round that timed out: its rows were kept
        ok, error = _stored(msg)
        if not current.stored[index]:
            current.answered += 1
        current.stored[index] = ok
        if error and current.first_error is None:
            current.first_error = error
        if current.answered >= current.size:
            current.done.set()

    async def publish(self, rows: list[tuple[str, str, bytes]]) -> list[bool]:
        """Publish (subject, msg_id, payload) rows; for each, whether the stream stored it."""
        if self._inbox is None:
            self._inbox = self._nc.new_inbox()
            await self._nc.subscribe(f"{self._inbox}.*.*", cb=self._on_ack)
        self._round_no += 1
        current = self._rounds[self._round_no] = _Round(len(rows))
        prefix = f"{self._inbox}.{self._round_no}"
        try:
            for i, (subject, msg_id, payload) in enumerate(rows):
                await self._nc.publish(subject, payload, reply=f"{prefix}.{i}",
                                       headers={"Nats-Msg-Id": msg_id})
            await self._nc.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(current.done.wait(), self._ack_timeout_s)
        finally:
            del self._rounds[self._round_no]
        if current.first_error or not all(current.stored):
            log.warning("outbox relay: %d of %d not confirmed (%s)",
                        current.size - sum(current.stored), current.size,
                        current.first_error or "no answer in time")
        return current.stored

    async def drain_once(self) -> int:
        """Publish one batch; the number published. Rows the stream did not confirm stay for
        the next round, so one bad message cannot hold back the others."""
        async with self._sessions() as session, session.begin():
            rows = (await session.execute(self._claim, {"limit": self._batch})).all()
            if not rows:
                return 0
            stored = await self.publish([(subject, msg_id, payload)
                                         for _, subject, msg_id, payload in rows])
            if self._crash_after_publish:
                os.kill(os.getpid(), signal.SIGKILL)  # as if killed right here: nothing deleted
            done = [row[0] for row, ok in zip(rows, stored, strict=True) if ok]
            if done:
                await session.execute(self._delete, {"ids": done})
        if len(done) < len(rows):
            raise RelayStalled(len(rows) - len(done))
        return len(done)

    async def drain(self) -> int:
        """Publish everything the outbox holds now; the number published."""
        total = 0
        while (n := await self.drain_once()) > 0:
            total += n
        return total

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self.run(), name="outbox-relay")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the round in hand, publish what is left once more, and end."""
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        _, late = await asyncio.wait({self._task}, timeout=timeout_s)
        if late:  # a round stuck on the database or NATS: its rows stay for the next start
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=2)

    async def run(self) -> None:
        if self._paused:
            log.warning("outbox relay paused (ROLLCALL_RELAY_PAUSED): nothing is published")
            return
        # Stopped by a flag rather than by cancellation: a cancel that meets a database call can
        # come back as an error, which the loop would survive.
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
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._idle_poll_s):
                    await self._wake.wait()
        with contextlib.suppress(Exception):  # a last round; what remains waits for a restart
            await self.drain_once()


class RelayStalled(Exception):
    """Some messages of a batch were not confirmed; the rest went out and were deleted."""
