"""The raw baseline: what nats-py and asyncpg achieve on this machine with the same payloads and
rows, with none of Rollcall's work in between. Rollcall's figures are reported as ratios to it."""

import asyncio
import time
from dataclasses import dataclass

import asyncpg
import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

STREAM = "BENCH_BASELINE"
SUBJECT = "bench.baseline"


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


async def jetstream_publish_consume(nats_url: str, payloads: list[bytes],
                                    window: int = 2_000, batch: int = 1_000) -> Rate:
    """Publish every payload with a message id (async, acks awaited in windows) while a pull
    consumer fetches and acks them in batches: the ceiling for any bus path."""
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
                except TimeoutError:
                    continue
                seen += len(msgs)
                await msgs[-1].ack()  # AckPolicy.ALL: one ack covers the batch

        await asyncio.gather(publish(), consume())
        elapsed = time.perf_counter() - start
        await js.delete_stream(STREAM)
        return Rate(len(payloads), elapsed)
    finally:
        await nc.close()


def apply_rollcall_client_fixes() -> None:
    """The nats-py fixes every Rollcall service runs with (shared/bus.py), for this process."""
    from shared.bus import apply_client_fixes

    apply_client_fixes()


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
