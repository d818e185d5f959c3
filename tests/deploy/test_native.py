"""docker-compose.yml run natively (tests/deploy/native.py): the same commands, environment,
NATS configuration with its per-service users and permissions, and healthchecks, on loopback.
Proves that each service can do its job with its own NATS user and no other, that the county
starts in compose's order and works, and that SIGTERM drains and a restart loses nothing."""

import asyncio
import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import nats
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.contracts import ReportAccepted
from shared.registry import demo
from tests.conftest import Servers, eventually, issue_token
from tests.deploy.compose import COMPOSE
from tests.deploy.native import Deployment, prepare

SERVICES = ("ingest", "aggregate", "alerts", "notify", "signoff")
COUNTY = "430621"


@pytest.fixture(scope="module")
def county(servers, tmp_path_factory) -> Deployment:
    county = prepare([COMPOSE], servers.database_url, tmp_path_factory.mktemp("county"))
    try:
        county.start_nats("nats")
        migrated = county.run_once("migrate")
        assert migrated.returncode == 0, migrated.stderr
        for name in SERVICES:
            county.start(name)
        for name in SERVICES:
            county.wait_healthy(county.services[name])
        # The README's step after `up`: load the county (here the demo one) with the tools user.
        loaded = county.run_once("tools", "demo")
        assert loaded.returncode == 0, loaded.stderr
        yield county
    finally:
        county.stop()


def today() -> str:
    return datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()


def county_token(county: Deployment) -> str:
    database_url = county.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    return issue_token(Servers("", database_url), "operator", COUNTY, "县指挥部值班")


def rollup(county: Deployment, node: str, day: str, token: str) -> dict:
    return httpx.get(f"{county.services['aggregate'].url}/v1/rollups/{node}",
                     params={"day": day}, headers={"Authorization": f"Bearer {token}"},
                     timeout=10).json()


def submit_once_known(county: Deployment, unit: str, values: dict) -> httpx.Response:
    """POST a report for today; ingest learns of the units loaded after it started from
    registry.changed, so a first `unknown_unit` is retried for a while."""
    token = county_token(county)

    def submitted() -> httpx.Response | None:
        response = httpx.post(f"{county.services['ingest'].url}/v1/reports", timeout=10,
                              headers={"Authorization": f"Bearer {token}"}, json={
                                  "unit": unit, "day": today(), "reporter": "王医生",
                                  "values": values})
        unknown = response.status_code == 422 and "unknown_unit" in response.text
        return None if unknown else response

    response = eventually(submitted, timeout=30, interval=0.5)
    assert response is not None, f"ingest does not know {unit}"
    return response


def test_the_county_runs_from_the_compose_commands(county: Deployment) -> None:
    nats_health = httpx.get(county.nats_healthcheck_url("nats"))
    assert nats_health.status_code == 200, "compose's NATS healthcheck URL answers"
    token = county_token(county)
    before = rollup(county, COUNTY, today(), token)
    assert submit_once_known(county, "430621108001-CL", {"fever": 3}).status_code == 201
    assert eventually(lambda: rollup(county, COUNTY, today(), token)["values"].get("fever", 0)
                      == before["values"].get("fever", 0) + 3, timeout=30)
    alerts = county.services["alerts"].url
    assert eventually(lambda: httpx.get(f"{alerts}/v1/status").json()["reports_applied"] > 0,
                      timeout=30)
    # A calendar far ahead (it changes no figure of today) is announced on calendar.declared.
    far = (date.fromisoformat(today()) + timedelta(days=300)).isoformat()
    declared = httpx.post(f"{county.services['aggregate'].url}/v1/calendars", timeout=10,
                          headers={"Authorization": f"Bearer {token}"},
                          json={"unit_code": "430621108001-CL", "valid_from": far,
                                "valid_to": far, "reason": "检修"})
    assert declared.status_code == 201, declared.text
    for process in county.services.values():
        assert httpx.get(f"{process.url}/readyz").json() == {"nats": "ok", "database": "ok"}
    violations = [line for line in county.nats["nats"].log.read_text().splitlines()
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
    ("console", "edition.opened.430621"),  # the console publishes its editions, nothing else
    ("aggregate", "edition.published.430621"),  # only the console makes editions
    ("alerts", "registry.changed"),
    ("alerts", "calendar.declared"),  # calendars are declared through aggregate's API
    ("aggregate", "$JS.API.STREAM.DELETE.REPORTS"),
    ("ingest", "$JS.API.STREAM.PURGE.REPORTS"),
    # Notify publishes what became of its deliveries, and nothing else; nobody else does.
    ("notify", "alert.opened.430621"),
    ("alerts", "notify.delivery.delivered.430621.430621108.430621108001"),
    ("ingest", "notify.delivery.sent.430621.430621108.430621108001"),
    ("notify", "report.accepted.430621.430621108.430621108001"),
    ("notify", "$JS.API.STREAM.DELETE.ALERTS"),
    ("notify", "$JS.API.CONSUMER.MSG.NEXT.CASES.alerts-cases"),
])
def test_a_user_cannot_publish_what_is_not_its_job(county: Deployment, user: str,
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


def test_only_ingest_publishes_accepted_reports(county: Deployment) -> None:
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


def test_metrics_and_json_logs(county: Deployment) -> None:
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


def test_sigterm_mid_stream_then_restart_loses_nothing(county: Deployment) -> None:
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

    restarted = aggregate.restarted()
    county.services["aggregate"] = restarted
    county.wait_healthy(restarted)
    # What the stopped replica had fetched and not applied was handed back (NAK), so the
    # restarted one takes it at once rather than after aggregate's ack_wait of 60 s.
    restarted_at = time.monotonic()
    caught_up = eventually(lambda: asyncio.run(
        _fever_total(county.database_url, first, days[-1])) >= len(events), timeout=120,
        interval=0.5)
    took_to_catch_up = time.monotonic() - restarted_at
    assert caught_up
    assert took_to_catch_up < 40, f"caught up only after {took_to_catch_up:.0f}s"
    print(f"restarted aggregate caught up in {took_to_catch_up:.1f}s")
    time.sleep(1)  # anything redelivered late would show now
    assert asyncio.run(_fever_total(county.database_url, first, days[-1])) == len(events)


def test_every_service_stops_cleanly_on_sigterm(county: Deployment) -> None:
    for name, process in list(county.services.items()):
        code, took = process.sigterm_and_wait(60)
        assert code == 0, f"{name}: {process.log.read_text()[-3000:]}"
        assert took < 30, f"{name} took {took:.1f}s"
