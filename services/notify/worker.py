"""The delivery worker: sends the deliveries the intake recorded, after their commit.

A round claims the due deliveries (FOR UPDATE SKIP LOCKED, then a lease: the claim is committed
before anything is sent, so no transaction stays open across an SMTP or HTTP call and a second
replica skips what this one holds), sends them concurrently, and records each outcome as it
comes: sent, due again after a back-off, or failed for good with the reason once the attempts
are spent. A worker killed mid-round leaves the claims it had not recorded to be taken again
when their lease ends; what it had recorded as sent is never sent again. What was in flight
when it died may reach its receiver twice: the retry carries the same key (`Idempotency-Key`
for the SMS gateway, the Message-ID of a mail) so that a receiver can tell."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify import store
from services.notify.channels import DeliveryFailed, DeliveryRefused, Outgoing, Sender
from services.notify.metrics import DELIVERIES
from services.notify.policy import Policy
from services.notify.staff import Person

log = logging.getLogger(__name__)


def _scrubbed(reason: str, person: Person) -> str:
    """A reason with the person's addresses taken out: it is logged and shown on the alert."""
    for secret in (person.phone, person.email, person.chat_webhook, person.chat_secret):
        if secret:
            reason = reason.replace(secret, "…")
    return reason[:500]


class DeliveryWorker:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], senders: Mapping[str, Sender],
                 policy: Policy, clock: Callable[[], datetime], batch: int = 8,
                 send_timeout_s: float = 30.0,
                 chores: Sequence[Callable[[], Awaitable[object]]] = (),
                 published: Callable[[], None] = lambda: None) -> None:
        self.sessions, self.senders, self.policy, self.clock = sessions, senders, policy, clock
        self.published = published  # an outcome event was committed: the relay's wake
        self.chores = list(chores)  # run before each round: they may record deliveries
        self.batch, self.send_timeout_s = batch, send_timeout_s
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None

    def wake(self) -> None:
        """Called after a commit that recorded deliveries: send now, not at the next poll."""
        self._wake.set()

    async def _send(self, delivery: store.Claimed, person: Person | None
                    ) -> tuple[str | None, str | None, bool]:
        """(reason, gateway's message id, final): reason None when the channel took the
        message; final when trying again cannot help (a host notify may not send to)."""
        if person is None:
            return "the person is no longer on record", None, False
        sender = self.senders.get(delivery.channel)
        if sender is None:
            return f"{delivery.channel}: the channel is not configured", None, False
        message = Outgoing(delivery.key, delivery.title, delivery.body)
        try:
            async with asyncio.timeout(self.send_timeout_s):
                provider_id = await sender.send(message, person)
        except DeliveryFailed as exc:
            return _scrubbed(str(exc), person), None, isinstance(exc, DeliveryRefused)
        except TimeoutError:
            return f"{delivery.channel}: no answer within {self.send_timeout_s:g} s", None, False
        except Exception as exc:  # an unexpected error is this delivery's, not the round's
            return _scrubbed(f"{delivery.channel}: {type(exc).__name__}", person), None, False
        return None, provider_id, False

    async def _deliver(self, delivery: store.Claimed, person: Person | None) -> None:
        """Send one delivery and record its outcome at once, in its own transaction: a worker
        killed mid-round sends again only what was in flight, not the whole round."""
        error, provider_id, final = await self._send(delivery, person)
        now = self.clock()
        retry_at = self.policy.retry_at(delivery.attempts, now) if error and not final else None
        async with self.sessions() as session, session.begin():
            recorded = await store.record_outcome(session, delivery, now, error, retry_at,
                                                  provider_id)
        outcome = "sent" if error is None else "retry" if retry_at else "failed"
        if recorded and outcome != "retry":
            self.published()
        DELIVERIES.labels(delivery.channel, outcome).inc()
        # Ids, the channel and the reason only: never an address.
        log.log(logging.INFO if error is None else logging.WARNING, "delivery %s", outcome,
                extra={"delivery": delivery.id, "channel": delivery.channel,
                       "attempt": delivery.attempts, "reason": error})

    async def run_once(self) -> int:
        """One round: claim the due deliveries, send them concurrently; the number taken."""
        now = self.clock()
        async with self.sessions() as session, session.begin():
            claimed = await store.claim_due(session, now, now + self.policy.lease, self.batch)
        if not claimed:
            return 0
        async with self.sessions() as session:
            people = await store.people(session, {d.person for d in claimed})
        await asyncio.gather(*(self._deliver(d, people.get(d.person)) for d in claimed))
        return len(claimed)

    async def run(self, poll_s: float) -> None:
        while not self._stopping:
            self._wake.clear()  # before the round, so a wake during it is not lost
            try:
                for chore in self.chores:
                    await chore()
                if await self.run_once() == self.batch:
                    continue
            except Exception:
                log.exception("delivery round failed; retrying")
                await asyncio.sleep(1)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll_s):
                    await self._wake.wait()

    def start(self, poll_s: float) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self.run(poll_s), name="notify-deliveries")

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Finish the round in hand and end; one stuck past `timeout_s` is cancelled (its
        claims are taken again when their lease ends)."""
        self._stopping = True
        self._wake.set()
        if self._task is None:
            return
        _, late = await asyncio.wait({self._task}, timeout=timeout_s)
        if late:
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=2)
