"""Delivered, not only sent, and said on the alert itself: the alerts and notify services
in-process on real NATS and PostgreSQL, a local HTTP stand-in for the SMS gateway (which answers
each message with an id of its own) and the group robots, a real SMTP server. A fever case opens
an alert; notify tells the village's person on duty and the clinic's person in charge; the
gateway's delivery receipts turn "sent" into "delivered" (or failed); each outcome travels as a
DeliveryOutcome event (a masked name, no address) and the alert's detail in the alerts API says
"短信已送达 10:01 张某", without its state or clock changing."""

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, timedelta

import httpx
import nats
import pytest
from sqlalchemy import text

from rollcall.embedded import EmbeddedNats
from rollcall.reference import load_demo
from services.alerts.app import create_app as alerts_app
from services.notify import intake, store
from services.notify.app import create_app as notify_app
from services.notify.staff import Person
from shared.db import make_engine, make_sessionmaker
from shared.settings import Settings
from tests.conftest import Servers
from tests.integration.alerts_harness import FakeClock, case, issue_operator, local, wait_for
from tests.integration.notify_support import (
    ALLOWED,
    BASE_DAY,
    CONTACTS_CSV,
    PHONES,
    UNIT,
    VILLAGE,
    Gateway,
    SmtpServer,
    notify_database,
    opened,
    people_csv,
)

SECRET = "receipt-secret-for-tests"
STAFF_DETAILS = (*PHONES, "@example.cn", "张三", "钱医生", "/robot/", "SEC-li")


async def _database(servers: Servers) -> str:
    url = await asyncio.to_thread(notify_database, servers)
    engine = make_engine(url, pool_size=1)
    async with make_sessionmaker(engine)() as session, session.begin():
        await load_demo(session)
    await engine.dispose()
    return url


async def _stream(nats_url: str, subject: str, alert_id: uuid.UUID) -> list[tuple[str, dict]]:
    """(subject, payload) of every message on `subject` that names the alert."""
    connection = await nats.connect(nats_url)
    found = []
    try:
        sub = await connection.jetstream().subscribe(subject, ordered_consumer=True)
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                return found
            if str(alert_id) in msg.data.decode():
                found.append((msg.subject, json.loads(msg.data)))
    finally:
        await connection.close()


@pytest.fixture
def own_nats(tmp_path) -> Iterator[str]:
    """A NATS server of this test's own: the session's carries the alerts of every test, which
    the notify services other tests started would tell nobody of (their rosters are not this
    test's), and their outcomes would join this alert's history."""
    server = EmbeddedNats(tmp_path / "nats")
    try:
        yield server.start()
    finally:
        server.stop()


async def test_a_receipt_makes_a_delivery_delivered_and_the_alert_says_who_was_told(
        servers: Servers, own_nats: str, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    database_url = await _database(servers)
    county = {"Authorization": f"Bearer {await issue_operator(database_url, '430621')}"}
    day = BASE_DAY + timedelta(days=3)
    clock = FakeClock(local(day, 10))
    gateway, smtp = Gateway(), SmtpServer()
    tag = uuid.uuid4().hex[:8]
    common = {"nats_url": own_nats, "database_url": database_url}
    alerts = alerts_app(Settings(**common, alerts_durable=f"alerts-told-{tag}", alerts_tick_s=0),
                        clock=clock)
    notify = notify_app(Settings(
        **common, notify_durable=f"notify-told-{tag}", notify_poll_s=0.05,
        notify_smtp_host="127.0.0.1", notify_smtp_port=smtp.port,
        notify_sms_url=f"{gateway.url}/sms", notify_allowed_hosts=ALLOWED,
        notify_sms_receipt_secret=SECRET), clock=clock)
    try:
        async with alerts.router.lifespan_context(alerts), \
                notify.router.lifespan_context(notify), \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=alerts),
                                  base_url="http://alerts") as alerts_http, \
                httpx.AsyncClient(transport=httpx.ASGITransport(app=notify),
                                  base_url="http://notify") as notify_http:
            csv = {**county, "Content-Type": "text/csv"}
            for kind, content in (("people", people_csv(gateway)), ("contacts", CONTACTS_CSV)):
                answer = await notify_http.post(f"/v1/staff/{kind}", content=content,
                                                headers=csv)
                assert answer.status_code == 200, answer.text
            answer = await notify_http.put(f"/v1/rosters/{VILLAGE}/{day}", headers=county,
                                           json={"shifts": [{"person": "zhang",
                                                             "role": "on_duty"}]})
            assert answer.status_code == 200, answer.text

            found = case(UNIT, VILLAGE, "village_clinic", local(day, 9, 55))
            connection = await nats.connect(own_nats)
            try:
                await connection.jetstream().publish(
                    found.subject, found.model_dump_json().encode(),
                    headers={"Nats-Msg-Id": found.msg_id})
            finally:
                await connection.close()

            async def alert_id() -> uuid.UUID | None:
                async with alerts.state.alerts.sessions() as session:
                    return await session.scalar(text(
                        "SELECT alert_id FROM alerts.alerts WHERE key = :k"),
                        {"k": f"case:{found.case_id}"})

            alert = await wait_for(alert_id)
            assert alert, "the case opened an alert"
            detail = f"/v1/alerts/{alert}"

            async def told(count: int, *outcomes: str) -> list | None:
                view = (await alerts_http.get(detail, headers=county)).json()
                rows = [t for t in view["told"] if t["outcome"] in outcomes]
                return view if len(rows) >= count else None

            # Sent: 张三 by SMS, e-mail and WeCom; the clinic's 钱医生 by SMS.
            view = await wait_for(lambda: told(4, "sent"), within_s=30)
            assert view, (await alerts_http.get(detail, headers=county)).text
            assert sorted((t["channel"], t["outcome"], t["person"], t["role"], t["step"])
                          for t in view["told"]) == [
                ("email", "sent", "张某", "on_duty", "opened"),
                ("sms", "sent", "张某", "on_duty", "opened"),
                ("sms", "sent", "钱某", "unit_in_charge", "opened"),
                ("wecom", "sent", "张某", "on_duty", "opened")]
            assert "短信已发送 10:00 张某" in [t["text"] for t in view["told"]]

            # The gateway's receipts: 张三's SMS reached the phone, 钱医生's did not.
            sms = {r.body["to"]: r.message_id for r in gateway.to("/sms")}
            zhang, qian = sms["13912345678"], sms["13600001111"]
            assert zhang and qian and zhang != qian
            receipts = "/v1/receipts/sms"
            secret = {"X-Receipt-Secret": SECRET}
            delivered = {"message_id": zhang, "status": "delivered", "mobile": "13912345678",
                         "at": local(day, 10, 1).astimezone(UTC).isoformat()}
            answer = await notify_http.post(receipts, json=delivered, headers=secret)
            assert answer.json() == {"results": ["applied"]}, answer.text
            again = await notify_http.post(receipts, json=[delivered], headers=secret)
            assert again.json() == {"results": ["duplicate"]}, again.text
            failed = await notify_http.post(
                receipts, json={"message_id": qian, "status": "failed", "error": "UNDELIV"},
                headers={"Authorization": f"Bearer {SECRET}"})
            assert failed.json() == {"results": ["applied"]}, failed.text

            # Refused, with the reason named: a wrong or missing secret; an unknown id (kept,
            # after the others in its list are applied).
            wrong = await notify_http.post(receipts, json=delivered,
                                           headers={"X-Receipt-Secret": "guess"})
            assert (wrong.status_code, wrong.json()["errors"][0]["code"]) == (
                401, "bad_receipt_secret")
            assert (await notify_http.post(receipts, json=delivered)).status_code == 401
            unknown = await notify_http.post(receipts, headers=secret, json=[
                delivered, {"message_id": "gw-nobody", "status": "delivered",
                            "mobile": "13500000000"}])
            assert unknown.status_code == 404, unknown.text
            assert [(e["field"], e["code"]) for e in unknown.json()["errors"]] == [
                ("[1].message_id", "unknown_message")]
            async with notify.state.notify.sessions() as session:
                kept = (await session.execute(text(
                    "SELECT provider_id, result, delivery_id FROM notify.receipts "
                    "WHERE provider_id IN (:a, :b, 'gw-nobody') ORDER BY id"),
                    {"a": zhang, "b": qian})).all()
                assert [(p, r) for p, r, _ in kept] == [
                    (zhang, "applied"), (zhang, "duplicate"), (qian, "applied"),
                    (zhang, "duplicate"), ("gw-nobody", "unknown_message")]
                assert kept[-1].delivery_id is None
                stored = " ".join(map(str, (await session.execute(text(
                    "SELECT * FROM notify.receipts"))).all()))
                assert "13912345678" not in stored and "13500000000" not in stored

            rows = {(d["person"], d["channel"]): d for d in (await notify_http.get(
                f"/v1/alerts/{alert}/deliveries", headers=county)).json()}
            assert rows[("zhang", "sms")]["status"] == "delivered"
            assert rows[("zhang", "sms")]["delivered_at"] is not None
            assert (rows[("qian", "sms")]["status"], rows[("qian", "sms")]["last_error"]) == (
                "failed", "sms: not delivered (UNDELIV)")
            assert rows[("zhang", "email")]["status"] == "sent"  # SMTP 250: sent, no more

            view = await wait_for(lambda: told(2, "delivered", "failed"), within_s=30)
            assert view, (await alerts_http.get(detail, headers=county)).text
            texts = [t["text"] for t in view["told"]]
            assert "短信已送达 10:01 张某" in texts
            assert "短信发送失败 10:00 钱某(sms: not delivered (UNDELIV))" in texts
            # The history of its own: the alert's state, clock and changes are as they were.
            assert (view["status"], view["escalations"]) == ("open", 0)
            changes = (await alerts_http.get(f"{detail}/history", headers=county)).json()
            assert [c["change"] for c in changes] == ["opened"]
            elsewhere = {"Authorization": "Bearer " + await issue_operator(database_url,
                                                                           "430621109")}
            assert (await alerts_http.get(detail, headers=elsewhere)).status_code == 403

            # On the bus: one event per outcome, under the alert's hierarchy, naming nobody.
            events = await _stream(own_nats, "notify.delivery.>", alert)
            assert sorted((subject, e["channel"], e["person"]) for subject, e in events) == [
                (f"notify.delivery.delivered.430621.430621108.{VILLAGE}", "sms", "张某"),
                (f"notify.delivery.failed.430621.430621108.{VILLAGE}", "sms", "钱某"),
                (f"notify.delivery.sent.430621.430621108.{VILLAGE}", "email", "张某"),
                (f"notify.delivery.sent.430621.430621108.{VILLAGE}", "sms", "张某"),
                (f"notify.delivery.sent.430621.430621108.{VILLAGE}", "sms", "钱某"),
                (f"notify.delivery.sent.430621.430621108.{VILLAGE}", "wecom", "张某")]
            on_the_bus = json.dumps([e for _, e in events], ensure_ascii=False) + json.dumps(
                [e for _, e in await _stream(own_nats, "alert.>", alert)],
                ensure_ascii=False)
            assert not [detail for detail in STAFF_DETAILS if detail in on_the_bus]

            # An event taken twice (a redelivery under another message id): added once.
            subject, payload = events[0]
            connection = await nats.connect(own_nats)
            try:
                await connection.jetstream().publish(
                    subject, json.dumps(payload).encode(),
                    headers={"Nats-Msg-Id": f"again-{uuid.uuid4()}"})
            finally:
                await connection.close()
            await asyncio.sleep(1.0)
            view = (await alerts_http.get(detail, headers=county)).json()
            assert len(view["told"]) == 6
    finally:
        gateway.stop()
        smtp.stop()

    logged = [f"{r.getMessage()} {r.__dict__}" for r in caplog.records
              if not r.name.startswith("mail.log")]
    assert [line for line in logged if "delivery receipt" in line]
    assert not [line for line in logged
                if any(phone in line for phone in (*PHONES, "13500000000"))]


async def test_a_webhook_on_a_host_not_allowed_is_refused_at_import_and_at_send(
        servers: Servers):
    database_url = await _database(servers)
    county = {"Authorization": f"Bearer {await issue_operator(database_url, '430621')}"}
    gateway = Gateway()
    day = BASE_DAY + timedelta(days=5)
    clock = FakeClock(local(day, 10))
    settings = Settings(nats_url=servers.nats_url, database_url=database_url,
                        notify_durable=f"notify-hosts-{uuid.uuid4().hex[:8]}", notify_poll_s=0,
                        notify_sms_url=f"{gateway.url}/sms", notify_allowed_hosts=ALLOWED)
    # The SMS gateway on a host not allowed stops the start.
    with pytest.raises(ValueError, match=r"ROLLCALL_NOTIFY_SMS_URL refused: host 127\.0\.0\.1"):
        notify_app(settings.model_copy(update={"notify_allowed_hosts": "sms.example.cn"}))
    app = notify_app(settings, clock=clock)
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://notify") as http:
            refused = await http.post("/v1/staff/people", content=(
                "code,name,node,chat_kind,chat_webhook\n"
                f"ok,周五,{VILLAGE},wecom,{gateway.url}/robot/wecom/ok\n"
                f"evil,吴六,{VILLAGE},wecom,https://hooks.example.net/robot?key=k\n"),
                headers={**county, "Content-Type": "text/csv"})
            assert refused.status_code == 422, refused.text
            [error] = refused.json()["errors"]
            assert (error["field"], error["code"]) == ("[3].chat_webhook", "host_not_allowed")
            assert "hooks.example.net" in error["message_en"] and "key=k" not in refused.text

            # A record from before the allow-list (written directly): refused at send, for
            # good, without a request.
            ctx = app.state.notify
            async with ctx.sessions() as session, session.begin():
                await store.upsert_people(session, [Person(
                    "wu", "吴六", VILLAGE, chat_kind="dingtalk",
                    chat_webhook=f"https://hooks.example.net/robot?key=k{uuid.uuid4().hex}")],
                    clock())
            answer = await http.put(f"/v1/rosters/{VILLAGE}/{day}", headers=county,
                                    json={"shifts": [{"person": "wu", "role": "on_duty"}]})
            assert answer.status_code == 200, answer.text
            event = opened(day).model_copy(update={"unit": None})
            async with ctx.sessions() as session, session.begin():
                await intake.take_alert_events(session, [event], ctx.policy, ctx.channels,
                                               ctx.settings.zone, clock())
            assert await ctx.worker.run_once() == 1
            [row] = (await http.get(f"/v1/alerts/{event.alert_id}/deliveries",
                                    headers=county)).json()
            assert (row["channel"], row["status"], row["attempts"], row["last_error"]) == (
                "dingtalk", "failed", 1,
                "dingtalk: host hooks.example.net is not in ROLLCALL_NOTIFY_ALLOWED_HOSTS")
            assert not gateway.requests
    finally:
        gateway.stop()
