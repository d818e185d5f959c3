"""docker-compose.yml run natively: the same commands, environment, NATS configuration (with its
per-service users and permissions) and healthchecks, on loopback instead of in containers.

What changes from compose to here is only what the containers would provide: host names become
loopback addresses, volumes become temporary folders, every service gets a free port instead of
the image's 8080, and PostgreSQL is the session's embedded server with the compose role and a
fresh database.
"""

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import nats
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from rollcall.embedded import EmbeddedNats, _wait_for_port, free_port
from shared.contracts import ReportAccepted
from shared.registry import demo
from tests.conftest import eventually
from tests.deploy.compose import (
    COMPOSE,
    ENV_EXAMPLE,
    NATS_CONF,
    dotenv,
    environment,
    image_env,
    interpolate,
    load,
)

SERVICES = ("ingest", "aggregate", "alerts")
USERS = ("ingest", "aggregate", "alerts", "console", "admin")
COUNTY = "430621"


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    proc: subprocess.Popen | None = None

    def start(self) -> "Process":
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=out)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sigterm_and_wait(self, timeout: float) -> tuple[int, float]:
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - started

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class County:
    compose: dict
    nats_port: int
    nats_monitor_port: int
    nats_log: Path
    passwords: dict[str, str]
    database_url: str
    log_dir: Path
    services: dict[str, Process] = field(default_factory=dict)

    def nats_url(self, user: str) -> str:
        return f"nats://{user}:{self.passwords[user]}@127.0.0.1:{self.nats_port}"

    def service_process(self, name: str) -> Process:
        """A compose service as a local process: image ENV, then compose's environment, then
        what loopback needs; argv is compose's command with `rollcall` run by this Python."""
        spec = self.compose["services"][name]
        command = spec["command"]
        assert command[0] == "rollcall"
        env = {k: v for k, v in image_env().items() if k.startswith("ROLLCALL_")}
        env.update(environment(spec))
        env = {k: self._local(v) for k, v in env.items()}
        port = free_port()
        env.update(ROLLCALL_HTTP_HOST="127.0.0.1", ROLLCALL_HTTP_PORT=str(port))
        return Process(name, [sys.executable, "-m", "rollcall", *command[1:]],
                       {**_base_env(), **env}, self.log_dir / f"{name}-{port}.log", port)

    def _local(self, value: str) -> str:
        value = value.replace("@nats:4222", f"@127.0.0.1:{self.nats_port}")
        if "@postgres:5432/" in value:
            return self.database_url
        return value

    def healthcheck(self, process: Process) -> bool:
        """Compose's healthcheck command (the image's probe), run against this process."""
        test = self.compose["x-rollcall"]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"]
        result = subprocess.run([sys.executable, *test[2:]], env=process.env,
                                capture_output=True, timeout=30)
        return result.returncode == 0

    def wait_healthy(self, process: Process, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.proc is not None
            if process.proc.poll() is not None:
                raise AssertionError(f"{process.name} exited: {process.log.read_text()[-3000:]}")
            if self.healthcheck(process):
                return
            time.sleep(0.5)
        raise AssertionError(f"{process.name} not healthy: {process.log.read_text()[-3000:]}")

    def run_once(self, name: str, *argv: str) -> subprocess.CompletedProcess:
        process = self.service_process(name)
        if argv:
            process.argv = [sys.executable, "-m", "rollcall", *argv]
        return subprocess.run(process.argv, env=process.env, capture_output=True, text=True,
                              timeout=300)


def _base_env() -> dict[str, str]:
    """The environment a container starts with: nothing of the host's Rollcall settings."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("ROLLCALL_") and k not in ("NATS_URL", "DATABASE_URL")}


def _start_nats(compose: dict, root: Path) -> tuple[subprocess.Popen, int, int, Path]:
    """nats-server with compose's command and environment; the config folder is mounted at
    /etc/nats and the data volume at /data in the container, copied to a folder here."""
    spec = compose["services"]["nats"]
    conf_dir, data_dir = root / "etc-nats", root / "nats-data"
    shutil.copytree(NATS_CONF, conf_dir)
    conf = conf_dir / "nats.conf"
    conf.write_text(conf.read_text().replace("store_dir: /data", f"store_dir: {data_dir}"))
    argv = [a.replace("/etc/nats", str(conf_dir)) for a in spec["command"]]
    port, monitor = free_port(), free_port()
    log = root / "nats.log"
    proc = subprocess.Popen(
        [EmbeddedNats.binary(), *argv, "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor),
         "-l", str(log)], env={**_base_env(), **environment(spec)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_port(port, proc, "nats-server", log)
    return proc, port, monitor, log


def _fresh_database(server_url: str, password: str) -> str:
    """The compose role (`rollcall`, owner of its database) on the session's PostgreSQL."""
    admin = make_url(server_url).set(drivername="postgresql")
    name = f"rollcall_deploy_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'rollcall'")
            if not exists:
                await conn.execute(f"CREATE ROLE rollcall LOGIN PASSWORD '{password}'")
            await conn.execute(f'CREATE DATABASE "{name}" OWNER rollcall')
        finally:
            await conn.close()

    asyncio.run(create())
    return admin.set(username="rollcall", password=password, database=name).render_as_string(
        hide_password=False)


@pytest.fixture(scope="module")
def county(servers, tmp_path_factory) -> County:
    root = tmp_path_factory.mktemp("county")
    env = dotenv(ENV_EXAMPLE)
    env.update({k: secrets.token_hex(24) for k, v in env.items() if k.endswith("_PASSWORD")})
    compose = interpolate(load(COMPOSE), env)
    nats_proc, port, monitor, nats_log = _start_nats(compose, root)
    passwords = {user: env[f"NATS_{user.upper()}_PASSWORD"] for user in USERS}
    county = County(compose, port, monitor, nats_log, passwords,
                    _fresh_database(servers.database_url, env["POSTGRES_PASSWORD"]), root)
    try:
        migrated = county.run_once("migrate")
        assert migrated.returncode == 0, migrated.stderr
        for name in SERVICES:
            county.services[name] = county.service_process(name).start()
        for process in county.services.values():
            county.wait_healthy(process)
        # The README's step after `up`: load the county (here the demo one) with the tools user.
        loaded = county.run_once("tools", "demo")
        assert loaded.returncode == 0, loaded.stderr
        yield county
    finally:
        for process in county.services.values():
            process.stop()
        nats_proc.send_signal(signal.SIGINT)
        nats_proc.wait(30)


def today() -> str:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()


def rollup(county: County, node: str, day: str) -> dict:
    return httpx.get(f"{county.services['aggregate'].url}/v1/rollups/{node}",
                     params={"day": day}, timeout=10).json()


def submit_once_known(county: County, unit: str, values: dict) -> httpx.Response:
    """POST a report for today; ingest learns of the units loaded after it started from
    registry.changed, so a first `unknown_unit` is retried for a while."""
    def submitted() -> httpx.Response | None:
        response = httpx.post(f"{county.services['ingest'].url}/v1/reports", timeout=10, json={
            "unit": unit, "day": today(), "reporter": "王医生", "values": values})
        unknown = response.status_code == 422 and "unknown_unit" in response.text
        return None if unknown else response

    response = eventually(submitted, timeout=30, interval=0.5)
    assert response is not None, f"ingest does not know {unit}"
    return response


def test_the_county_runs_from_the_compose_commands(county: County) -> None:
    nats_health = httpx.get(f"http://127.0.0.1:{county.nats_monitor_port}"
                            "/healthz?js-enabled-only=true")
    assert nats_health.status_code == 200, "compose's NATS healthcheck URL answers"
    before = rollup(county, COUNTY, today())
    assert submit_once_known(county, "430621108001-CL", {"fever": 3}).status_code == 201
    assert eventually(lambda: rollup(county, COUNTY, today())["values"].get("fever", 0)
                      == before["values"].get("fever", 0) + 3, timeout=30)
    alerts = county.services["alerts"].url
    assert eventually(lambda: httpx.get(f"{alerts}/v1/status").json()["events_applied"] > 0,
                      timeout=30)
    for process in county.services.values():
        assert httpx.get(f"{process.url}/readyz").json() == {"nats": "ok", "database": "ok"}
    violations = [line for line in county.nats_log.read_text().splitlines()
                  if "Violation" in line]
    assert not violations, "every service can do its job with its own user:\n" + "\n".join(
        violations)


@pytest.mark.parametrize("user, subject", [
    ("aggregate", "report.accepted.430621.430621108.430621108001"),
    ("alerts", "report.accepted.430621.430621108.430621108001"),
    ("console", "report.accepted.430621.430621108.430621108001"),
    ("aggregate", "case.reported.430621.430621108.430621108001"),
    ("ingest", "alert.opened.430621"),
    ("console", "rollup.updated.430621"),
    ("alerts", "registry.changed"),
    ("aggregate", "$JS.API.STREAM.DELETE.REPORTS"),
    ("ingest", "$JS.API.STREAM.PURGE.REPORTS"),
])
def test_a_user_cannot_publish_what_is_not_its_job(county: County, user: str,
                                                   subject: str) -> None:
    async def attempt() -> list[str]:
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        connection = await nats.connect(county.nats_url(user), error_cb=on_error,
                                        allow_reconnect=False)
        try:
            await connection.publish(subject, b"{}")
            await connection.flush()
            for _ in range(50):
                if errors:
                    break
                await asyncio.sleep(0.1)
        finally:
            await connection.close()
        return errors

    errors = asyncio.run(attempt())
    assert any("permissions violation" in e.lower() for e in errors), errors


def test_only_ingest_publishes_accepted_reports(county: County) -> None:
    """The positive side of the rule: ingest's user may publish accepted reports."""
    async def publish() -> int:
        connection = await nats.connect(county.nats_url("ingest"))
        try:
            js = connection.jetstream()
            event = _event(demo.units()[0], date(2000, 1, 1))
            ack = await js.publish(event.subject, event.model_dump_json().encode(),
                                   headers={"Nats-Msg-Id": event.msg_id})
            return ack.seq
        finally:
            await connection.close()

    assert asyncio.run(publish()) > 0


def test_metrics_and_json_logs(county: County) -> None:
    assert submit_once_known(county, "430621104001-VC", {"ili": 1}).status_code == 201
    refused = submit_once_known(county, "430621104001-CL", {"fever": -1})
    assert refused.status_code == 422
    def families(name: str) -> dict:
        text = httpx.get(f"{county.services[name].url}/metrics", timeout=10).text
        return {f.name: f for f in text_string_to_metric_families(text)}

    ingest = families("ingest")
    accepted = {s.labels["kind"]: s.value for s in ingest["rollcall_ingest_accepted"].samples
                if s.name.endswith("_total")}
    assert accepted.get("report", 0) >= 1
    received = [s for s in ingest["rollcall_ingest_received"].samples
                if s.name.endswith("_total")]
    assert sum(s.value for s in received) >= accepted["report"] + 1
    rejected = {s.labels["code"]: s.value for s in ingest["rollcall_ingest_rejected"].samples
                if s.name.endswith("_total")}
    assert rejected.get("negative", 0) >= 1

    def batches_applied() -> float:
        return next(s.value for s in families("aggregate")["rollcall_rollup_apply_seconds"].samples
                    if s.name.endswith("_count"))

    assert eventually(lambda: batches_applied() >= 1, timeout=30)
    aggregate = families("aggregate")
    lag = {(s.labels["stream"], s.labels["consumer"]): s.value
           for s in aggregate["rollcall_consumer_pending_messages"].samples}
    assert ("REPORTS", "aggregate") in lag
    alerts = families("alerts")
    assert ("REPORTS", "alerts") in {(s.labels["stream"], s.labels["consumer"])
                                     for s in alerts["rollcall_consumer_pending_messages"].samples}
    for name in ("rollcall_alerts_open", "rollcall_alerts_overdue"):
        assert name in alerts, "declared, for the alerts service to fill"

    for name, process in county.services.items():
        lines = [line for line in process.log.read_text().splitlines() if line.strip()]
        assert lines, f"{name} logged its start at INFO"
        for line in lines:
            entry = json.loads(line)
            assert entry["service"] == name and entry["level"] and entry["message"], line


def _event(unit: dict, day: date) -> ReportAccepted:
    return ReportAccepted(
        report_id=uuid.uuid5(uuid.NAMESPACE_URL, f"deploy/{unit['code']}/{day}"),
        unit=unit["code"], node=unit["node"], unit_type=unit["unit_type"],
        sector=unit["sector"], day=day, revision=1, values={"fever": 1}, zero=False, late=False,
        submitted_at=datetime(2020, 1, 1, tzinfo=UTC), reporter="deploy-test")


async def _fever_total(database_url: str, first: date, last: date) -> float:
    conn = await asyncpg.connect(database_url)
    try:
        return float(await conn.fetchval(
            "SELECT coalesce(sum(value), 0) FROM aggregate.rollups WHERE node_code = $1 "
            "AND metric = 'fever' AND day BETWEEN $2 AND $3", COUNTY, first, last))
    finally:
        await conn.close()


def test_sigterm_mid_stream_then_restart_loses_nothing(county: County) -> None:
    """Aggregate is stopped with SIGTERM while accepted reports stream in: it drains what it
    has in flight and exits 0; restarted, it takes up the rest, and the county's total is exact:
    nothing lost, nothing counted twice."""
    units = [u for u in demo.units() if u["node"].startswith(COUNTY)]
    first = date(2001, 6, 1)
    days = [first + timedelta(days=i) for i in range(max(1, 6000 // len(units)))]
    events = [_event(unit, day) for day in days for unit in units]
    aggregate = county.services["aggregate"]

    async def publish(stop_after: int) -> tuple[int, float]:
        connection = await nats.connect(county.nats_url("ingest"))
        js = connection.jetstream()
        exit_code, took = -1, 0.0
        try:
            for i in range(0, len(events), 200):
                await asyncio.gather(*(
                    js.publish(e.subject, e.model_dump_json().encode(),
                               headers={"Nats-Msg-Id": e.msg_id}) for e in events[i:i + 200]))
                if i <= stop_after < i + 200:
                    exit_code, took = await asyncio.to_thread(aggregate.sigterm_and_wait, 60)
        finally:
            await connection.close()
        return exit_code, took

    exit_code, took = asyncio.run(publish(len(events) // 3))
    assert exit_code == 0, aggregate.log.read_text()[-3000:]
    assert took < 30, f"aggregate took {took:.1f}s to stop"
    stopped_at = asyncio.run(_fever_total(county.database_url, first, days[-1]))
    assert stopped_at < len(events), "the stop came mid-stream"
    print(f"aggregate stopped in {took:.2f}s, {stopped_at:.0f} of {len(events)} applied")

    restarted = Process(aggregate.name, aggregate.argv, aggregate.env,
                        aggregate.log.with_suffix(".restart.log"), aggregate.port).start()
    county.services["aggregate"] = restarted
    county.wait_healthy(restarted)
    total = eventually(lambda: asyncio.run(_fever_total(county.database_url, first, days[-1]))
                       >= len(events), timeout=120, interval=0.5)
    assert total
    time.sleep(1)  # anything redelivered late would show now
    assert asyncio.run(_fever_total(county.database_url, first, days[-1])) == len(events)


def test_every_service_stops_cleanly_on_sigterm(county: County) -> None:
    for name, process in list(county.services.items()):
        code, took = process.sigterm_and_wait(60)
        assert code == 0, f"{name}: {process.log.read_text()[-3000:]}"
        assert took < 30, f"{name} took {took:.1f}s"
