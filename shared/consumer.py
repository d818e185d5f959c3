"""The JetStream batch consumer every service uses (ingest's submissions, aggregate's, alerts' and
notify's accepted reports, alerts' cases, notify's alert events), on nats-py's public pull API
(and, at stop, `shared/natsfix.py`'s read of what a subscription has queued). One policy for
all of them:

- **Fetch** up to `batch` messages of a durable pull consumer, waiting at most `fetch_timeout_s`
  for a batch to fill, or `linger_s` once a first message is in hand (an urgent kind, such as
  cases, goes on with what has come) (replicas bound to the same durable share its messages).
- **Decode** each message from its raw bytes. One that cannot be decoded is malformed: retrying
  cannot help, so it is logged (subject, stream sequence, data) and terminated alone, never
  handed back with the batch, where it would hold back the messages beside it forever. (Ingest
  decodes nothing here: a refused submission is kept and published by its use case.)
- **Handle** the batch (or each group of it, with `split`) in the handler's own transaction, and
  **acknowledge** it once the handler has returned, i.e. after the commit: a crash in between
  means a redelivery, which every consumer's effect ignores (effectively-once, see
  docs/architecture.md).
- A batch whose handler fails (the database restarting, a connection cut mid-transaction) is
  **handed back** (NAK with a delay) for redelivery, never terminated, and the consumer pauses as
  long before its next batch: a database that is down is not hammered meanwhile.
- On **stop**, no new batch starts; batches in hand finish and are acknowledged; what it fetched
  and has not acknowledged (a batch fetched while stopping, messages a pull request delivered
  after its fetch ended) is handed back at once, so another replica, or this one restarted, gets
  it now rather than after `ack_wait`.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared import natsfix

log = logging.getLogger(__name__)

FETCH_TIMEOUT_S = 0.05  # a batch waits at most this long to fill
RETRY_DELAY_S = 1.0  # a failed batch comes back, and the consumer goes on, after this
STOP_PATIENCE_S = 20.0  # batches in hand at stop finish within this, or are handed back


def _where(msg: Msg) -> str:
    try:
        meta = msg.metadata
        return f"{msg.subject} (stream {meta.stream} seq {meta.sequence.stream})"
    except Exception:  # not a JetStream message: its subject is all there is
        return msg.subject


class BatchConsumer:
    """A durable pull consumer of `stream` (optionally filtered to `subjects`), its messages
    decoded by `decode` and given in batches to `handle`.

    `concurrency=None` handles one batch at a time, fetching the next once it is acknowledged
    (order kept across batches); an integer lets that many batches be handled at once while the
    next one is fetched and decoded. `split` groups a batch (by subject, say): each group is
    handled, acknowledged or handed back on its own, in the order it first appears. `log_data`
    False keeps a malformed message's data out of the log (it may name a person). `only_new`
    makes a durable created now start at the stream's end instead of its beginning. `linger_s`:
    how much longer a batch may wait to fill once it holds a message (None: `fetch_timeout_s`
    in all; 0: what has arrived goes at once)."""

    def __init__(self, nc: NatsClient, *, name: str, stream: str, durable: str,
                 handle: Callable[[list[Any]], Awaitable[object]],
                 decode: Callable[[Msg], Any] | None = None, subjects: Sequence[str] = (),
                 batch: int = 1000, max_ack_pending: int = 20_000, ack_wait: float = 60.0,
                 concurrency: int | None = None, split: Callable[[Msg], Hashable] | None = None,
                 on_malformed: Callable[[Msg], None] | None = None, log_data: bool = True,
                 only_new: bool = False, linger_s: float | None = None,
                 fetch_timeout_s: float = FETCH_TIMEOUT_S, retry_delay_s: float = RETRY_DELAY_S,
                 stop_patience_s: float = STOP_PATIENCE_S) -> None:
        self.name, self.stream, self.durable = name, stream, durable
        self._nc, self._js = nc, nc.jetstream()
        self._subjects = list(subjects)
        self._config = ConsumerConfig(
            ack_policy=AckPolicy.EXPLICIT, max_ack_pending=max_ack_pending, ack_wait=ack_wait,
            deliver_policy=DeliverPolicy.NEW if only_new else DeliverPolicy.ALL)
        if len(self._subjects) > 1:
            self._config.filter_subjects = self._subjects
        self._handle, self._decode, self._split = handle, decode, split
        self._on_malformed, self._log_data = on_malformed, log_data
        self._batch, self._fetch_timeout_s, self._linger_s = batch, fetch_timeout_s, linger_s
        self._retry_delay_s, self._stop_patience_s = retry_delay_s, stop_patience_s
        self._slots = asyncio.Semaphore(concurrency) if concurrency else None
        self._sub: JetStreamContext.PullSubscription | None = None
        self._loop_task: asyncio.Task | None = None
        self._batches: set[asyncio.Task] = set()
        self._held: list[Msg] = []  # fetched; those not yet acknowledged are handed back at stop
        self._pull_expires = 0.0  # when the last pull request expires on the server
        self._stopping = asyncio.Event()

    async def start(self) -> None:
        """Bind to the durable (created with this configuration if it does not exist; an
        existing one keeps its own) and start consuming."""
        subject = self._subjects[0] if self._subjects else ""  # "": every subject of the stream
        self._sub = await self._js.pull_subscribe(subject, durable=self.durable,
                                                  stream=self.stream, config=self._config)
        self._loop_task = asyncio.create_task(self._consume(), name=f"consumer-{self.name}")

    async def stop(self) -> None:
        """Let the batches in hand finish, hand back what is left, and unsubscribe."""
        self._stopping.set()
        if self._loop_task is None:
            return
        _, late = await asyncio.wait({self._loop_task, *self._batches},
                                     timeout=self._stop_patience_s)
        if late:  # stuck on the database or NATS: what they hold is handed back below
            log.warning("%s: %d batches still running at stop; handed back", self.name,
                        len(late - {self._loop_task}))
            for task in late:  # a transaction cut short rolls back
                task.cancel()
            await asyncio.wait(late, timeout=2)
        # Until the last pull request expires the server may still deliver to it: what it
        # delivered after its fetch ended waits in the subscription's queue, taken out here
        # until the queue has stayed empty for a moment (natsfix: nats-py's public fetch()
        # would also ask for more).
        await asyncio.sleep(max(0.0, self._pull_expires - time.monotonic()))
        assert self._sub is not None
        for _ in range(20):  # 2 s at most
            await asyncio.sleep(0.1)
            if not (leftover := natsfix.take_queued(self._sub)):
                break
            self._held += leftover
        await self._hand_back([m for m in self._held if not m.is_acked])
        self._held = []
        with contextlib.suppress(Exception):  # the connection may be gone already
            await self._sub.unsubscribe()

    async def _consume(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._take_a_batch()
            except Exception:  # NATS restarting, the consumer missing...: again after a pause
                log.warning("%s: consuming failed; retrying", self.name, exc_info=True)
                await self._pause()

    async def _take_a_batch(self) -> None:
        msgs = await self._fetch()
        if not msgs or self._stopping.is_set():
            return  # a batch fetched while stopping is handed back by stop()
        pairs = await self._decoded(msgs)
        if not pairs:
            return
        if self._slots is None:
            await self._process(pairs)
            return
        await self._slots.acquire()
        if self._stopping.is_set():
            self._slots.release()
            return
        task = asyncio.create_task(self._process(pairs))
        self._batches.add(task)
        task.add_done_callback(self._batch_done)

    def _batch_done(self, task: asyncio.Task) -> None:
        self._batches.discard(task)
        assert self._slots is not None
        self._slots.release()

    async def _fetch(self) -> list[Msg]:
        """Up to `batch` messages, fetched until the batch is full or `fetch_timeout_s` has
        passed, or `linger_s` since the first message came (a fetch may return part of a batch
        early)."""
        assert self._sub is not None
        deadline = time.monotonic() + self._fetch_timeout_s
        msgs: list[Msg] = []
        lingering = False
        while len(msgs) < self._batch and not self._stopping.is_set():
            if msgs and self._linger_s is not None and not lingering:
                deadline, lingering = min(deadline, time.monotonic() + self._linger_s), True
            remaining = deadline - time.monotonic()
            if remaining < 0.001:  # a pull request needs a positive expiry
                break
            self._pull_expires = time.monotonic() + remaining
            try:
                got = await self._sub.fetch(self._batch - len(msgs), timeout=remaining)
            except TimeoutError:  # nats-py's own TimeoutError or asyncio's: both are this one
                break
            except Exception:
                if not msgs:
                    raise
                log.warning("%s: fetch failed; going on with %d messages", self.name, len(msgs),
                            exc_info=True)
                break
            self._held += got
            msgs += got
        return msgs

    async def _decoded(self, msgs: list[Msg]) -> list[tuple[Msg, Any]]:
        if self._decode is None:
            return [(m, m) for m in msgs]
        pairs = []
        for msg in msgs:
            try:
                pairs.append((msg, self._decode(msg)))
            except Exception as exc:  # pydantic's ValidationError, or any other
                log.error("%s: malformed message on %s, terminated: %s; data=%r", self.name,
                          _where(msg), exc, msg.data[:2000] if self._log_data else "(not logged)")
                with contextlib.suppress(Exception):
                    await msg.term()
                if self._on_malformed is not None:
                    self._on_malformed(msg)
        return pairs

    async def _process(self, pairs: list[tuple[Msg, Any]]) -> None:
        groups: dict[Hashable, list[tuple[Msg, Any]]] = {}
        for pair in pairs:
            groups.setdefault(self._split(pair[0]) if self._split else None, []).append(pair)
        failed = False
        for group in groups.values():
            msgs = [m for m, _ in group]
            try:
                await self._handle([item for _, item in group])
            except Exception:
                log.exception("%s: a batch of %d failed; handed back for redelivery", self.name,
                              len(msgs))
                await self._settle(msgs, Msg.nak, delay=self._retry_delay_s)
                failed = True
                continue
            await self._settle(msgs, Msg.ack)
        self._held = [m for m in self._held if not m.is_acked]
        if failed:
            await self._pause()

    async def _settle(self, msgs: list[Msg], how: Callable[..., Awaitable[None]],
                      **options: float) -> None:
        try:
            for msg in msgs:
                await how(msg, **options)
        except Exception:  # the connection is gone: the server redelivers after ack_wait
            log.warning("%s: could not settle %d messages", self.name, len(msgs), exc_info=True)

    async def _hand_back(self, msgs: list[Msg]) -> None:
        if not msgs:
            return
        await self._settle(msgs, Msg.nak)
        with contextlib.suppress(Exception):
            await self._nc.flush(timeout=2)
        log.info("%s: stopping, handed back %d messages it had not processed", self.name,
                 len(msgs))

    async def _pause(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self._retry_delay_s)
