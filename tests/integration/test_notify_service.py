"""The notify service wired together: its app started through its lifespan on real NATS and
PostgreSQL, an alert event published on the ALERTS stream reaching the person on duty through
the durable consumer and the worker, the operator API (staff import, rosters, who was told),
/metrics; and `rollcall serve notify` as production starts it."""

import asyncio
import json
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats
from sqlalchemy import text

from rollcall.reference import load_demo
from services.notify import staffing
from services.notify.app import create_app
from services.notify.policy import DEFAULT_PATH
from shared.contracts import ReportAccepted
from shared.db import make_engine, make_sessionmaker
from shared.settings import Settings
from tests.conftest import Servers, eventually, start_service
from tests.integration.alerts_harness import FakeClock, issue_operator, local, wait_for
from tests.integration.notify_support import (
    ALLOWED,
    BASE_DAY,
    CONTACTS_CSV,
    HOSTS,
    PHONES,
    VILLAGE,
    Gateway,
    SmtpServer,
    notify_database,
    opened,
    people_csv,
)


async def _database(servers: Servers) -> str:
    url = await asyncio.to_thread(notify_database, servers)
    engine = make_engine(url, pool_size=1)
    async with make_sessionmaker(engine)() as session, session.begin():
        await load_demo(session)
    await engine.dispose()
    return url


async def test_an_alert_on_the_bus_reaches_the_person_on_duty_and_shows_on_the_alert(
        servers: Servers):
    database_url = await _database(servers)
    county = {"Authorization": f"Bearer {await issue_operator(database_url, '430621')}"}
    elsewhere = {"Authorization": f"Bearer {await issue_operator(database_url, '430621109')}"}
    day = BASE_DAY
    gateway, smtp = Gateway(), SmtpServer()
    settings = Settings(nats_url=servers.nats_url, database_url=database_url,
                        notify_durable=f"notify-it-{uuid.uuid4().hex[:8]}", notify_poll_s=0.05,
                        notify_smtp_host="127.0.0.1", notify_smtp_port=smtp.port,
                        notify_sms_url=f"{gateway.url}/sms", notify_allowed_hosts=ALLOWED)
    clock = FakeClock(local(day, 10))
    app = create_app(settings, clock=clock)
    gateway.failing["/robot/wecom/zhang"] = 1  # the robot fails once
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://notify") as http:
            csv = {"Content-Type": "text/csv"}
            answer = await http.post("/v1/staff/people", content=people_csv(gateway),
                                     headers={**county, **csv})
            assert answer.json() == {"kind": "people", "written": 4}, answer.text
            answer = await http.post("/v1/staff/contacts", content=CONTACTS_CSV,
                                     headers={**county, **csv})
            assert answer.status_code == 200, answer.text
            bad = await http.post("/v1/staff/people", headers={**county, **csv},
                                  content=f"code,name,node,phone\nsun,孙六,{VILLAGE},1\n")
            assert bad.status_code == 422
            assert [(e["field"], e["code"]) for e in bad.json()["errors"]] == [
                ("[2].phone", "invalid_phone")]
            outside = await http.put(f"/v1/rosters/{VILLAGE}/{day}", headers=elsewhere,
                                     json={"shifts": [{"person": "zhang", "role": "on_duty"}]})
            assert outside.status_code == 403
            answer = await http.put(f"/v1/rosters/{VILLAGE}/{day}", headers=county,
                                    json={"shifts": [{"person": "zhang", "role": "on_duty"},
                                                     {"person": "zhao", "role": "leader"}]})
            assert answer.status_code == 200, answer.text
            roster = (await http.get(f"/v1/rosters/{VILLAGE}/{day}", headers=county)).json()
            assert [(s["person"], s["role"]) for s in roster["shifts"]] == [
                ("zhao", "leader"), ("zhang", "on_duty")]
            staff = await http.get("/v1/people", headers=county)
            assert {p["code"]: p["chat"] for p in staff.json()}["li"] == "dingtalk"
            assert "/robot/" not in staff.text and "SEC-li" not in staff.text

            event = opened(day)
            report = ReportAccepted(
                report_id=uuid.uuid4(), unit=f"{VILLAGE}-VC", node=VILLAGE,
                unit_type="village_committee", sector="government", day=day, revision=1,
                values={}, zero=True, late=False, submitted_at=local(day, 9).astimezone(UTC),
                reporter="张三")
            connection = await nats.connect(servers.nats_url)
            try:
                for _ in range(2):  # published twice: the stream drops the second
                    await connection.jetstream().publish(
                        event.subject, event.model_dump_json().encode(),
                        headers={"Nats-Msg-Id": event.msg_id})
                await connection.jetstream().publish(
                    report.subject, report.model_dump_json().encode(),
                    headers={"Nats-Msg-Id": report.msg_id})
            finally:
                await connection.close()

            path = f"/v1/alerts/{event.alert_id}/deliveries"

            async def all_sent() -> list | None:
                rows = (await http.get(path, headers=county)).json()
                return rows if len(rows) == 4 and {r["status"] for r in rows} == {"sent"} \
                    else None

            async def robot_failed() -> dict | None:
                answer = await http.get(path, headers=county)  # a 404 until it is taken in
                return next((r for r in answer.json() if r["channel"] == "wecom"
                             and r["last_error"]), None) if answer.is_success else None

            failed = await wait_for(robot_failed, within_s=20)
            assert failed, (await http.get(path, headers=county)).text
            assert (failed["status"], failed["attempts"], failed["last_error"]) == (
                "pending", 1, "wecom: HTTP 500")
            assert failed["next_attempt_at"] is not None
            clock.advance(seconds=30)  # the back-off passes: the robot is tried again
            told = await wait_for(all_sent, within_s=20)
            assert told, (await http.get(path, headers=county)).text
            assert {(r["person_name"], r["channel"]) for r in told} == {
                ("张三", "sms"), ("张三", "email"), ("张三", "wecom"), ("钱医生", "sms")}
            assert {r["channel"]: r["attempts"] for r in told}["wecom"] == 2
            assert len(gateway.to("/sms")) == 2 and len(smtp.mailbox.messages) == 1
            assert (await http.get(path)).status_code == 401
            assert (await http.get(path, headers=elsewhere)).status_code == 403
            unknown = await http.get(f"/v1/alerts/{uuid.uuid4()}/deliveries", headers=county)
            assert unknown.status_code == 404
            fresh = uuid.uuid4()  # not heard of yet: none, in the batch read
            batch = await http.get("/v1/deliveries", headers=county,
                                   params={"alert": [str(event.alert_id), str(fresh)]})
            assert batch.status_code == 200, batch.text
            assert batch.json() == {str(event.alert_id): told, str(fresh): []}
            outside = await http.get("/v1/deliveries", headers=elsewhere,
                                     params={"alert": str(event.alert_id)})
            assert outside.status_code == 403

            async def reported() -> bool:  # the committee will not be reminded
                async with app.state.notify.sessions() as session:
                    return bool(await session.scalar(text(
                        "SELECT count(*) FROM notify.reported WHERE unit = :u AND day = :d"),
                        {"u": report.unit, "d": day}))

            assert await wait_for(reported, within_s=20)
            # 11:30: the clinic (cutoff 12:00) has not reported; its person in charge hears.
            clock.set(local(day, 11, 30))

            async def reminded() -> list:
                return [r for r in gateway.to("/sms") if "报送提醒" in r.body["text"]]

            [reminder] = await wait_for(reminded, within_s=20)
            assert reminder.body["to"] == "13600001111"  # the default body template
            assert reminder.body["text"].startswith("【报送提醒】公田镇长源社区卫生服务站")
            metrics = (await http.get("/metrics")).text
            assert 'rollcall_notify_deliveries_total{channel="sms",outcome="sent"}' in metrics
            assert "rollcall_notify_pending_deliveries" in metrics
    finally:
        gateway.stop()
        smtp.stop()


def test_rollcall_serve_notify_starts_with_the_other_services(servers: Servers, tmp_path):
    service = start_service(servers, "notify", tmp_path)
    try:
        assert httpx.get(f"{service.url}/readyz", timeout=5).json() == {
            "nats": "ok", "database": "ok"}
        assert httpx.get(f"{service.url}/v1/people", timeout=5).status_code == 401
    finally:
        service.stop()


async def _seed(database_url: str, gateway: Gateway, day) -> None:
    """The staff of the demo village, and 张三 on duty all day."""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            now = datetime.now(UTC)
            for kind, content in (("people", people_csv(gateway)), ("contacts", CONTACTS_CSV)):
                _, problems = await staffing.import_staff(session, kind, content.encode(), kind,
                                                          False, "430621", now, day,
                                                          hosts=HOSTS)
                assert not problems
            await staffing.put_roster_day(session, VILLAGE, day,
                                          [{"person": "zhang", "role": "on_duty"}], VILLAGE, day)
    finally:
        await engine.dispose()


async def _statuses(database_url: str, alert_id: uuid.UUID) -> dict[tuple[str, str], str]:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await session.execute(text(
                "SELECT person, channel, status FROM notify.deliveries WHERE :a = ANY(alert_ids)"),
                {"a": alert_id})
            return {(person, channel): status for person, channel, status in rows}
    finally:
        await engine.dispose()


async def _publish(nats_url: str, event) -> None:
    connection = await nats.connect(nats_url)
    try:
        await connection.jetstream().publish(event.subject, event.model_dump_json().encode(),
                                             headers={"Nats-Msg-Id": event.msg_id})
    finally:
        await connection.close()


def test_notify_killed_mid_delivery_and_restarted_delivers_what_was_left_once(
        servers: Servers, tmp_path: Path):
    database_url = asyncio.run(_database(servers))
    zone = Settings().zone
    day = datetime.now(zone).date()
    gateway, release = Gateway(), threading.Event()
    asyncio.run(_seed(database_url, gateway, day))
    config = tmp_path / "notify.toml"  # short leases and back-offs, for a test's patience
    config.write_text(DEFAULT_PATH.read_text(encoding="utf-8")
                      .replace("lease_s = 120", "lease_s = 2")
                      .replace("first_delay_s = 30", "first_delay_s = 1"), encoding="utf-8")
    env = {"ROLLCALL_DATABASE_URL": database_url, "ROLLCALL_NOTIFY_CONFIG": str(config),
           "ROLLCALL_NOTIFY_DURABLE": f"notify-kill-{uuid.uuid4().hex[:8]}",
           "ROLLCALL_NOTIFY_SMS_URL": f"{gateway.url}/sms", "ROLLCALL_NOTIFY_POLL_S": "0.1",
           "ROLLCALL_NOTIFY_ALLOWED_HOSTS": ALLOWED,
           "ROLLCALL_LOG_LEVEL": "INFO"}
    service = start_service(servers, "notify", tmp_path, **env)
    try:
        event = opened(day).model_copy(update={"at": datetime.now(UTC)})
        gateway.hold("/sms", str(event.alert_id), release)  # the SMS gateway takes its time
        asyncio.run(_publish(servers.nats_url, event))

        def ours(path: str) -> list:  # the stream holds other tests' alerts too
            return [r for r in gateway.to(path)
                    if str(event.alert_id) in r.headers.get("Idempotency-Key", "")
                    or str(event.alert_id)[:8] in json.dumps(r.body, ensure_ascii=False)]

        # The robot answered and was recorded; both SMS are in flight when notify is killed.
        assert eventually(lambda: len(ours("/sms")) == 2 and asyncio.run(
            _statuses(database_url, event.alert_id)).get(("zhang", "wecom")) == "sent")
        service.proc.kill()
        service.proc.wait(10)
        service = start_service(servers, "notify", tmp_path, **env)
        assert eventually(lambda: len(ours("/sms")) == 4)  # taken again once the lease ended
        release.set()
        assert eventually(lambda: set(asyncio.run(
            _statuses(database_url, event.alert_id)).values()) == {"sent"})

        keys = Counter(r.headers["Idempotency-Key"] for r in ours("/sms"))
        assert sorted(keys.values()) == [2, 2]  # each retried under its own key: one message
        assert len(ours("/robot/wecom/zhang")) == 1
        logs = "".join(p.read_text(errors="replace") for p in tmp_path.glob("notify-*.log"))
        assert "delivery sent" in logs
        assert not [phone for phone in PHONES if phone in logs]
    finally:
        service.stop()
        gateway.stop()
