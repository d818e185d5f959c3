"""Scheduled editions told to the people on duty: notify's app started through its lifespan on
real NATS and PostgreSQL, an `edition.published.<town>` event on the EDITIONS stream reaching
the town's people on duty by each of their channels (a real SMTP server, the local SMS gateway
and robots), once even when the event comes again, and nobody off duty; and the use case with
quiet hours, as alerts have them."""

import asyncio
import dataclasses
import email
import email.policy
import uuid
from datetime import UTC, time, timedelta

import httpx
import nats
from sqlalchemy import text

from rollcall.reference import load_demo
from services.notify import intake, staffing
from services.notify.app import create_app
from services.notify.policy import load_policy
from shared.contracts import EditionPublished
from shared.db import make_engine, make_sessionmaker
from shared.settings import Settings
from shared.streams import EDITIONS
from tests.conftest import Servers
from tests.integration.alerts_harness import FakeClock, local, wait_for
from tests.integration.notify_support import (
    ALLOWED,
    BASE_DAY,
    HOSTS,
    TOWN,
    ZONE,
    Gateway,
    SmtpServer,
    notify_database,
)

CONSOLE = "https://rollcall.example.cn"
WORKBOOK = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def town_people(gateway: Gateway) -> str:
    """The town's command centre: 王 and 孙 on duty in the afternoon, 周 on duty the morning."""
    return (
        "code,name,node,phone,email,chat_kind,chat_webhook,chat_secret\n"
        f"wang,王站长,{TOWN},13811112222,wang@example.cn,wecom,"
        f"{gateway.url}/robot/wecom/wang,\n"
        f"sun,孙干事,{TOWN},13822223333,sun@example.cn,dingtalk,"
        f"{gateway.url}/robot/dingtalk/sun,SEC-sun-secret\n"
        f"zhou,周主任,{TOWN},13833334444,zhou@example.cn,wecom,"
        f"{gateway.url}/robot/wecom/zhou,\n")


SHIFTS = [{"person": "zhou", "role": "on_duty", "starts": "00:00", "ends": "12:00"},
          {"person": "wang", "role": "on_duty", "starts": "12:00"},
          {"person": "sun", "role": "on_duty", "starts": "08:00", "ends": "18:00"}]


def edition(day, hh: int = 14, mm: int = 30) -> EditionPublished:
    edition_id = uuid.uuid4()
    return EditionPublished(
        edition_id=edition_id, node=TOWN, name="公田镇", day=day, scheduled=time(hh, mm),
        produced_at=local(day, hh, mm).astimezone(UTC), title=f"公田镇 {day} 疫情防控日报",
        filename=f"summary-{TOWN}-{day}-{hh:02d}{mm:02d}.xlsx", media_type=WORKBOOK,
        size=48_213, sha256="0" * 64, download=f"/api/editions/{edition_id}/xlsx")


async def _database(servers: Servers, gateway: Gateway, day) -> str:
    url = await asyncio.to_thread(notify_database, servers)
    engine = make_engine(url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await load_demo(session)
        async with make_sessionmaker(engine)() as session, session.begin():
            _, problems = await staffing.import_staff(
                session, "people", town_people(gateway).encode(), "people", False, "430621",
                local(day, 9), day, hosts=HOSTS)
            assert not problems, [str(p) for p in problems]
            _, problems = await staffing.put_roster_day(session, TOWN, day, SHIFTS, TOWN, day)
            assert not problems, [str(p) for p in problems]
    finally:
        await engine.dispose()
    return url


async def _deliveries(sessions, key: str) -> list:
    async with sessions() as session:
        return list((await session.execute(text(
            "SELECT person, channel, status, topic, alert_ids, title, body "
            "FROM notify.deliveries WHERE key = :key ORDER BY person, channel"),
            {"key": key})).all())


async def test_an_edition_on_the_bus_reaches_the_town_s_people_on_duty_once_by_each_channel(
        servers: Servers):
    day = BASE_DAY + timedelta(days=3)
    gateway, smtp = Gateway(), SmtpServer()
    database_url = await _database(servers, gateway, day)
    durable = f"notify-ed-{uuid.uuid4().hex[:8]}"
    settings = Settings(nats_url=servers.nats_url, database_url=database_url,
                        notify_durable=durable, notify_poll_s=0.05,
                        notify_smtp_host="127.0.0.1", notify_smtp_port=smtp.port,
                        notify_sms_url=f"{gateway.url}/sms", notify_allowed_hosts=ALLOWED,
                        console_url=CONSOLE + "/")
    clock = FakeClock(local(day, 14, 30))
    app = create_app(settings, clock=clock)
    event = edition(day)
    phones = {"wang": "13811112222", "sun": "13822223333", "zhou": "13833334444"}
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://notify") as http:
            sessions = app.state.notify.sessions
            connection = await nats.connect(servers.nats_url)
            try:
                js = connection.jetstream()
                await js.publish(event.subject, event.model_dump_json().encode(),
                                 headers={"Nats-Msg-Id": event.msg_id})

                async def all_sent() -> list | None:
                    rows = await _deliveries(sessions, event.msg_id)
                    return rows if len(rows) == 6 and {r.status for r in rows} == {"sent"} \
                        else None

                told = await wait_for(all_sent, within_s=20)
                assert told, await _deliveries(sessions, event.msg_id)
                assert {(r.person, r.channel) for r in told} == {
                    ("wang", "sms"), ("wang", "email"), ("wang", "wecom"),
                    ("sun", "sms"), ("sun", "email"), ("sun", "dingtalk")}
                assert {(r.topic, tuple(r.alert_ids)) for r in told} == {("edition", ())}

                # The same event again, as a redelivery brings it (past the stream's
                # duplicate window: no message id); notify takes it and sends nothing more.
                again = await js.publish(event.subject, event.model_dump_json().encode())

                async def taken() -> bool:
                    info = await js.consumer_info(EDITIONS, f"{durable}-editions")
                    return info.ack_floor.stream_seq >= again.seq

                assert await wait_for(taken, within_s=20)
            finally:
                await connection.close()
            await asyncio.sleep(0.5)  # a worker round or several: nothing new to send
            assert len(await _deliveries(sessions, event.msg_id)) == 6

            sms = gateway.to("/sms")
            assert sorted(r.body["to"] for r in sms) == [phones["wang"], phones["sun"]]
            link = f"{CONSOLE}{event.download}"
            for request in sms:
                assert request.body["text"] == told[0].body
            assert told[0].body.startswith(f"【定时日报】公田镇 {day:%m-%d} 14:30 版已生成")
            assert f"报告日 {day.isoformat()}" in told[0].body and "47 KB" in told[0].body
            assert told[0].body.endswith(f"下载:{link}")
            assert sorted(m.rcpt_tos[0] for m in smtp.mailbox.messages) == [
                "sun@example.cn", "wang@example.cn"]
            mail = email.message_from_bytes(smtp.mailbox.messages[0].content,
                                            policy=email.policy.default)
            assert mail["Subject"] == told[0].title
            assert link in mail.get_content()
            assert len(gateway.to("/robot/wecom/wang")) == 1
            assert len(gateway.to("/robot/dingtalk/sun")) == 1
            # 周 was on duty this morning: off duty at 14:30, told of nothing.
            assert not gateway.to("/robot/wecom/zhou")
            assert phones["zhou"] not in [r.body["to"] for r in sms]
            assert "zhou@example.cn" not in [m.rcpt_tos[0] for m in smtp.mailbox.messages]

            metrics = (await http.get("/metrics")).text
            assert 'rollcall_notify_deliveries_total{channel="dingtalk",outcome="sent"}' \
                in metrics
    finally:
        gateway.stop()
        smtp.stop()


async def test_an_edition_waits_out_a_channel_s_quiet_hours_and_gives_the_path_alone(
        servers: Servers):
    """Quiet hours hold an edition's e-mail as they hold an alert's; with no console address
    configured the message says the path on the console; taken again after a roster change,
    it tells nobody new. Nobody on duty: one failed record, and no second one when the event
    comes again."""
    day = BASE_DAY + timedelta(days=5)
    gateway = Gateway()
    try:
        database_url = await _database(servers, gateway, day)
        engine = make_engine(database_url, pool_size=1)
        sessions = make_sessionmaker(engine)
        policy = dataclasses.replace(load_policy(),
                                     quiet_hours={"email": (time(12, 0), time(18, 0))})
        channels = ("sms", "email", "wecom", "dingtalk")
        now = local(day, 14, 31).astimezone(UTC)
        event = edition(day)
        try:
            async with sessions() as session, session.begin():
                added = await intake.take_editions(session, [event, event], policy, channels,
                                                   ZONE, now, None)
            assert added == 6
            async with sessions() as session:
                due = dict((await session.execute(text(
                    "SELECT person || '/' || channel, next_attempt_at FROM notify.deliveries "
                    "WHERE key = :key"), {"key": event.msg_id})).all())
            assert due["wang/email"] == due["sun/email"] == local(day, 18)
            assert due["wang/sms"] == due["sun/dingtalk"] == now
            # Taken again after 周 was put on duty for the afternoon too: nobody new is told.
            async with sessions() as session, session.begin():
                _, problems = await staffing.put_roster_day(
                    session, TOWN, day, [*SHIFTS, {"person": "zhou", "role": "on_duty",
                                                   "starts": "12:00"}], TOWN, day)
                assert not problems
                assert await intake.take_editions(session, [event], policy, channels, ZONE,
                                                  now, None) == 0
            [body] = {r.body for r in await _deliveries(sessions, event.msg_id)}
            assert body.endswith(f"控制台下载路径:{event.download}")

            # The next day has no roster yet (no leader, no one in charge either): recorded as
            # failed, once.
            unstaffed = edition(day + timedelta(days=1))
            for _ in range(2):
                async with sessions() as session, session.begin():
                    await intake.take_editions(session, [unstaffed], policy, channels, ZONE,
                                               now, None)
            rows = await _deliveries(sessions, unstaffed.msg_id)
            assert [(r.person, r.channel, r.status) for r in rows] == [("-", "none", "failed")]
        finally:
            await engine.dispose()
    finally:
        gateway.stop()
