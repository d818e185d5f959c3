"""The measured phases. Every figure runs from the moment the first report leaves the client to
the moment the rollups holding it are committed (read from PostgreSQL: the province's
completeness counts, or each unit-day's commit timestamp)."""

import asyncio
import json
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx
import nats

from rollcall.bench.system import System, dsn
from services.aggregate import expected
from shared.clock import utc_now
from shared.db import make_engine, make_sessionmaker

SUBMIT = "report.submit"
# Alerts checks the cutoffs of today and of `catch_up_days` (1) before at start.
FIRST_DAY_BACK = 2


class BenchError(RuntimeError):
    pass


@dataclass
class Rate:
    reports: int
    seconds: float
    accepted_seconds: float | None = None  # when the door had taken every report

    @property
    def per_second(self) -> float:
        return self.reports / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        d = {"reports": self.reports, "seconds": round(self.seconds, 3),
             "per_second": round(self.per_second, 1)}
        if self.accepted_seconds is not None:
            d["accepted_seconds"] = round(self.accepted_seconds, 3)
            d["accepted_per_second"] = round(self.reports / self.accepted_seconds, 1)
        return d


@dataclass
class Latency:
    samples: list[float] = field(default_factory=list)
    offered_per_second: float = 0.0
    achieved_per_second: float = 0.0
    sent: list[float] = field(default_factory=list)  # when each sample's report was sent

    def stalls(self, over_s: float = 0.5) -> list[tuple[float, float, int]]:
        """Where the slow reports were: (second of the phase, worst latency, reports over
        `over_s`) for each second that had one, so periodic stalls show their period."""
        if not self.sent:
            return []
        t0 = min(self.sent)
        worst: dict[int, list[float]] = {}
        for at, latency in zip(self.sent, self.samples, strict=True):
            if latency > over_s:
                worst.setdefault(int(at - t0), []).append(latency)
        return [(s, round(max(v), 3), len(v)) for s, v in sorted(worst.items())]

    def percentile(self, p: float) -> float:
        if not self.samples:
            return math.nan
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]

    def as_dict(self) -> dict:
        return {"count": len(self.samples),
                "offered_per_second": round(self.offered_per_second, 1),
                "achieved_per_second": round(self.achieved_per_second, 1),
                **{f"p{p}": round(self.percentile(p), 4) for p in (50, 95, 99)},
                "max": round(max(self.samples), 4) if self.samples else None,
                "stalls": self.stalls()}


class Progress:
    """Reads the committed completeness counts of the root node for some days."""

    def __init__(self, database_url: str, root: str) -> None:
        self.database_url = database_url
        self.root = root
        self.conn: asyncpg.Connection | None = None

    async def __aenter__(self) -> "Progress":
        self.conn = await asyncpg.connect(dsn(self.database_url))
        return self

    async def __aexit__(self, *exc) -> None:
        if self.conn is not None:
            await self.conn.close()

    async def reported(self, days: Sequence[date]) -> int:
        assert self.conn is not None
        return await self.conn.fetchval(
            "SELECT coalesce(sum(reported), 0) FROM aggregate.completeness "
            "WHERE node_code = $1 AND day = ANY($2::date[])", self.root, list(days))

    async def wait(self, days: Sequence[date], target: int, stall: float = 120.0,
                   interval: float = 0.05) -> float:
        """perf_counter() when `target` reports of `days` are committed in the rollups."""
        last, last_change = -1, time.perf_counter()
        while True:
            now = time.perf_counter()
            count = await self.reported(days)
            if count >= target:
                return now
            if count != last:
                last, last_change = count, now
            elif now - last_change > stall:
                raise BenchError(f"rollups stalled at {count:,} of {target:,} reports for "
                                 f"{stall:.0f}s (see the services' logs)")
            await asyncio.sleep(interval)

    async def commit_times(self, day: date, commit_timestamps: bool) -> dict[str, float]:
        """unit → epoch seconds its report for `day` was committed in the rollups."""
        assert self.conn is not None
        when = ("pg_xact_commit_timestamp(xmin)" if commit_timestamps else "applied_at")
        rows = await self.conn.fetch(
            f"SELECT unit_code, extract(epoch FROM {when})::float8 AS t "
            "FROM aggregate.unit_days WHERE day = $1", day)
        return {r["unit_code"]: r["t"] for r in rows}


def _check_bulk(answer: httpx.Response, expected: int) -> int:
    if answer.status_code != 200:
        raise BenchError(f"bulk request refused: {answer.status_code} {answer.text[:500]}")
    body = answer.json()
    if body["accepted"] != expected:
        bad = [r for r in body["results"] if r["status"] != "accepted"][:3]
        raise BenchError(f"{expected - body['accepted']} of {expected} reports not accepted, "
                         f"e.g. {json.dumps(bad, ensure_ascii=False)[:800]}")
    return body["accepted"]


def _client(system: System, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=system.services["ingest"].url, timeout=600,
                             headers={"Authorization": f"Bearer {token}",
                                      "content-type": "application/json"},
                             limits=httpx.Limits(max_connections=32))


async def post_bulk(system: System, token: str, bodies: list[tuple[bytes, int]],
                    concurrency: int) -> None:
    """POST every body (JSON array, its report count), `concurrency` requests in flight."""
    queue = list(reversed(bodies))
    async with _client(system, token) as client:
        async def worker() -> None:
            while queue:
                body, n = queue.pop()
                _check_bulk(await client.post("/v1/reports/bulk", content=body), n)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def bulk_flat_out(system: System, token: str, bodies: list[tuple[bytes, int]],
                        days: Sequence[date], root: str, concurrency: int) -> Rate:
    total = sum(n for _, n in bodies)
    async with Progress(system.database_url, root) as progress:
        start = time.perf_counter()
        done = asyncio.create_task(progress.wait(days, total))
        try:
            await post_bulk(system, token, bodies, concurrency)
        except BaseException:
            done.cancel()
            raise
        accepted = time.perf_counter() - start
        finished = await done
    return Rate(total, finished - start, accepted)


def subject_of(node: str) -> str:
    return f"{SUBMIT}.{node[:6]}"


async def _publisher(system: System, window: int = 4_000):
    nc = await nats.connect(system.nats_url)
    return nc, nc.jetstream(publish_async_max_pending=window)


def _headers(token: str, msg_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Nats-Msg-Id": msg_id}


async def bus_flat_out(system: System, token: str, messages: list[tuple[str, str, bytes]],
                       days: Sequence[date], root: str, reports: int | None = None) -> Rate:
    """Publish (subject, message id, body) as fast as JetStream acknowledges them; `reports`
    when a message carries several (a JSON array of them)."""
    nc, js = await _publisher(system)
    try:
        async with Progress(system.database_url, root) as progress:
            start = time.perf_counter()
            total = reports or len(messages)
            done = asyncio.create_task(progress.wait(days, total))
            try:
                for subject, msg_id, body in messages:
                    await js.publish_async(subject, body, headers=_headers(token, msg_id))
                await js.publish_async_completed()
            except BaseException:
                done.cancel()
                raise
            accepted = time.perf_counter() - start
            finished = await done
    finally:
        await nc.close()
    return Rate(total, finished - start, accepted)


async def _paced(count: int, rate: float, send) -> float:
    """Call `send(i)` for i in range(count) at `rate` per second; returns the seconds taken."""
    start = time.perf_counter()
    i = 0
    while i < count:
        due = min(count, int((time.perf_counter() - start) * rate) + 1)
        while i < due:
            await send(i)
            i += 1
        await asyncio.sleep(0.002)
    return time.perf_counter() - start


@dataclass
class CaseProbe:
    """Fever cases sent beside the reports: each must open an alert."""

    units: list[str]
    per_second: float
    sent: dict[str, float] = field(default_factory=dict)  # case id → epoch seconds sent
    failures: list[str] = field(default_factory=list)

    async def run(self, system: System, token: str, seconds: float) -> None:
        count = max(1, int(seconds * self.per_second))
        async with _client(system, token) as client:
            tasks = []

            async def send(i: int) -> None:
                case_id = str(uuid.uuid4())
                body = {"unit": self.units[i % len(self.units)], "kind": "fever",
                        "found_at": datetime.now(UTC).isoformat(),
                        "temperature": 38.4, "symptoms": ["cough"],
                        "person_ref": f"B-{i}", "case_id": case_id}
                self.sent[case_id] = time.time()
                tasks.append(asyncio.create_task(self._post(client, body)))

            await _paced(count, self.per_second, send)
            await asyncio.gather(*tasks)

    async def _post(self, client: httpx.AsyncClient, body: dict) -> None:
        answer = await client.post("/v1/cases", json=body)
        if answer.status_code not in (200, 201):
            self.failures.append(f"{answer.status_code} {answer.text[:300]}")

    async def latency(self, database_url: str, commit_timestamps: bool,
                      wait_s: float = 60) -> Latency:
        if self.failures:
            raise BenchError(f"{len(self.failures)} cases refused, e.g. {self.failures[0]}")
        when = "pg_xact_commit_timestamp(xmin)" if commit_timestamps else "opened_at"
        conn = await asyncpg.connect(dsn(database_url))
        try:
            deadline = time.monotonic() + wait_s
            while True:
                rows = await conn.fetch(
                    f"SELECT case_id::text AS case_id, extract(epoch FROM {when})::float8 AS t "
                    "FROM alerts.alerts WHERE case_id = ANY($1::uuid[])", list(self.sent))
                if len(rows) >= len(self.sent) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        finally:
            await conn.close()
        if len(rows) < len(self.sent):
            raise BenchError(f"only {len(rows)} of {len(self.sent)} cases opened an alert")
        return Latency([r["t"] - self.sent[r["case_id"]] for r in rows], self.per_second,
                       self.per_second)


async def rate_bus(system: System, token: str, messages: list[tuple[str, str, bytes]],
                   units: list[str], day: date, root: str, rate: float,
                   cases: CaseProbe | None = None) -> Latency:
    """One message per report at a fixed rate; latency per report to its committed rollup."""
    sent = [0.0] * len(messages)
    nc, js = await _publisher(system)
    try:
        async def send(i: int) -> None:
            subject, msg_id, body = messages[i]
            sent[i] = time.time()
            await js.publish_async(subject, body, headers=_headers(token, msg_id))

        probe = (asyncio.create_task(cases.run(system, token, len(messages) / rate))
                 if cases else None)
        seconds = await _paced(len(messages), rate, send)
        await js.publish_async_completed()
        if probe:
            await probe
    finally:
        await nc.close()
    return await _latencies(system, units, sent, day, root, rate, len(messages) / seconds)


async def rate_bulk(system: System, token: str, items: list[dict], units: list[str], day: date,
                    root: str, rate: float, every: float = 0.05) -> Latency:
    """Small bulk requests (a gateway forwarding what arrived in the last `every` seconds) at a
    fixed rate of reports; latency per report from its request to its committed rollup."""
    size = max(1, round(rate * every))
    batches = [items[i:i + size] for i in range(0, len(items), size)]
    bodies = [json.dumps(b, ensure_ascii=False).encode() for b in batches]
    sent = [0.0] * len(items)
    tasks = []
    async with _client(system, token) as client:
        async def send(b: int) -> None:
            now = time.time()
            for j in range(b * size, b * size + len(batches[b])):
                sent[j] = now
            tasks.append(asyncio.create_task(client.post("/v1/reports/bulk", content=bodies[b])))

        seconds = await _paced(len(batches), 1 / every, send)
        for task, batch in zip(tasks, batches, strict=True):
            _check_bulk(await task, len(batch))
    return await _latencies(system, units, sent, day, root, rate, len(items) / seconds)


async def _latencies(system: System, units: list[str], sent: list[float], day: date, root: str,
                     offered: float, achieved: float) -> Latency:
    async with Progress(system.database_url, root) as progress:
        await progress.wait([day], len(units))
        committed = await progress.commit_times(day, system.commit_timestamps)
    return Latency([committed[u] - t for u, t in zip(units, sent, strict=True)], offered,
                   achieved, sent)


async def wait_published(database_url: str, stall: float = 120) -> None:
    conn = await asyncpg.connect(dsn(database_url))
    try:
        last, since = -1, time.monotonic()
        while (count := await conn.fetchval("SELECT count(*) FROM ingest.outbox")) > 0:
            if count != last:
                last, since = count, time.monotonic()
            elif time.monotonic() - since > stall:
                raise BenchError(f"ingest's outbox stalled at {count:,} messages")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


async def backlog(system: System, token: str, bodies: list[tuple[bytes, int]],
                  days: Sequence[date], root: str, concurrency: int) -> dict:
    """Aggregate down; the backlog submitted and published; aggregate started: how long until
    every report of the backlog is in the rollups."""
    total = sum(n for _, n in bodies)
    system.stop("aggregate")
    start = time.perf_counter()
    await post_bulk(system, token, bodies, concurrency)
    accepted = time.perf_counter() - start
    # Every report is in the stream once ingest's outbox is empty (a message carries a
    # village's reports, so the stream's count of messages says less).
    await wait_published(system.database_url)
    published = time.perf_counter() - start
    async with Progress(system.database_url, root) as progress:
        restart = time.perf_counter()
        cpu = await system.measure_from()
        await asyncio.to_thread(system.start, "aggregate")
        ready = time.perf_counter() - restart
        finished = await progress.wait(days, total, stall=300)
    catch_up = Rate(total, finished - restart)
    measured = await system.measured(cpu, total)
    return {"reports": total, "ingest_seconds": round(accepted, 3),
            "ingest_per_second": round(total / accepted, 1),
            "published_seconds": round(published, 3),
            "aggregate_start_seconds": round(ready, 3),
            "catch_up_seconds": round(catch_up.seconds, 3),
            "catch_up_per_second": round(catch_up.per_second, 1), **measured}


async def prebuild_days(system: System, root: str, days: Sequence[date]) -> float:
    """Aggregate counts the units expected on a day when it first enters it (today at start and
    after midnight, a past day at its first report): on a province, a statement over every unit
    that holds the day's exclusive lock, so every batch for the day waits for it. The
    benchmark's past days are entered here, by aggregate's own code, outside the measured
    phases. (A read of the rollups used to build a day; since reads never write, a prebuild by
    reading built nothing, and each phase's first batch built its day: stalls of seconds.)"""
    start = time.perf_counter()
    engine = make_engine(system.database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await expected.rebuild(session, set(days), utc_now())
    finally:
        await engine.dispose()
    async with Progress(system.database_url, root) as progress:
        assert progress.conn is not None
        built = await progress.conn.fetchval(
            "SELECT count(*) FROM aggregate.days WHERE day = ANY($1::date[])", list(days))
    if built != len(set(days)):
        raise BenchError(f"{built} of {len(set(days))} days built ahead")
    return time.perf_counter() - start


def days_before(today: date, first: int, count: int) -> list[date]:
    return [today - timedelta(days=first + i) for i in range(count)]
