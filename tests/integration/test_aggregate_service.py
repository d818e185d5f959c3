"""Aggregate as production runs it (`rollcall serve aggregate`, separate processes), fed by
accepted-report events published straight to JetStream, on a database of its own so that what is
checked was written by these replicas only:

- two replicas share one durable consumer and count nothing twice;
- a replica pinned to a county by subject filter takes that county and nothing else;
- a replica killed mid-stream and started again loses nothing and counts nothing twice;
- live RollupUpdated events are coalesced;
- `rollcall reconcile` agrees, finds a corruption, and repairs it;
- a registry change is reflected in the expected and missing units.
"""

import asyncio
import random
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import nats
import pytest
from sqlalchemy import text

from rollcall import reconcile
from services.aggregate.rollup import COUNT_FIELDS, Applied, from_scratch
from shared.catalogue import default_catalogue
from shared.contracts import RegistryChanged, RollupUpdated
from shared.db import make_engine, make_sessionmaker
from shared.deadlines import Moment
from shared.registry import store
from tests.conftest import Servers, issue_token, start_service
from tests.integration.aggregate_support import (
    Unit,
    county_registry,
    drained,
    private_database,
    publish,
    random_reports,
    record_ledger,
    report,
    roster,
)

catalogue = default_catalogue()
SHARED, PINNED, OTHER, KILLED = "439901", "439902", "439903", "439904"
DAY = date(2022, 3, 1)


@pytest.fixture(scope="module")
def database(servers) -> str:
    return private_database(servers.database_url, [SHARED, PINNED, OTHER, KILLED])


@pytest.fixture(scope="module")
def reader(servers, database: str) -> dict[str, str]:
    """An operator over the made-up counties (4399xx): rollup reads need a token."""
    token = issue_token(Servers(servers.nats_url, database), "operator", "4399", "测试读者")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
async def bus(servers):
    connection = await nats.connect(servers.nats_url)
    yield connection, connection.jetstream()
    await connection.close()


@pytest.fixture(scope="module")
async def sessions(database):
    engine = make_engine(database, pool_size=2)
    yield make_sessionmaker(engine)
    await engine.dispose()


def serve(servers, database: str, log_dir, county: str, batch: int = 20):
    # A short ack wait: what a killed replica had taken comes back to the others quickly.
    return start_service(servers, "aggregate", log_dir, ROLLCALL_DATABASE_URL=database,
                         ROLLCALL_AGGREGATE_FILTER=f"report.accepted.{county}.>",
                         ROLLCALL_AGGREGATE_BATCH=str(batch), ROLLCALL_AGGREGATE_ACK_WAIT="3")


@pytest.fixture(scope="module")
def replicas(servers, database, tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("aggregate-replicas")
    running = [serve(servers, database, log_dir, SHARED, batch=10) for _ in range(2)]
    yield [r.url for r in running]
    for r in running:
        r.stop()


def units_of(county: str):
    return county_registry(county)[1]


def with_duplicates(events, rng: random.Random):
    """Shuffled (corrections may come before what they correct), and some events delivered
    twice: the same event under another message id, as an outbox replay after the stream's
    duplicate window would be."""
    again = rng.sample(events, len(events) // 4)
    out = [(e, e.msg_id) for e in events] + [(e, f"{e.msg_id}:again") for e in again]
    rng.shuffle(out)
    return out


async def publish_with_ids(js, pairs) -> None:
    await asyncio.gather(*(js.publish(e.subject, e.model_dump_json().encode(),
                                      headers={"Nats-Msg-Id": msg_id}) for e, msg_id in pairs))


def recompute(events, day: date, county: str):
    latest = {}
    for e in events:
        if e.day == day and (e.unit not in latest or e.revision > latest[e.unit].revision):
            latest[e.unit] = e
    return from_scratch([Applied(e.unit, e.day, e.revision, e.node, e.values, e.zero, e.late)
                         for e in latest.values()], catalogue, roster(units_of(county), day),
                        Moment(datetime.now(UTC), ZoneInfo("Asia/Shanghai")))


async def differences(sessions, day: date, node: str) -> list:
    async with sessions() as session:
        return (await reconcile.check(session, day, node, catalogue)).differences


async def test_two_replicas_share_the_stream_without_double_counting(replicas, bus,
                                                                     sessions, reader) -> None:
    _, js = bus
    rng = random.Random(5)
    days = [DAY, DAY + timedelta(days=1), DAY + timedelta(days=2)]
    events = [e for d in days for e in random_reports(units_of(SHARED), d, rng)]
    await record_ledger(sessions, events)
    pairs = with_duplicates(events, rng)
    for i in range(0, len(pairs), 25):  # in bursts, as reports come in
        await publish_with_ids(js, pairs[i:i + 25])
        await asyncio.sleep(0.05)
    assert await drained(js, f"aggregate-{SHARED}")
    async with httpx.AsyncClient(timeout=30, headers=reader) as client:
        statuses = [(await client.get(f"{url}/v1/status")).json() for url in replicas]
        assert all(s["events"] > 0 for s in statuses), statuses  # both took part
        assert sum(s["events"] for s in statuses) >= len(pairs)
        for day in days:
            values, counts = recompute(events, day, SHARED)
            county = (await client.get(f"{replicas[0]}/v1/rollups/{SHARED}",
                                       params={"day": day.isoformat()})).json()
            want = {m: v for (n, _, m), v in values.items() if n == SHARED}
            assert county["values"] == pytest.approx(want)
            c = counts[(SHARED, day)]
            assert {k: county["completeness"][k] for k in COUNT_FIELDS} == c.as_dict()
            assert await differences(sessions, day, SHARED) == []


async def test_a_pinned_replica_takes_its_county_only(servers, database, bus, sessions,
                                                      tmp_path_factory) -> None:
    _, js = bus
    rng = random.Random(6)
    mine = random_reports(units_of(PINNED), DAY, rng)
    theirs = random_reports(units_of(OTHER), DAY, rng)
    await record_ledger(sessions, mine + theirs)
    replica = serve(servers, database, tmp_path_factory.mktemp("pinned"), PINNED)
    try:
        await publish(js, theirs + mine)
        assert await drained(js, f"aggregate-{PINNED}")
        async with httpx.AsyncClient() as client:
            status = (await client.get(f"{replica.url}/v1/status")).json()
        info = await js.consumer_info("REPORTS", f"aggregate-{PINNED}")
    finally:
        replica.stop()
    assert status["events"] == len(mine) and status["durable"] == f"aggregate-{PINNED}"
    assert info.config.filter_subject == f"report.accepted.{PINNED}.>"
    assert await differences(sessions, DAY, PINNED) == []
    async with sessions() as session:
        other = await session.scalar(text(
            "SELECT count(*) FROM aggregate.unit_days WHERE node_code LIKE :n || '%'"),
            {"n": OTHER})
    assert other == 0


async def test_a_replica_killed_mid_stream_loses_nothing_and_counts_nothing_twice(
        servers, database, bus, sessions, tmp_path_factory) -> None:
    _, js = bus
    rng = random.Random(7)
    days = [DAY + timedelta(days=10 + i) for i in range(12)]
    events = [e for d in days for e in random_reports(units_of(KILLED), d, rng)]
    await record_ledger(sessions, events)
    log_dir = tmp_path_factory.mktemp("killed")
    first = serve(servers, database, log_dir, KILLED, batch=5)
    try:
        await publish_with_ids(js, with_duplicates(events, rng))
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient() as client:
            while (await client.get(f"{first.url}/v1/status")).json()["applied"] < 40:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
        first.proc.kill()  # SIGKILL: no drain, batches in flight are lost with the process
        first.proc.wait(10)
        info = await js.consumer_info("REPORTS", f"aggregate-{KILLED}")
        assert info.num_pending + info.num_ack_pending > 0  # it really died mid-stream
    finally:
        first.stop()
    second = serve(servers, database, log_dir, KILLED, batch=50)
    try:
        # What the killed one had taken comes back once its ack wait has passed.
        assert await drained(js, f"aggregate-{KILLED}", within=90)
    finally:
        second.stop()
    for day in days:
        assert await differences(sessions, day, KILLED) == []


async def test_rollup_updated_is_coalesced_per_node(replicas, bus, sessions) -> None:
    connection, js = bus
    day = DAY + timedelta(days=40)
    received: list[tuple[float, RollupUpdated]] = []

    async def on_message(msg) -> None:
        received.append((time.monotonic(), RollupUpdated.model_validate_json(msg.data)))

    subscription = await connection.subscribe(f"rollup.updated.{SHARED}", cb=on_message)
    village = f"rollup.updated.{SHARED}001001"
    village_subscription = await connection.subscribe(village, cb=on_message)
    rng = random.Random(8)
    events = [e for _ in range(3) for e in random_reports(units_of(SHARED), day, rng, 1.0)]
    start = time.monotonic()
    for i in range(0, len(events), 10):  # a burst over about two seconds
        await publish(js, events[i:i + 10])
        await asyncio.sleep(0.2)
    assert await drained(js, f"aggregate-{SHARED}")
    await asyncio.sleep(2.5)  # the last coalesced notice goes out within a second
    await subscription.unsubscribe()
    await village_subscription.unsubscribe()
    county = [(t, e) for t, e in received if e.node == SHARED and e.day == day]
    elapsed = time.monotonic() - start
    assert 1 <= len(county) <= 2 * (elapsed + 2)  # per replica: about once a second at most
    assert len(county) < len(events) / 3
    assert any(e.node == f"{SHARED}001001" for _, e in received)
    async with httpx.AsyncClient() as client:
        status = [(await client.get(f"{url}/v1/status")).json() for url in replicas]
    assert sum(s["announced"] for s in status) > 0


def run_reconcile(database: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rollcall", "reconcile", *args],
                          env={"ROLLCALL_DATABASE_URL": database, "PATH": "/usr/bin:/bin",
                               "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=120)


async def test_reconcile_finds_a_corruption_and_repairs_it(replicas, database, sessions) -> None:
    # The data of the shared county, consumed by the replicas in the first test.
    day = DAY.isoformat()
    ok = run_reconcile(database, "--day", day, "--node", SHARED)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "consistent" in ok.stdout
    async with sessions() as session, session.begin():
        await session.execute(text(
            "UPDATE aggregate.node_days SET values = values || '{\"fever\": 99}' "
            "WHERE day = :d AND node_code = :n"), {"d": DAY, "n": f"{SHARED}001001"})
        await session.execute(text(
            "DELETE FROM aggregate.unit_days WHERE day = :d AND unit_code = :u"),
            {"d": DAY, "u": f"{SHARED}002-PS"})
    broken = run_reconcile(database, "--day", day, "--node", SHARED)
    assert broken.returncode == 1
    assert f"{SHARED}001001" in broken.stdout and f"{SHARED}002-PS" in broken.stdout
    repaired = run_reconcile(database, "--day", day, "--node", SHARED, "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert run_reconcile(database, "--day", day, "--node", SHARED).returncode == 0
    # Over the whole day, only the county no replica here was pinned to is not rolled up.
    found = await differences(sessions, DAY, "")
    assert found and all(d.key.startswith(OTHER) for d in found if d.kind == "unit")
    assert {d.key for d in found if d.kind != "unit"} <= {"43", "4399", *(
        n for n, _ in county_registry(OTHER)[0])}


async def test_a_registry_change_moves_expected_and_missing(replicas, bus, sessions,
                                                            reader) -> None:
    _, js = bus
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    village = f"{SHARED}003003"
    url = f"{replicas[0]}/v1/rollups/{village}"
    client = httpx.AsyncClient(params={"day": today.isoformat()}, timeout=30, headers=reader)
    before = (await client.get(url)).json()["completeness"]
    async with sessions() as session, session.begin():
        await store.upsert_units(session, [{
            "code": f"{village}-NEW", "name": "新开诊所", "unit_type": "private_clinic",
            "sector": "health", "node": village, "active_from": today}], today)
    event = RegistryChanged(changed_at=datetime.now(UTC), what=["units"])
    await js.publish(event.subject, event.model_dump_json().encode(),
                     headers={"Nats-Msg-Id": event.msg_id})

    async def updated() -> dict | None:
        comp = (await client.get(url)).json()["completeness"]
        return comp if comp["expected"] == before["expected"] + 1 else None

    deadline = time.monotonic() + 30
    while (after := await updated()) is None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    # Missing after its cutoff, pending before it (a run in the small hours).
    unreported = ("missing", "pending")
    assert sum(after[k] for k in unreported) == sum(before[k] for k in unreported) + 1
    assert f"{village}-NEW" in {u["unit"] for k in unreported for u in after[f"{k}_units"]}
    await publish(js, [report(Unit(f"{village}-NEW", village, "private_clinic", "health"),
                              today, values={"fever": 1})])
    assert await drained(js, f"aggregate-{SHARED}")
    final = (await client.get(url)).json()["completeness"]
    await client.aclose()
    assert (final["expected"], final["missing"]) == (before["expected"] + 1, before["missing"])
    assert f"{village}-NEW" not in {u["unit"] for u in final["missing_units"]}
