"""Notify's pure rules: who is on duty, who is told, by which channels and when, the retry
back-off, the import checks, the message and DingTalk's signature."""

import base64
import hashlib
import hmac
import json
import uuid
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from services.notify import deliveries, messages, staff_import
from services.notify.channels import answer_field, dingtalk_sign, fill
from services.notify.hosts import AllowedHosts
from services.notify.policy import PolicyError, load_policy
from services.notify.reminders import due_cutoffs
from services.notify.staff import Directory, Person, Shift, masked, on_roster, resolve
from shared.contracts import AlertEscalated, AlertOpened, EditionPublished

ZONE = ZoneInfo("Asia/Shanghai")
DAY = date(2031, 5, 6)
VILLAGE, TOWN = "430621108001", "430621108"
POLICY = load_policy()


def at(hh: int, mm: int = 0) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hh, mm, tzinfo=ZONE)


PEOPLE = {
    "zhang": Person("zhang", "张三", VILLAGE, phone="13800000001", email="zhang@example.cn"),
    "li": Person("li", "李四", VILLAGE, phone="13800000002", chat_kind="dingtalk",
                 chat_webhook="http://robot/dt", chat_secret="SECx"),
    "wang": Person("wang", "王五", VILLAGE, email="wang@example.cn"),
    "boss": Person("boss", "赵书记", VILLAGE, phone="13800000009"),
    "clinic": Person("clinic", "钱医生", VILLAGE, phone="13800000010"),
}
ROSTER = (Shift(VILLAGE, DAY, "zhang", "on_duty", time(8), time(20)),
          Shift(VILLAGE, DAY, "li", "on_duty", time(20)),
          Shift(VILLAGE, DAY, "wang", "on_duty", time(0), time(8)),
          Shift(VILLAGE, DAY, "boss", "leader"))


def directory(shifts=ROSTER, unit_contacts=None, node_contacts=None) -> Directory:
    return Directory(tuple(shifts), node_contacts or {"in_charge": "boss"},
                     unit_contacts or {"in_charge": "clinic"}, PEOPLE)


def opened(hh: int = 10, **kw) -> AlertOpened:
    fields = dict(alert_id=uuid.uuid4(), seq=1, kind="case", node=VILLAGE,
                  unit=f"{VILLAGE}-CL", unit_type="village_clinic",
                  recipients=["village_committee"], level="village", responsible=VILLAGE,
                  status="open", deadline=at(hh + 2), late=False, at=at(hh), actor="system",
                  case_kind="fever", started_at=at(hh))
    return AlertOpened(**{**fields, **kw})


def test_the_roster_says_who_is_on_duty_at_each_hour():
    assert on_roster(ROSTER, "on_duty", time(10)) == ["zhang"]
    assert on_roster(ROSTER, "on_duty", time(20)) == ["li"]  # a shift ends where the next starts
    assert on_roster(ROSTER, "on_duty", time(7, 59)) == ["wang"]
    assert on_roster(ROSTER, "leader", time(3)) == ["boss"]


def test_a_role_nobody_holds_falls_back_in_order():
    nobody_on_duty = [s for s in ROSTER if s.role == "leader"]
    told = resolve(["on_duty"], POLICY.fallback, directory(nobody_on_duty), time(10))
    assert [(p.code, role) for p, role in told] == [("boss", "leader")]
    told = resolve(["on_duty"], POLICY.fallback, directory([]), time(10))
    assert [(p.code, role) for p, role in told] == [("boss", "node_in_charge")]


def plan(event, directory, channels):
    """The deliveries of an alert change, as the intake plans them."""
    return deliveries.plan(POLICY.roles_for(event.kind, event.change), directory, POLICY,
                           channels, event.at.astimezone(ZONE).time().replace(tzinfo=None),
                           event.at, ZONE)


def test_a_case_opened_tells_the_person_on_duty_and_the_unit_by_each_channel_they_have():
    planned = plan(opened(10), directory(), ("sms", "email", "dingtalk"))
    assert {(p.person, p.role, p.channel) for p in planned} == {
        ("zhang", "on_duty", "sms"), ("zhang", "on_duty", "email"),
        ("clinic", "unit_in_charge", "sms")}
    assert all(p.failed is None and p.due == at(10) for p in planned)
    # At night the night shift is told, by the robot it has.
    night = plan(opened(21), directory(), ("sms", "dingtalk"))
    assert {(p.person, p.channel) for p in night} == {
        ("li", "sms"), ("li", "dingtalk"), ("clinic", "sms")}


def test_an_escalation_tells_the_duty_leader_of_the_level_it_escalates_to():
    event = AlertEscalated(**{**opened(10).model_dump(exclude={"change", "case_id", "case_kind",
                                                               "started_at", "details"}),
                              "seq": 3, "responsible": TOWN, "level": "town",
                              "from_node": VILLAGE, "step": 1, "at": at(12, 1)})
    town = [Shift(TOWN, DAY, "wang", "on_duty"), Shift(TOWN, DAY, "boss", "leader")]
    planned = plan(event, directory(town), ("sms", "email"))
    assert {(p.person, p.role) for p in planned} == {("boss", "leader")}


def test_nobody_to_tell_is_recorded_as_a_failure():
    empty = Directory((), {}, {}, PEOPLE)
    planned = plan(opened(), empty, ("sms",))
    assert [(p.person, p.channel, bool(p.failed)) for p in planned] == [("-", "none", True)]
    unreachable = plan(opened(), directory(), ("wecom",))
    assert {(p.person, p.channel) for p in unreachable} == {("zhang", "none"),
                                                             ("clinic", "none")}


def test_a_change_the_policy_does_not_name_tells_nobody():
    closed = opened().model_copy(update={"change": "closed"})
    assert plan(closed, directory(), ("sms",)) == []


def test_quiet_hours_hold_a_delivery_until_they_end(tmp_path: Path):
    path = tmp_path / "notify.toml"
    default = (Path(__file__).parents[2] / "services/notify/data/notify.toml").read_text()
    path.write_text(default.replace("[quiet_hours]\n",
                                    '[quiet_hours]\nemail = ["22:00", "07:00"]\n'),
                    encoding="utf-8")
    policy = load_policy(path)
    assert policy.first_attempt_at("email", at(23), ZONE) == at(7) + timedelta(days=1)
    assert policy.first_attempt_at("email", at(3), ZONE) == at(7)
    assert policy.first_attempt_at("email", at(7), ZONE) == at(7)
    assert policy.first_attempt_at("sms", at(23), ZONE) == at(23)


def test_retries_back_off_and_then_stop():
    now = at(10)
    delays = [POLICY.retry_at(n, now) for n in range(1, POLICY.attempts + 1)]
    assert [d - now for d in delays[:-1]] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert delays[-1] is None


def test_a_wrong_policy_stops_the_start(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('[tell.case]\nopened = ["on_call"]\n', encoding="utf-8")
    with pytest.raises(PolicyError, match="unknown role on_call"):
        load_policy(path)


def test_an_edition_goes_to_the_roles_the_policy_names_on_duty_by_default(tmp_path: Path):
    assert POLICY.edition_roles == ("on_duty",)
    path = tmp_path / "editions.toml"
    path.write_text('[edition]\nroles = ["on_duty", "leader"]\n', encoding="utf-8")
    assert load_policy(path).edition_roles == ("on_duty", "leader")
    path.write_text('[edition]\nroles = ["mayor"]\n', encoding="utf-8")
    with pytest.raises(PolicyError, match=r"edition\.roles: unknown role mayor"):
        load_policy(path)


def test_the_edition_message_says_which_and_where_to_download_it():
    edition_id = uuid.uuid4()
    event = EditionPublished(
        edition_id=edition_id, node=TOWN, name="公田镇", day=DAY, scheduled=time(14, 30),
        produced_at=datetime(2031, 5, 6, 14, 30, tzinfo=ZONE), title="公田镇疫情防控日报",
        filename="summary.xlsx", media_type="application/octet-stream", size=2_500_000,
        sha256="0" * 64, download=f"/api/editions/{edition_id}/xlsx")
    title, body = messages.render_edition(event, "公田镇", "https://rollcall.example.cn/")
    assert title == "【定时日报】公田镇 05-06 14:30 版已生成"
    assert body == (f"{title}:公田镇疫情防控日报(报告日 2031-05-06,工作簿 2.4 MB)。"
                    f"下载:https://rollcall.example.cn/api/editions/{edition_id}/xlsx")
    _, bare = messages.render_edition(event.model_copy(update={"size": 300}), "公田镇", None)
    assert "工作簿 1 KB" in bare and bare.endswith(f"控制台下载路径:{event.download}")


KNOWN = staff_import.Known(nodes={VILLAGE, TOWN}, units={f"{VILLAGE}-CL": VILLAGE},
                           people={"zhang": VILLAGE, "wu": "430622100001"})


def _check(kind: str, text: str, area: str = TOWN, json_format: bool = False):
    records, problems = staff_import.read(kind, text.encode(), kind, json_format)
    return staff_import.check(kind, records, problems, KNOWN, area)


def test_an_import_names_every_problem_with_its_line_and_field_and_writes_nothing():
    staff, problems = _check("people", (
        "code,name,node,phone,email,chat_kind,chat_webhook\n"
        f"zhang,张三,{VILLAGE},138-0000-0001,zhang@example.cn,,\n"
        f"li,李四,{VILLAGE},call me,li-at-example,wecom,\n"
        "wang,王五,430622100001,,,,\n"
        f"wu,吴六,{VILLAGE},,,,\n"))
    assert staff is None
    assert {(p.line, p.field, p.code) for p in problems} == {
        (3, "phone", "invalid_phone"), (3, "email", "invalid_email"),
        (3, "chat_webhook", "required"), (4, "node", "unknown_node"),
        (5, "code", "outside_area")}


def test_an_import_keeps_to_the_operators_area():
    _, problems = _check("contacts", f"scope,role,person\n{VILLAGE}-CL,in_charge,zhang\n",
                         area="430621109")
    assert [(p.line, p.field, p.code) for p in problems] == [(2, "scope", "outside_area")]


def test_a_roster_file_gives_each_day_its_shifts():
    shifts = [{"node": VILLAGE, "day": "2031-05-06", "person": "zhang", "role": "on_duty",
               "starts": "08:00", "ends": "20:00"},
              {"node": VILLAGE, "day": "2031-05-06", "person": "zhang", "role": "leader"}]
    staff, problems = _check("rosters", json.dumps(shifts, indent=1), json_format=True)
    assert problems == []
    assert staff is not None
    assert staff.rosters[(VILLAGE, DAY)] == [
        Shift(VILLAGE, DAY, "zhang", "on_duty", time(8), time(20)),
        Shift(VILLAGE, DAY, "zhang", "leader", time(0), None)]
    _, problems = _check("rosters", (
        "node,day,person,role,starts,ends\n"
        f"{VILLAGE},2031-05-06,nobody,on_duty,20:00,08:00\n"
        f"{VILLAGE},2031-13-01,zhang,chief,,\n"))
    assert {(p.line, p.field, p.code) for p in problems} == {
        (2, "person", "unknown_person"), (2, "ends", "ends_before_start"),
        (3, "day", "invalid_date"), (3, "role", "not_allowed")}


def test_a_person_never_shows_their_addresses_in_a_repr():
    assert "13800000001" not in repr(PEOPLE["zhang"])
    assert "13800000001" not in repr(directory())


def test_the_message_says_what_where_and_by_when():
    title, body = messages.render(opened(10), {VILLAGE: "荣家湾村", f"{VILLAGE}-CL": "卫生室"},
                                  ZONE)
    assert title == "【发热病例预警】荣家湾村 卫生室 发现发热病例"
    assert "请于 05-06 12:00 前确认处置" in body


def test_dingtalk_signs_the_timestamp_and_the_secret_with_hmac_sha256():
    expected = base64.b64encode(hmac.new(b"SECx", b"1700000000000\nSECx",
                                         hashlib.sha256).digest()).decode()
    assert dingtalk_sign("SECx", 1700000000000) == expected


def test_the_sms_template_is_filled_without_becoming_json():
    body = fill({"to": "{phone}", "msg": ["{text}"], "n": 1},
                {"text": 'a "quoted" {phone}', "phone": "138"})
    assert body == {"to": "138", "msg": ['a "quoted" {phone}'], "n": 1}


def test_a_reminder_is_due_from_its_lead_time_until_the_cutoff():
    cutoffs = [time(10), time(14), time(14)]
    lead = timedelta(minutes=30)
    assert due_cutoffs(cutoffs, at(13, 29), lead, ZONE) == []
    assert due_cutoffs(cutoffs, at(13, 30), lead, ZONE) == [(DAY, time(14))]
    assert due_cutoffs(cutoffs, at(13, 59), lead, ZONE) == [(DAY, time(14))]
    assert due_cutoffs(cutoffs, at(14), lead, ZONE) == []  # too late to help: skipped


def test_a_digest_lists_the_missing_units_by_village():
    title, body = messages.render_digest("公田镇", "2031-05-06", "14:00", [
        {"node_name": "长源社区", "units": ["卫生室", "小学"]},
        {"node_name": "杨冲社区", "units": ["药店"]}])
    assert title == "【漏报】公田镇 2031-05-06 14:00 截止仍有 3 个单位未报"
    assert body.splitlines()[1:] == ["长源社区:卫生室、小学", "杨冲社区:药店"]
    many = messages.render_digest("公田镇", "2031-05-06", "14:00",
                                  [{"node_name": "村", "units": [f"U{i}" for i in range(40)]}])
    assert many[1].endswith("另有 10 个单位未列出")


def test_every_alert_kind_of_the_contract_tells_someone_when_it_opens() -> None:
    from typing import get_args

    from services.notify.messages import KIND_NAMES
    from services.notify.policy import load_policy
    from shared.contracts import AlertKind

    policy = load_policy()
    for kind in get_args(AlertKind):
        assert kind in KIND_NAMES
        if kind != "missing_report":  # told as digests
            assert policy.roles_for(kind, "opened"), kind


def test_the_allow_list_takes_exact_hosts_and_subdomains_and_names_the_host_it_refuses():
    hosts = AllowedHosts.parse("qyapi.weixin.qq.com, *.sms.example.cn 127.0.0.1")
    assert hosts.refusal("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K") is None
    assert hosts.refusal("https://QYAPI.weixin.qq.com./x") is None
    assert hosts.refusal("http://gw.sms.example.cn/send") is None
    assert hosts.refusal("http://127.0.0.1:8080/sms") is None
    assert hosts.refusal("https://sms.example.cn/send") == (
        "host sms.example.cn is not in ROLLCALL_NOTIFY_ALLOWED_HOSTS")
    assert hosts.refusal("https://qyapi.weixin.qq.com.evil.net/x?key=K") == (
        "host qyapi.weixin.qq.com.evil.net is not in ROLLCALL_NOTIFY_ALLOWED_HOSTS")
    assert hosts.refusal("https://user@evil.net@qyapi.weixin.qq.com/") is None  # the real host
    assert hosts.refusal("ftp://qyapi.weixin.qq.com/") == "not an http(s) URL"
    assert AllowedHosts.parse("").refusal("https://oapi.dingtalk.com/robot/send") is not None


def test_a_name_beyond_notify_is_the_surname_and_mou():
    assert masked("张三") == "张某"
    assert masked("钱医生") == "钱某"
    assert masked("欧阳修") == "欧阳某"
    assert masked("欧阳") == "欧某"  # a two-character name is surname and given name
    assert masked(" Li Wei ") == "L某"
    assert masked("") == "某"


def test_the_gateways_message_id_is_read_where_settings_say():
    assert answer_field({"message_id": "m-1"}, "message_id") == "m-1"
    assert answer_field({"data": {"msgid": 42}}, "data.msgid") == "42"
    assert answer_field({"data": {"msgid": True}}, "data.msgid") is None
    assert answer_field({"status": "queued"}, "message_id") is None
    assert answer_field(["m-1"], "message_id") is None


def test_a_webhook_on_a_host_not_allowed_is_a_named_problem_of_its_line():
    known = staff_import.Known(nodes={VILLAGE}, hosts=AllowedHosts.parse("oapi.dingtalk.com"))
    records, problems = staff_import.read("people", (
        "code,name,node,chat_kind,chat_webhook\n"
        f"a,甲,{VILLAGE},dingtalk,https://oapi.dingtalk.com/robot/send?access_token=T\n"
        f"b,乙,{VILLAGE},wecom,https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=K\n"
    ).encode(), "people.csv", False)
    staff, problems = staff_import.check("people", records, problems, known, VILLAGE)
    assert staff is None
    assert [(p.line, p.field, p.code) for p in problems] == [
        (3, "chat_webhook", "host_not_allowed")]
    assert "key=K" not in str(problems[0])
