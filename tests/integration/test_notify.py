"""Notify's use cases on real PostgreSQL, a real SMTP server and local HTTP servers standing in
for the SMS gateway and the group robots, with a clock the test moves: the consumer's use case
(`intake.take_alert_events`) and the delivery worker are called directly."""

import asyncio
import email
import email.policy
import itertools
import json
import logging
import uuid
from datetime import UTC, date, timedelta

import httpx
import pytest
from sqlalchemy import text

from rollcall.reference import load_demo
from services.notify import reminders, staffing, store
from services.notify.channels import dingtalk_sign
from services.notify.policy import load_policy
from shared.contracts import AlertAcknowledged, ReportAccepted
from shared.db import make_engine, make_sessionmaker
from shared.registry import calendar
from shared.registry.reference import Reference
from tests.conftest import Servers
from tests.integration.alerts_harness import FakeClock, local
from tests.integration.notify_support import (
    BASE_DAY,
    CONTACTS_CSV,
    HOSTS,
    PHONES,
    TOWN,
    VILLAGE,
    ZONE,
    Gateway,
    Notify,
    SmtpServer,
    missing,
    notify_database,
    opened,
    people_csv,
)

_days = itertools.count()


@pytest.fixture(scope="module")
async def notify(servers: Servers):
    url = await asyncio.to_thread(notify_database, servers)
    engine = make_engine(url, pool_size=4)
    sessions = make_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await load_demo(session)
    gateway, smtp = Gateway(), SmtpServer()
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            harness = Notify(sessions, FakeClock(local(BASE_DAY, 10)), load_policy(), gateway,
                             smtp, client)
            await harness.import_staff("people", people_csv(gateway))
            await harness.import_staff("contacts", CONTACTS_CSV)
            harness.database_url = url  # type: ignore[attr-defined]
            yield harness
    finally:
        gateway.stop()
        smtp.stop()
        await engine.dispose()


def a_day(notify: Notify) -> date:
    day = BASE_DAY + timedelta(days=next(_days))
    notify.reset(day)
    return day


async def test_a_case_alert_reaches_the_person_on_duty_by_every_channel_once(
        notify: Notify, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG)
    day = a_day(notify)
    await notify.roster(day, ("zhang", "on_duty"), ("zhao", "leader"))
    event = opened(day)

    # 张三 by SMS, e-mail and WeCom; the clinic's 钱医生 by SMS.
    assert await notify.take(event) == 4
    assert await notify.take(event, event) == 0  # redelivered, and twice in one batch
    assert await notify.drain() == 4
    assert await notify.take(event) == 0 and await notify.drain() == 0

    sms = notify.gateway.to("/sms")
    assert sorted(r.body["mobile"] for r in sms) == ["13600001111", "13912345678"]
    assert all(r.headers["Authorization"] == "Bearer sms-token" for r in sms)
    assert len({r.headers["Idempotency-Key"] for r in sms}) == 2
    assert "发现发热病例" in sms[0].body["content"]
    [robot] = notify.gateway.to("/robot/wecom/zhang")
    assert robot.body["msgtype"] == "text" and "发现发热病例" in robot.body["text"]["content"]
    [mail] = notify.smtp.mailbox.to("zhang@example.cn")
    assert mail.mail_from == "rollcall@test.local"
    message = email.message_from_bytes(mail.content, policy=email.policy.default)
    assert message["Subject"].startswith("【发热病例预警】")
    assert "请于" in message.get_body().get_content()
    assert [(d.person, d.channel, d.status, d.attempts) for d in
            await notify.deliveries(event.alert_id)] == [
        ("qian", "sms", "sent", 1), ("zhang", "email", "sent", 1), ("zhang", "sms", "sent", 1),
        ("zhang", "wecom", "sent", 1)]

    # Staff details never reach a log line: not the phone numbers, not the addresses (the SMTP
    # server's own log, the recipient's side, is not ours).
    logged = [f"{r.getMessage()} {r.__dict__}" for r in caplog.records]
    assert logged, "the deliveries were logged"
    assert not [line for line in logged if any(phone in line for phone in PHONES)]
    ours = [f"{r.getMessage()} {r.__dict__}" for r in caplog.records
            if not r.name.startswith("mail.log")]
    assert not [line for line in ours if "@example.cn" in line]

    # Nor an event: each outcome goes to the alerts service with a masked name only.
    async with notify.sessions() as session:
        events = [json.loads(payload) for (payload,) in await session.execute(text(
            "SELECT payload FROM notify.outbox WHERE convert_from(payload, 'UTF8') LIKE :a"),
            {"a": f"%{event.alert_id}%"})]
    assert sorted((e["outcome"], e["channel"], e["person"]) for e in events) == [
        ("sent", "email", "张某"), ("sent", "sms", "张某"), ("sent", "sms", "钱某"),
        ("sent", "wecom", "张某")]
    published = json.dumps(events, ensure_ascii=False)
    assert not [detail for detail in (*PHONES, "@example.cn", "张三", "钱医生", "/robot/")
                if detail in published]


async def test_deliveries_go_out_once_across_a_worker_that_dies_and_two_replicas(
        notify: Notify):
    day = a_day(notify)
    await notify.roster(day, ("zhang", "on_duty"))
    event = opened(day)
    await notify.take(event)

    # One worker sends one delivery and stops; another claims one and dies before sending.
    assert await notify.worker(batch=1).run_once() == 1
    async with notify.sessions() as session, session.begin():
        now = notify.clock()
        [held] = await store.claim_due(session, now, now + notify.policy.lease, 1)
    # Two replicas share the rest; the dead worker's claim waits for its lease to end.
    first, second = notify.worker(batch=1), notify.worker(batch=1)
    assert sum(await asyncio.gather(notify.drain(first), notify.drain(second))) == 2
    status = {(d.person, d.channel): d.status for d in await notify.deliveries(event.alert_id)}
    assert list(status.values()).count("sent") == 3
    assert status[(held.person, held.channel)] == "pending"
    notify.clock.advance(seconds=notify.policy.lease.total_seconds() + 1)
    assert await notify.drain() == 1

    sent = [(r.path, r.body.get("mobile")) for r in notify.gateway.requests]
    sent += [("mail", tuple(m.rcpt_tos)) for m in notify.smtp.mailbox.messages]
    assert sorted(sent, key=str) == sorted([
        ("/sms", "13912345678"), ("/sms", "13600001111"), ("/robot/wecom/zhang", None),
        ("mail", ("zhang@example.cn",))], key=str)


async def test_a_failing_channel_is_retried_with_back_off_then_recorded_as_failed(
        notify: Notify):
    day = a_day(notify)
    await notify.roster(day, ("zhang", "on_duty"))
    notify.gateway.failing["/robot/wecom/zhang"] = -1  # the robot is down for good
    notify.gateway.failing["/sms"] = 1  # the gateway fails once, then takes messages
    event = opened(day)
    await notify.take(event)

    assert await notify.drain() == 4
    assert await notify.drain() == 0  # nothing is retried before its back-off has passed
    for _ in range(notify.policy.attempts):
        notify.clock.advance(seconds=notify.policy.max_delay.total_seconds())
        await notify.drain()

    rows = {(d.person, d.channel): d for d in await notify.deliveries(event.alert_id)}
    wecom = rows[("zhang", "wecom")]
    assert (wecom.status, wecom.attempts, wecom.last_error) == (
        "failed", notify.policy.attempts, "wecom: HTTP 500")
    assert len(notify.gateway.to("/robot/wecom/zhang")) == notify.policy.attempts
    assert sorted((d.status, d.attempts) for key, d in rows.items() if key[1] == "sms") == [
        ("sent", 1), ("sent", 2)]
    assert rows[("zhang", "email")].status == "sent"


async def test_a_roster_change_takes_effect_for_the_next_alert(notify: Notify):
    day = a_day(notify)
    await notify.roster(day, ("zhang", "on_duty"))
    before = opened(day, hh=9)
    await notify.take(before)
    await notify.roster(day, ("li", "on_duty"))  # 李四 takes over the day
    after = opened(day, hh=10)
    await notify.take(after)
    await notify.drain()

    told = lambda rows: {d.person for d in rows if d.role == "on_duty"}  # noqa: E731
    assert told(await notify.deliveries(before.alert_id)) == {"zhang"}
    assert told(await notify.deliveries(after.alert_id)) == {"li"}
    [robot] = notify.gateway.to("/robot/dingtalk/li")
    assert robot.query["sign"] == dingtalk_sign("SEC-li-secret", int(robot.query["timestamp"]))
    assert robot.body == {"msgtype": "text", "text": {"content": robot.body["text"]["content"]}}


async def test_with_nobody_on_duty_the_village_in_charge_is_told_and_nobody_is_a_failure(
        notify: Notify):
    day = a_day(notify)  # no roster that day
    event = opened(day)
    await notify.take(event)
    assert {(d.person, d.role) for d in await notify.deliveries(event.alert_id)} == {
        ("zhao", "node_in_charge"), ("qian", "unit_in_charge")}

    # A town with no staff on record at all, for an alert of no unit.
    town = opened(day, node="430621108").model_copy(update={"unit": None})
    await notify.take(town)
    [nobody] = await notify.deliveries(town.alert_id)
    assert (nobody.person, nobody.channel, nobody.status) == ("-", "none", "failed")
    assert nobody.last_error.startswith("nobody to tell")
    async with notify.sessions() as session:  # and the alert's history will say so
        [told] = [json.loads(payload) for (payload,) in await session.execute(text(
            "SELECT payload FROM notify.outbox WHERE convert_from(payload, 'UTF8') LIKE :a"),
            {"a": f"%{town.alert_id}%"})]
    assert (told["outcome"], told["channel"], told["person"]) == ("failed", "none", "无人")
    assert told["reason"].startswith("nobody to tell")
    assert await notify.drain() == 3  # 赵书记 by SMS and e-mail, 钱医生 by SMS


async def test_an_import_with_a_problem_writes_nothing(notify: Notify):
    content = ("code,name,node,phone\n"
               f"sun,孙六,{VILLAGE},13500000000\n"
               f"zhou,周七,{VILLAGE},not-a-phone\n")
    async with notify.sessions() as session, session.begin():
        written, problems = await staffing.import_staff(
            session, "people", content.encode(), "people.csv", False, "430621",
            notify.clock(), BASE_DAY, hosts=HOSTS)
    assert written == 0
    assert [(p.file, p.line, p.field, p.code) for p in problems] == [
        ("people.csv", 3, "phone", "invalid_phone")]
    async with notify.sessions() as session:
        assert await session.scalar(text(
            "SELECT count(*) FROM notify.people WHERE code = 'sun'")) == 0
    json.dumps([str(p) for p in problems])  # problems say themselves in both languages


async def test_missing_reports_are_told_as_one_digest_per_node_and_cutoff(notify: Notify):
    day = a_day(notify)
    other = f"{TOWN}002"  # 杨冲社区
    await notify.roster(day, ("zhang", "on_duty"))
    await notify.roster(day, ("qian", "on_duty"), node=other)
    await notify.roster(day, ("li", "on_duty"), node=TOWN)
    notify.clock.set(local(day, 14, 1))
    first = missing(day, VILLAGE, ["长源卫生室", "长源小学"])
    second = missing(day, other, ["杨冲药店"])
    await notify.take(first)
    await notify.take(second, first)  # the cutoff's alerts, and one of them redelivered

    assert await notify.drain() == 0  # a digest collects the cutoff's alerts first
    notify.clock.advance(seconds=notify.policy.digest_wait.total_seconds())
    assert await notify.drain() == 7  # 张三 ×3, 钱医生 ×1, 李四 ×3

    [town] = notify.gateway.to("/robot/dingtalk/li")
    content = town.body["text"]["content"]
    assert content.startswith(f"【漏报】公田镇 {day} 14:00 截止仍有 3 个单位未报")
    assert "长源社区:长源卫生室、长源小学" in content and "杨冲社区:杨冲药店" in content
    [village] = notify.gateway.to("/robot/wecom/zhang")
    assert "长源卫生室" in village.body["text"]["content"]
    assert "杨冲" not in village.body["text"]["content"]
    assert [r.body["mobile"] for r in notify.gateway.to("/sms")].count("13987654321") == 1
    told = {(d.person, d.channel) for d in await notify.deliveries(second.alert_id)}
    assert told == {("qian", "sms"), ("li", "sms"), ("li", "email"), ("li", "dingtalk")}


async def test_a_unit_still_pending_before_its_cutoff_is_reminded_and_one_that_reported_not(
        notify: Notify):
    day = a_day(notify)
    committee, firm = f"{VILLAGE}-VC", f"{VILLAGE}-EN1"  # both report by 14:00
    await notify.import_staff("contacts", f"scope,role,person\n{committee},reporter,zhang\n"
                                          f"{firm},reporter,li\n")
    async with notify.sessions() as session, session.begin():
        await reminders.record_reports(session, [ReportAccepted(
            report_id=uuid.uuid4(), unit=firm, node=VILLAGE, unit_type="enterprise",
            sector="commerce", day=day, revision=1, values={}, zero=True, late=False,
            submitted_at=local(day, 9).astimezone(UTC), reporter="李四")])
    async with notify.sessions() as session:
        reference = await Reference.load(session)

    async def remind() -> int:
        async with notify.sessions() as session, session.begin():
            return await reminders.remind(session, reference, notify.policy, notify.channels,
                                          ZONE, notify.clock())

    notify.clock.set(local(day, 13, 29))
    assert await remind() == 0  # not yet
    notify.clock.set(local(day, 13, 30))
    assert await remind() == 3  # 张三 for the committee, by SMS, e-mail and WeCom
    assert await remind() == 0  # once per cutoff, whichever replica comes second
    await notify.drain()

    reminded = [r.body["mobile"] for r in notify.gateway.to("/sms")]
    assert reminded.count("13912345678") == 1 and "13987654321" not in reminded
    [robot] = notify.gateway.to("/robot/wecom/zhang")
    assert robot.body["text"]["content"].startswith("【报送提醒】公田镇长源社区居民委员会")
    assert not notify.gateway.to("/robot/dingtalk/li")


async def test_a_unit_exempt_that_day_is_not_reminded_and_a_pending_one_is(notify: Notify):
    day = a_day(notify)
    committee, firm = f"{VILLAGE}-VC", f"{VILLAGE}-EN1"  # both report by 14:00
    await notify.import_staff("contacts", f"scope,role,person\n{committee},reporter,zhang\n"
                                          f"{firm},reporter,li\n")
    async with notify.sessions() as session, session.begin():
        await calendar.declare(session, calendar.Declaration(
            valid_from=day, valid_to=day, unit_code=committee, reason="村委换届"), "",
            "admin", notify.clock(), day)
    async with notify.sessions() as session:
        reference = await Reference.load(session)
    notify.clock.set(local(day, 13, 30))
    async with notify.sessions() as session, session.begin():
        assert await reminders.remind(session, reference, notify.policy, notify.channels,
                                      ZONE, notify.clock()) == 3  # 李四 for the firm only
    await notify.drain()

    reminded = [r.body["mobile"] for r in notify.gateway.to("/sms")]
    assert reminded.count("13987654321") == 1 and "13912345678" not in reminded
    assert not notify.gateway.to("/robot/wecom/zhang")


async def test_what_still_waits_to_tell_of_an_alert_is_cancelled_once_it_is_acknowledged(
        notify: Notify):
    day = a_day(notify)
    await notify.roster(day, ("zhang", "on_duty"))
    notify.gateway.failing["/robot/wecom/zhang"] = -1
    event = opened(day)
    await notify.take(event)
    await notify.drain()  # the robot fails: its delivery waits for a retry
    acknowledged = AlertAcknowledged(**{
        **event.model_dump(include=set(AlertAcknowledged.model_fields) - {"change"}),
        "seq": 2, "status": "acknowledged", "actor": "operator:村值班"})
    await notify.take(acknowledged)
    notify.clock.advance(hours=1)
    assert await notify.drain() == 0

    rows = {d.channel: (d.status, d.last_error) for d in await notify.deliveries(event.alert_id)}
    assert rows["wecom"] == ("cancelled", "not sent: alert acknowledged")
    assert rows["sms"][0] == rows["email"][0] == "sent"
    assert len(notify.gateway.to("/robot/wecom/zhang")) == 1
