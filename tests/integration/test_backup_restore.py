"""Backup and restore, done once for real (deploy/README.md says how in production): reports go
in through the running services; PostgreSQL is dumped with pg_dump and the JetStream store is
copied with NATS stopped; everything is wiped; fresh servers are restored from the backup. The
restored database holds the same rows (rollups, ledger, rejections, alerts, registry), the
streams the same messages and consumers, `rollcall reconcile` finds no difference, and the
services started again on the restored servers carry on where they stopped."""

import asyncio
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import nats
from sqlalchemy.engine import make_url

from rollcall.embedded import EmbeddedNats, EmbeddedPostgres, _pg_tools
from rollcall.migrate import upgrade
from rollcall.reference import load_demo_and_announce
from shared.contracts import reports_of
from shared.registry import demo
from tests.conftest import Servers, _fresh_database, eventually, issue_token, start_service
from tests.integration.conftest import ZONE, today

COUNTY = "430621"
SCHEMAS = ("registry", "ingest", "aggregate", "alerts")
STREAMS = ("SUBMISSIONS", "REPORTS", "CASES", "REJECTED", "ALERTS", "REGISTRY", "DELIVERIES",
           "SIGNOFF", "EDITIONS", "CONTROL", "CALENDARS")


def _dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


async def fingerprint(database_url: str) -> dict[str, tuple[int, str]]:
    """Each table of the services: its row count and a digest of every row."""
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        tables = await conn.fetch(
            "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables "
            "WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE' ORDER BY 1",
            list(SCHEMAS))
        out = {}
        for row in tables:
            out[row["t"]] = tuple(await conn.fetchrow(
                f"SELECT count(*), coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '')"
                f" FROM {row['t']} x"))
        return out
    finally:
        await conn.close()


async def stream_figures(nats_url: str) -> dict[str, tuple]:
    """Each stream's messages and sequence range, and each durable consumer's position."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        out: dict[str, tuple] = {}
        for name in STREAMS:
            state = (await js.stream_info(name)).state
            out[name] = (state.messages, state.first_seq, state.last_seq)
            for consumer in await js.consumers_info(name):
                out[f"{name}/{consumer.name}"] = (consumer.delivered.stream_seq,
                                                  consumer.ack_floor.stream_seq,
                                                  consumer.num_pending)
        return out
    finally:
        await connection.close()


async def reports_carried(nats_url: str, first: int, last: int) -> int:
    """The accepted reports the REPORTS stream carries (a message carries a village's batch),
    read message by message without a consumer, which the backup would then hold."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        return sum([len(reports_of(await js.get_msg("REPORTS", seq)))
                    for seq in range(first, last + 1)])
    finally:
        await connection.close()


def pg_tool(name: str, *args: str) -> None:
    bin_dir, _ = _pg_tools()
    done = subprocess.run([str(bin_dir / name), *args], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"{name}: {done.stderr}"


def reconcile(database_url: str, day: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rollcall", "reconcile", "--day", day,
                           "--node", COUNTY],
                          env={"ROLLCALL_DATABASE_URL": database_url, "PATH": "/usr/bin:/bin",
                               "COLUMNS": "200"}, capture_output=True, text=True, timeout=120)


def start_all(servers: Servers, log_dir: Path) -> dict:
    return {name: start_service(servers, name, log_dir)
            for name in ("ingest", "aggregate", "alerts")}


def stop_all(running: dict) -> None:
    for service in running.values():
        service.stop()


def reported(url: str, token: str, day: str) -> int:
    answer = httpx.get(f"{url}/v1/rollups/{COUNTY}", params={"day": day}, timeout=30,
                       headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text
    return answer.json()["completeness"]["reported"]


async def quiet(database_url: str) -> bool:
    conn = await asyncpg.connect(_dsn(database_url))
    try:
        return (await conn.fetchval("SELECT count(*) FROM ingest.outbox") == 0
                and await conn.fetchval("SELECT count(*) FROM alerts.outbox") == 0)
    finally:
        await conn.close()


def test_backup_wipe_restore_and_carry_on(tmp_path: Path) -> None:
    started = time.monotonic()
    units = [u["code"] for u in demo.units() if u["code"].startswith(COUNTY)][:300]
    days = [(today() - timedelta(days=n)).isoformat() for n in (1, 2)]
    before_dir, backup_dir, after_dir = tmp_path / "before", tmp_path / "backup", tmp_path / "after"
    backup_dir.mkdir()
    nats_server = EmbeddedNats(before_dir / "nats")
    postgres = EmbeddedPostgres(before_dir / "postgres", durable=False)
    servers_up: list = [nats_server, postgres]
    try:
        nats_url = nats_server.start()
        database_url = _fresh_database(postgres.start())
        upgrade(database_url)
        asyncio.run(load_demo_and_announce(database_url, nats_url))
        servers = Servers(nats_url, database_url)
        token = issue_token(servers, "operator", COUNTY, "备份演练")
        auth = {"Authorization": f"Bearer {token}"}

        # A day's work: reports in bulk, a correction, a refusal, a fever case.
        running = start_all(servers, tmp_path)
        try:
            ingest, aggregate = running["ingest"].url, running["aggregate"].url
            for day in days:
                bulk = httpx.post(f"{ingest}/v1/reports/bulk", headers=auth, timeout=60, json=[
                    {"unit": u, "day": day, "reporter": "演练", "values": {"fever": 1}}
                    for u in units]).json()
                assert bulk["accepted"] == len(units), bulk["results"][:2]
            fixed = httpx.post(f"{ingest}/v1/reports/{units[0]}/{days[0]}/corrections",
                               headers=auth, timeout=30, json={
                                   "values": {"fever": 3}, "reporter": "演练", "reason": "补报"})
            assert fixed.status_code == 201, fixed.text
            assert httpx.post(f"{ingest}/v1/reports", headers=auth, timeout=30, json={
                "unit": units[1], "day": "someday"}).status_code == 422
            case = httpx.post(f"{ingest}/v1/cases", headers=auth, timeout=30, json={
                "unit": units[2], "kind": "fever", "temperature": 38.4, "person_ref": "P-bk",
                "found_at": (datetime.now(ZONE) - timedelta(minutes=10)).isoformat()})
            assert case.status_code == 201, case.text
            for day in days:
                assert eventually(lambda d=day: reported(aggregate, token, d) == len(units),
                                  timeout=60)
            assert eventually(lambda: asyncio.run(quiet(database_url)), timeout=30)
        finally:
            stop_all(running)
        rows_before = asyncio.run(fingerprint(database_url))
        streams_before = asyncio.run(stream_figures(nats_url))
        assert rows_before["ingest.reports"][0] == 2 * len(units) + 1
        assert rows_before["ingest.rejections"][0] >= 1 and rows_before["ingest.cases"][0] == 1
        assert asyncio.run(reports_carried(nats_url, *streams_before["REPORTS"][1:])) == (
            2 * len(units) + 1)

        # Backup: a pg_dump of the database; the JetStream store copied with NATS stopped.
        pg = make_url(database_url)
        dump = backup_dir / "rollcall.dump"
        pg_tool("pg_dump", "-h", pg.host, "-p", str(pg.port), "-U", "postgres", "-Fc",
                "-f", str(dump), pg.database)
        nats_server.stop()
        shutil.copytree(before_dir / "nats", backup_dir / "nats")
        postgres.stop()
        servers_up.clear()
        shutil.rmtree(before_dir)  # the wipe: nothing of the first servers is left

        # Restore into fresh servers.
        shutil.copytree(backup_dir / "nats", after_dir / "nats")
        nats_server = EmbeddedNats(after_dir / "nats")
        postgres = EmbeddedPostgres(after_dir / "postgres", durable=False)
        servers_up += [nats_server, postgres]
        nats_url = nats_server.start()
        fresh = make_url(postgres.start())
        pg_tool("createdb", "-h", fresh.host, "-p", str(fresh.port), "-U", "postgres",
                pg.database)
        pg_tool("pg_restore", "-h", fresh.host, "-p", str(fresh.port), "-U", "postgres",
                "--no-owner", "--exit-on-error", "-d", pg.database, str(dump))
        database_url = fresh.set(database=pg.database).render_as_string(False)

        assert asyncio.run(fingerprint(database_url)) == rows_before
        assert asyncio.run(stream_figures(nats_url)) == streams_before
        for day in days:
            checked = reconcile(database_url, day)
            assert checked.returncode == 0, checked.stdout + checked.stderr

        # The services carry on from the restored servers: one more report is counted once,
        # nothing before it again; the token still works (credentials came back too).
        running = start_all(Servers(nats_url, database_url), tmp_path)
        try:
            ingest, aggregate = running["ingest"].url, running["aggregate"].url
            extra = [u["code"] for u in demo.units() if u["code"].startswith(COUNTY)][300]
            answer = httpx.post(f"{ingest}/v1/reports", headers=auth, timeout=30, json={
                "unit": extra, "day": days[0], "reporter": "演练", "values": {"fever": 1}})
            assert answer.status_code == 201, answer.text
            assert eventually(lambda: reported(aggregate, token, days[0]) == len(units) + 1,
                              timeout=60)
            time.sleep(1)  # anything counted twice would show by now
            assert reported(aggregate, token, days[0]) == len(units) + 1
            assert reported(aggregate, token, days[1]) == len(units)
        finally:
            stop_all(running)
        checked = reconcile(database_url, days[0])
        assert checked.returncode == 0, checked.stdout + checked.stderr
        print(f"\nbackup, wipe, restore and carry on: {time.monotonic() - started:.1f} s, "
              f"dump {dump.stat().st_size / 1024:.0f} KiB, "
              f"{len(rows_before)} tables, {sum(v[0] for v in rows_before.values())} rows, "
              f"{sum(v[0] for k, v in streams_before.items() if '/' not in k)} stream messages")
    finally:
        for server in servers_up:
            server.stop()

