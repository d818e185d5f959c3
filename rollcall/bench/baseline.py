"""The raw baseline: what nats-py (as it ships) and asyncpg achieve on this machine with the same
payloads and rows, with none of Rollcall's work in between. Rollcall's figures are reported as
ratios to it."""

import asyncio
import time
from dataclasses import dataclass

import asyncpg
import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from shared import natsfix

STREAM = "BENCH_BASELINE"
SUBJECT = "bench.baseline"


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


async def jetstream_publish_consume(nats_url: str, payloads: list[bytes], *,
                                    patched: bool = False, window: int = 2_000,
                                    batch: int = 1_000) -> Rate:
    """Publish every payload with a message id (async, acks awaited in windows) while a pull
    consumer fetches and acks them in batches: the ceiling for any bus path. The client runs as
    nats-py ships it, or, `patched`, with the services' faster `next_msg` (shared/natsfix.py)."""
    if patched:
        natsfix.take_queued_messages_at_once()
    else:
        natsfix.remove()
    try:
        return await _publish_consume(nats_url, payloads, window, batch)
    finally:
        natsfix.remove()


async def _publish_consume(nats_url: str, payloads: list[bytes], window: int,
                           batch: int) -> Rate:
    nc = await nats.connect(nats_url)
    js = nc.jetstream(publish_async_max_pending=window)
    try:
        try:
            await js.delete_stream(STREAM)
        except NotFoundError:
            pass
        await js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECT],
                                         storage=StorageType.FILE, duplicate_window=120))
        sub = await js.pull_subscribe(SUBJECT, durable="baseline", stream=STREAM,
                                      config=ConsumerConfig(ack_policy=AckPolicy.ALL,
                                                            max_ack_pending=-1))
        start = time.perf_counter()

        async def publish() -> None:
            for i, payload in enumerate(payloads):
                await js.publish_async(SUBJECT, payload, headers={"Nats-Msg-Id": f"b{i}"})
            await js.publish_async_completed()

        async def consume() -> None:
            seen = 0
            while seen < len(payloads):
                try:
                    msgs = await sub.fetch(batch, timeout=1)
                except TimeoutError:  # nats-py's own, or asyncio's: both are this one
                    continue
                seen += len(msgs)
                await msgs[-1].ack()  # AckPolicy.ALL: one ack covers the batch

        await asyncio.gather(publish(), consume())
        elapsed = time.perf_counter() - start
        await js.delete_stream(STREAM)
        return Rate(len(payloads), elapsed)
    finally:
        await nc.close()


async def postgres_copy(database_url: str, rows: list[tuple]) -> Rate:
    """COPY the same rows into an unlogged-free temporary table: the ceiling for any DB write."""
    dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("""CREATE TEMPORARY TABLE bench_copy (
            unit_code text, day date, revision int, node_code text, values jsonb)""")
        start = time.perf_counter()
        await conn.copy_records_to_table("bench_copy", records=rows,
                                         columns=["unit_code", "day", "revision", "node_code",
                                                  "values"])
        return Rate(len(rows), time.perf_counter() - start)
    finally:
        await conn.close()
