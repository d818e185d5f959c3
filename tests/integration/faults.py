"""Fault injection with real processes, shared by the fault and backpressure tests.

`System` is a county of its own: an embedded NATS and PostgreSQL (so both can be restarted on
the same port and store), and ingest, aggregate, alerts and notify as `rollcall serve`
processes; a person on duty at every node of the county, told by SMS through a local gateway
(tests/integration/notify_support.py).
`Load` submits reports over HTTP (bulk) and over the bus, and fever cases over HTTP, at a steady
pace; each item is sent again (with the same id) until it has a definite answer, as a careful
client does, so what was accepted is known exactly. `check_exactly_once` then compares the
ledger, the rollups, `rollcall reconcile`, the REPORTS stream and the alerts with that record;
`check_told_once`, the SMS each case's alert made with what notify recorded.
"""

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import nats
from sqlalchemy import text
from sqlalchemy.engine import make_url

from rollcall.embedded import EmbeddedNats, EmbeddedPostgres
from rollcall.migrate import upgrade
from rollcall.reference import load_demo_and_announce
from services.notify import staffing
from services.notify.policy import DEFAULT_PATH as NOTIFY_POLICY
from shared.contracts import REPORT_SUBMIT, reports_of
from shared.db import make_engine, make_sessionmaker
from shared.registry import demo
from tests.conftest import RunningService, Servers, eventually, issue_token, start_service
from tests.integration.conftest import ZONE, stream_messages, today
from tests.integration.notify_support import ALLOWED, HOSTS, Gateway

COUNTY = "430621"
UNITS = [u["code"] for u in demo.units() if u["node"].startswith(COUNTY)]
SERVICES = ("ingest", "aggregate", "alerts", "notify")
# Every node a unit of the county sits at (villages, and towns that run units themselves): each
# gets a person on duty, so that every case's alert has someone to tell.
NODES = sorted({u["node"] for u in demo.units() if u["node"].startswith(COUNTY)})
NOTIFY_BATCH = 8  # deliveries one notify worker has in flight at most (DeliveryWorker's batch)

# What a killed consumer had taken comes back after its ack wait: short here. The alerts clock
# ticks every second. Ingest gives up on a hung database after 5 s.
ENV = {"ROLLCALL_SUBMIT_ACK_WAIT_S": "3", "ROLLCALL_AGGREGATE_ACK_WAIT": "3",
       "ROLLCALL_ALERTS_TICK_S": "1", "ROLLCALL_INGEST_DB_TIMEOUT_S": "5"}
DB_TIMEOUT_S = 5.0
# Notify: a delivery held by a killed worker is taken again after 2 s, not 2 minutes.
NOTIFY_POLICY_CHANGES = {"lease_s = 120": "lease_s = 2", "first_delay_s = 30": "first_delay_s = 1"}


async def seed_staff(database_url: str) -> None:
    """A person on duty, with a phone, at every node of the county, today and tomorrow (the
    day of an alert is its local day: a run across midnight still has someone on duty)."""
    days = [today(), today() + timedelta(days=1)]
    people = "code,name,node,phone\n" + "".join(
        f"duty-{node},值班{i},{node},138{i:08d}\n" for i, node in enumerate(NODES))
    rosters = "node,day,person,role\n" + "".join(
        f"{node},{day},duty-{node},on_duty\n" for day in days for node in NODES)
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            for kind, content in (("people", people), ("rosters", rosters)):
                _, problems = await staffing.import_staff(
                    session, kind, content.encode(), kind, False, COUNTY,
                    datetime.now(ZONE), today(), hosts=HOSTS)
                assert not problems, [str(p) for p in problems[:5]]
    finally:
        await engine.dispose()


async def scalar(database_url: str, sql: str, **params) -> object:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            return (await session.execute(text(sql), params)).scalar_one()
    finally:
        await engine.dispose()


async def publish_to_bus(nats_url: str, token: str, bodies: list[tuple[str, dict]]) -> None:
    """Gateway submissions into the SUBMISSIONS stream, each confirmed by the stream."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        for subject, body in bodies:
            ack = await js.publish(subject, json.dumps(body).encode(),
                                   headers={"Authorization": f"Bearer {token}"})
            assert ack.stream == "SUBMISSIONS"
    finally:
        await connection.close()


def plain(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(
        hide_password=False)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@dataclass
class System:
    root: Path
    nats: EmbeddedNats
    postgres: EmbeddedPostgres
    servers: Servers
    gateway: Gateway
    env: dict[str, str]
    services: dict[str, RunningService] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    recoveries: list[tuple[str, float, float]] = field(default_factory=list)  # at, seconds

    @classmethod
    def start(cls, root: Path) -> "System":
        nats_server = EmbeddedNats(root / "nats")
        nats_url = nats_server.start()
        postgres = EmbeddedPostgres(root / "postgres", durable=False)
        gateway = Gateway()
        try:
            database_url = postgres.start()
            upgrade(database_url)
            asyncio.run(load_demo_and_announce(database_url, nats_url))
            asyncio.run(seed_staff(database_url))
        except BaseException:
            gateway.stop()
            postgres.stop()
            nats_server.stop()
            raise
        policy = NOTIFY_POLICY.read_text(encoding="utf-8")
        for default, short in NOTIFY_POLICY_CHANGES.items():
            policy = policy.replace(default, short)
        (root / "notify.toml").write_text(policy, encoding="utf-8")
        env = {**ENV, "ROLLCALL_NOTIFY_SMS_URL": f"{gateway.url}/sms",
               "ROLLCALL_NOTIFY_ALLOWED_HOSTS": ALLOWED,
               "ROLLCALL_NOTIFY_CONFIG": str(root / "notify.toml"),
               "ROLLCALL_NOTIFY_POLL_S": "0.2"}
        system = cls(root, nats_server, postgres, Servers(nats_url, database_url), gateway, env)
        try:
            for name in SERVICES:
                system.serve(name)
        except BaseException:
            system.stop()
            raise
        return system

    def serve(self, name: str) -> RunningService:
        service = start_service(self.servers, name, self.root, self.ports.get(name), **self.env)
        self.services[name] = service
        self.ports[name] = int(service.url.rsplit(":", 1)[1])
        return service

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def pid(self, name: str) -> int:
        return self.services[name].proc.pid

    def stop(self) -> None:
        stuck = []
        for service in self.services.values():
            try:
                service.stop()
            except subprocess.TimeoutExpired:
                stuck.append(service.name)
        self.postgres.stop()
        self.nats.stop()
        self.gateway.stop()
        assert not stuck, f"did not stop on SIGTERM within 30 s: {stuck}"

    def all_ready(self) -> bool:
        for name in SERVICES:
            try:
                if httpx.get(f"{self.url(name)}/readyz", timeout=2).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
        return True

    def _recovered(self, fault: str, started: float) -> float:
        assert eventually(self.all_ready, timeout=90, interval=0.2), f"not ready after {fault}"
        took = time.monotonic() - started
        self.recoveries.append((fault, started, took))
        return took

    # --- the faults ------------------------------------------------------------------------

    def kill9(self, name: str) -> float:
        """SIGKILL a service and start it again on the same port; seconds until all ready."""
        started = time.monotonic()
        proc = self.services[name].proc
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(10) == -signal.SIGKILL
        self.serve(name)
        return self._recovered(f"kill -9 {name}", started)

    def restart_nats(self) -> float:
        """Stop NATS and start it again on the same port with the same store."""
        started = time.monotonic()
        self.nats.stop()
        self.nats = EmbeddedNats(self.nats.data_dir, self.nats.port)
        self.nats.start()
        return self._recovered("restart NATS", started)

    def restart_postgres(self) -> float:
        started = time.monotonic()
        self.postgres.stop()
        self.postgres.start()
        return self._recovered("restart PostgreSQL", started)

    def cut_database_connections(self, at_least: int = 2, rounds: int = 100) -> int:
        """pg_terminate_backend on every connection of the services, again every 0.1 s until
        `at_least` of those cut were in a transaction (running a statement or idle within
        one), for `rounds` at most; how many were."""
        async def cut() -> int:
            conn = await asyncpg.connect(plain(self.servers.database_url))
            try:
                return await conn.fetchval("""
                    WITH victims AS MATERIALIZED (
                        SELECT pid, state FROM pg_stat_activity
                        WHERE datname = current_database() AND pid <> pg_backend_pid()
                          AND backend_type = 'client backend')
                    SELECT count(*) FILTER (WHERE state IN ('active', 'idle in transaction'))
                    FROM victims WHERE pg_terminate_backend(pid)""")
            finally:
                await conn.close()

        started = time.monotonic()
        in_transaction = 0
        for _ in range(rounds):
            in_transaction += asyncio.run(cut())
            if in_transaction >= at_least:
                break
            time.sleep(0.1)
        self._recovered("cut database connections", started)
        return in_transaction


@dataclass
class Tally:
    accepted: dict[tuple[str, str], float] = field(default_factory=dict)  # (unit, day): fever
    when: dict[tuple[str, str], tuple[str, float]] = field(default_factory=dict)  # source, time
    cases: set[str] = field(default_factory=set)
    answers: collections.Counter = field(default_factory=collections.Counter)
    errors: list[str] = field(default_factory=list)  # anything but 2xx, 503 or no connection


class Load:
    """Steady load on a System from a thread of its own: `rate` reports a second (half over
    HTTP in bulks of `chunk`, half over the bus) and a fever case every `case_every_s`."""

    def __init__(self, system: System, token: str, rate: float, chunk: int = 20,
                 case_every_s: float = 1.0, days: int = 7) -> None:
        self.system, self.token, self.rate, self.chunk = system, token, rate, chunk
        self.case_every_s = case_every_s
        # Today and the six days before: all still open (eight are) if midnight passes meanwhile.
        keys = [(u, (today() - timedelta(days=d)).isoformat()) for d in range(days) for u in UNITS]
        self._keys = iter(keys)
        self._lock = threading.Lock()
        self.tally = Tally()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.started = self.stopped = 0.0
        self.exhausted = False  # ran out of unit-days: the load was not steady to the end

    def __enter__(self) -> "Load":
        self.started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self, patience_s: float = 120) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join(patience_s)
        self.stopped = time.monotonic()
        assert not self._thread.is_alive(), "the load did not finish its items in time"

    @property
    def reports_per_s(self) -> float:
        return len(self.tally.accepted) / max(1e-9, (self.stopped or time.monotonic())
                                              - self.started)

    def _take(self, n: int) -> list[tuple[str, str]]:
        with self._lock:
            taken = [k for _, k in zip(range(n), self._keys, strict=False)]
        self.exhausted = self.exhausted or len(taken) < n
        return taken

    @staticmethod
    def _body(unit: str, day: str, source: str) -> dict:
        report_id = uuid.uuid5(uuid.NAMESPACE_URL, f"faults/{unit}/{day}")
        fever = 1 + int(report_id.hex[:2], 16) % 3
        return {"unit": unit, "day": day, "reporter": source, "values": {"fever": fever},
                "report_id": str(report_id)}

    async def _paced(self, per_s: float, step) -> None:
        interval, due = 1.0 / per_s, time.monotonic()
        while not self._stop.is_set():
            if not await step():
                return
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=20) as client:
            bus = await nats.connect(self.system.servers.nats_url, max_reconnect_attempts=-1,
                                     reconnect_time_wait=0.2, allow_reconnect=True)
            try:
                await asyncio.gather(
                    self._paced(self.rate / 2 / self.chunk, lambda: self._http_bulk(client)),
                    self._paced(self.rate / 2, lambda: self._bus_one(bus.jetstream())),
                    self._paced(1 / self.case_every_s, lambda: self._case(client)))
            finally:
                await bus.close()

    async def _until_answered(self, send, what: str) -> httpx.Response | None:
        while True:
            try:
                response = await send()
            except (httpx.TransportError, nats.errors.Error, TimeoutError, OSError) as exc:
                self.tally.answers[type(exc).__name__] += 1
            else:
                status = getattr(response, "status_code", 200)
                self.tally.answers[status] += 1
                if status < 300:
                    return response
                if status != 503:
                    self.tally.errors.append(f"{what}: {status} {response.text[:300]}")
                    return None
                assert response.headers.get("Retry-After"), f"{what}: 503 without Retry-After"
            await asyncio.sleep(0.3)

    async def _http_bulk(self, client: httpx.AsyncClient) -> bool:
        keys = self._take(self.chunk)
        if not keys:
            return False
        bodies = [self._body(u, d, "faults-http") for u, d in keys]
        response = await self._until_answered(lambda: client.post(
            f"{self.system.url('ingest')}/v1/reports/bulk", json=bodies,
            headers={"Authorization": f"Bearer {self.token}"}), "bulk")
        if response is not None:
            for body, result in zip(bodies, response.json()["results"], strict=True):
                if result["status"] in ("accepted", "duplicate"):
                    self.tally.accepted[(body["unit"], body["day"])] = body["values"]["fever"]
                    self.tally.when[(body["unit"], body["day"])] = ("http", time.monotonic())
                else:
                    self.tally.errors.append(f"refused: {result}")
        return True

    async def _bus_one(self, js) -> bool:
        keys = self._take(1)
        if not keys:
            return False
        body = self._body(*keys[0], "faults-bus")
        data = json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self.token}", "Nats-Msg-Id": body["report_id"]}
        ack = await self._until_answered(
            lambda: js.publish(REPORT_SUBMIT, data, headers=headers, timeout=2), "bus")
        if ack is not None:  # in the stream: ingest takes it when it can
            self.tally.accepted[(body["unit"], body["day"])] = body["values"]["fever"]
            self.tally.when[(body["unit"], body["day"])] = ("bus", time.monotonic())
        return True

    async def _case(self, client: httpx.AsyncClient) -> bool:
        case_id = str(uuid.uuid4())
        found = (datetime.now(ZONE) - timedelta(minutes=1)).isoformat()
        unit = UNITS[len(self.tally.cases) % len(UNITS)]
        response = await self._until_answered(lambda: client.post(
            f"{self.system.url('ingest')}/v1/cases", headers={
                "Authorization": f"Bearer {self.token}"}, json={
                "unit": unit, "kind": "fever", "temperature": 38.6, "found_at": found,
                "person_ref": f"P-{case_id[:8]}", "case_id": case_id}), "case")
        if response is not None:
            self.tally.cases.add(case_id)
        return True


def county_token(system: System) -> str:
    return issue_token(system.servers, "operator", COUNTY, "故障测试")


def reconcile(system: System, day: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rollcall", "reconcile", "--day", day],
                          env={**os.environ, "ROLLCALL_DATABASE_URL": system.servers.database_url},
                          capture_output=True, text=True, timeout=120)


async def consumers(nats_url: str) -> dict[str, tuple[int, int, int]]:
    """Each durable consumer: (pending, acknowledgements pending, redelivered)."""
    connection = await nats.connect(nats_url)
    try:
        js, out = connection.jetstream(), {}
        for stream in ("SUBMISSIONS", "REPORTS", "CASES"):
            for info in await js.consumers_info(stream):
                out[f"{stream}/{info.name}"] = (info.num_pending, info.num_ack_pending,
                                                info.num_redelivered)
        return out
    finally:
        await connection.close()


def check_exactly_once(system: System, tally: Tally, patience_s: float = 180) -> float:
    """Wait until everything accepted is applied, then check that each report is in the ledger,
    the stream and the rollups exactly once, reconcile finds no difference, and each case opened
    exactly one alert. Seconds it took to settle."""
    url = system.servers.database_url
    days = sorted({d for _, d in tally.accepted})
    started = time.monotonic()

    async def settled() -> bool:
        conn = await asyncpg.connect(plain(url))
        try:
            ledger = await conn.fetchval("SELECT count(*) FROM ingest.reports WHERE day = ANY($1)",
                                         [date.fromisoformat(d) for d in days])
            applied = await conn.fetchval(
                "SELECT count(*) FROM aggregate.unit_days WHERE day = ANY($1)",
                [date.fromisoformat(d) for d in days])
            outboxes = await conn.fetchval(
                "SELECT (SELECT count(*) FROM ingest.outbox) "
                "+ (SELECT count(*) FROM alerts.outbox)")
            alerts = await conn.fetchval(
                "SELECT count(*) FROM alerts.alerts WHERE kind = 'case' AND case_id = ANY($1)",
                [uuid.UUID(c) for c in tally.cases])
            last.update(ledger=ledger, applied=applied, outboxes=outboxes, alerts=alerts)
            return (ledger >= len(tally.accepted) and applied >= len(tally.accepted)
                    and outboxes == 0 and alerts >= len(tally.cases))
        except (OSError, asyncpg.PostgresError):
            return False
        finally:
            await conn.close()

    last: dict = {}
    if not eventually(lambda: asyncio.run(settled()), timeout=patience_s, interval=0.5):
        raise AssertionError(
            f"not everything accepted was applied in {patience_s} s: {len(tally.accepted)} "
            f"reports and {len(tally.cases)} cases accepted, now {last}; consumers: "
            f"{asyncio.run(consumers(system.servers.nats_url))}")
    took = time.monotonic() - started
    time.sleep(1.5)  # a late redelivery or a repeated publish would show now

    async def read() -> tuple[list, list, list]:
        conn = await asyncpg.connect(plain(url))
        try:
            ledger = await conn.fetch(
                "SELECT unit_code, day::text AS day, count(*) AS n, max(revision) AS rev "
                "FROM ingest.reports WHERE day = ANY($1) GROUP BY 1, 2",
                [date.fromisoformat(d) for d in days])
            rollups = await conn.fetch(
                "SELECT day::text AS day, reported, (values->>'fever')::float8 AS fever "
                "FROM aggregate.node_days WHERE node_code = $1 AND day = ANY($2)",
                COUNTY, [date.fromisoformat(d) for d in days])
            alerts = await conn.fetch(
                "SELECT case_id::text AS case_id, count(*) AS n FROM alerts.alerts "
                "WHERE kind = 'case' GROUP BY 1")
            return ledger, rollups, alerts
        finally:
            await conn.close()

    ledger, rollups, alerts = asyncio.run(read())
    assert {(r["unit_code"], r["day"]): (r["n"], r["rev"]) for r in ledger} == {
        k: (1, 1) for k in tally.accepted}, "every accepted report once in the ledger"
    expected = collections.defaultdict(lambda: [0, 0.0])
    for (_, day), fever in tally.accepted.items():
        expected[day][0] += 1
        expected[day][1] += fever
    assert {r["day"]: [r["reported"], r["fever"]] for r in rollups} == dict(expected), \
        "the county's rollup counts each accepted report once"
    for day in days:
        result = reconcile(system, day)
        assert result.returncode == 0, f"reconcile {day}:\n{result.stdout}{result.stderr}"
    published = asyncio.run(stream_messages(system.servers.nats_url, "REPORTS",
                                            "report.accepted.>"))
    in_stream = collections.Counter(
        (e.unit, e.day.isoformat()) for m in published for e in reports_of(m))
    t0 = min((t for _, t in tally.when.values()), default=0.0)
    twice = {k: n for k, n in in_stream.items() if n > 1}
    missing = set(tally.accepted) - set(in_stream)
    extra = set(in_stream) - set(tally.accepted)
    assert not (twice or missing or extra), (
        f"each report in the stream once: {len(twice)} more than once {list(twice.items())[:5]}, "
        f"{len(missing)} missing {sorted(missing)[:5]}, {len(extra)} not accepted; missing "
        f"by source {collections.Counter(tally.when[k][0] for k in missing)}, accepted at "
        f"{sorted(round(tally.when[k][1] - t0, 1) for k in missing)[::20]} s; faults at "
        f"{[(f, round(t - t0, 1)) for f, t, _ in system.recoveries]} s")
    assert {r["case_id"]: r["n"] for r in alerts if r["case_id"] in tally.cases} == {
        c: 1 for c in tally.cases}, "one alert per case"
    opened = asyncio.run(stream_messages(system.servers.nats_url, "ALERTS", "alert.opened.>"))
    per_case = collections.Counter(json.loads(m.data).get("case_id") for m in opened)
    assert {c: per_case[c] for c in tally.cases} == {c: 1 for c in tally.cases}, \
        "one alert.opened per case in the ALERTS stream"
    return took


def check_told_once(system: System, tally: Tally, patience_s: float = 90) -> dict[str, int]:
    """Each case's alert told its node's person on duty by SMS, recorded once as sent; the
    gateway got each of those messages, and none again after it was recorded: a message is
    sent once per claim of its delivery (`attempts`), and a delivery recorded as sent is never
    claimed again, so only what was in flight at a fault (at most a worker's batch each) may
    have gone twice, under its one key. The figures, for the report."""
    url = plain(system.servers.database_url)
    cases = [uuid.UUID(c) for c in tally.cases]

    async def deliveries() -> list:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetch(
                "SELECT a.alert_id, d.key, d.person, d.status, d.attempts "
                "FROM alerts.alerts a LEFT JOIN notify.deliveries d "
                "ON a.alert_id = ANY(d.alert_ids) AND d.channel = 'sms' "
                "WHERE a.kind = 'case' AND a.case_id = ANY($1)", cases)
        finally:
            await conn.close()

    def all_sent() -> list | None:
        try:
            rows = asyncio.run(deliveries())
        except (OSError, asyncpg.PostgresError):
            return None
        return rows if rows and all(r["status"] == "sent" for r in rows) else None

    rows = eventually(all_sent, timeout=patience_s, interval=0.5)
    assert rows, f"not every case's alert was told by SMS in {patience_s} s: " + str(
        collections.Counter(r["status"] for r in asyncio.run(deliveries())))
    assert len(rows) == len(cases) == len({r["alert_id"] for r in rows}), \
        "one SMS delivery per case's alert"
    received = collections.Counter(r.headers.get("Idempotency-Key")
                                   for r in system.gateway.to("/sms"))
    keys = {f"{r['key']}/{r['person']}/sms": r for r in rows}
    never = [k for k in keys if not received[k]]
    assert not never, f"recorded as sent, never received: {never[:5]}"
    beyond = {k: (received[k], r["attempts"]) for k, r in keys.items()
              if received[k] > r["attempts"]}
    assert not beyond, f"received more often than claimed (sent after it was recorded): {beyond}"
    twice = sum(received[k] - 1 for k in keys)
    assert twice <= NOTIFY_BATCH * len(system.recoveries), (twice, system.recoveries)
    return {"alerts": len(rows), "sms": sum(received[k] for k in keys), "again": twice}
