"""Importing staff records from CSV or JSON: people, their roles at units and nodes (contacts),
and duty rosters. Like the registry's import (shared/registry/importer.py, whose readers and
`Problem` this uses): every problem is named with its line and field, and a file with any
problem imports nothing. Pure: what the registry and notify hold already comes in `Known`.

Columns (docs/architecture.md, notify):
- people:   code, name, node [, phone, email, chat_kind (wecom|dingtalk), chat_webhook,
            chat_secret]
- contacts: scope (a unit code or a node code), role (in_charge|reporter), person
- rosters:  node, day, person, role (on_duty|leader) [, starts, ends (HH:MM; whole day when
            absent)]. The days a file names get exactly the file's shifts.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time

from services.notify.hosts import AllowedHosts
from services.notify.staff import CHAT_KINDS, CONTACT_ROLES, DUTY_ROLES, Person, Shift

# The registry importer's own checks of a division code and a date, with their messages.
from shared.registry.importer import (
    Kind,
    Problem,
    Record,
    _date,
    _division_code,
    read_csv,
    read_json,
)

KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("people", ("code", "name", "node"),
         ("phone", "email", "chat_kind", "chat_webhook", "chat_secret"),
         formats=(".csv", ".json")),
    Kind("contacts", ("scope", "role", "person"), formats=(".csv", ".json")),
    Kind("rosters", ("node", "day", "person", "role"), ("starts", "ends"),
         formats=(".csv", ".json")),
)}
PERSON_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.@-]{0,63}")
PHONE = re.compile(r"\+?[0-9]{5,20}")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
NAME_MAX = 100


@dataclass(frozen=True)
class Known:
    """What the registry and notify hold, as far as checking an import needs it."""

    nodes: frozenset[str] | set[str] = frozenset()
    units: Mapping[str, str] = field(default_factory=dict)  # unit code -> its node
    people: Mapping[str, str] = field(default_factory=dict)  # person code -> their node
    # The hosts a robot's webhook may name (ROLLCALL_NOTIFY_ALLOWED_HOSTS); None: any.
    hosts: AllowedHosts | None = None


@dataclass
class Staff:
    """What a file says, checked: the rows to write."""

    people: list[Person] = field(default_factory=list)
    # (scope, role, node, person)
    contacts: list[tuple[str, str, str, str]] = field(default_factory=list)
    rosters: dict[tuple[str, date], list[Shift]] = field(default_factory=dict)


def read(kind: str, data: bytes, file: str, json_format: bool) -> tuple[list[Record],
                                                                        list[Problem]]:
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [], [Problem(file, data[: exc.start].count(b"\n") + 1, "", "not_utf8",
                            "文件不是 UTF-8 编码(请另存为 UTF-8)",
                            "the file is not UTF-8 (save it as UTF-8)")]
    return (read_json if json_format else read_csv)(content, KINDS[kind], file)


class _Row:
    """One record's fields, each checked once; problems are collected, not raised."""

    def __init__(self, record: Record, problems: list[Problem]) -> None:
        self.record, self.problems = record, problems
        self.before = len(problems)

    def problem(self, column: str, code: str, zh: str, en: str) -> None:
        self.problems.append(Problem(self.record.file, self.record.line, column, code, zh, en))

    @property
    def ok(self) -> bool:
        return len(self.problems) == self.before

    def text(self, column: str, required: bool = False, max_length: int = 200) -> str | None:
        value = self.record.fields.get(column, "") or None
        if value is None and required:
            self.problem(column, "required", "不能为空", "is required")
        elif value is not None and len(value) > max_length:
            self.problem(column, "too_long", f"超过 {max_length} 字",
                         f"longer than {max_length}")
        return value

    def choice(self, column: str, allowed: tuple[str, ...]) -> str | None:
        value = self.text(column, required=True)
        if value is not None and value not in allowed:
            self.problem(column, "not_allowed", f"应为 {' / '.join(allowed)} 之一",
                         f"one of {', '.join(allowed)}")
            return None
        return value

    def node(self, column: str, known: Known, area: str) -> str | None:
        value = _division_code(self.record, column, self.problems)
        if value is None:
            return None
        if value not in known.nodes:
            self.problem(column, "unknown_node", f"区划 {value} 不存在", f"unknown node {value}")
        elif not value.startswith(area):
            self.problem(column, "outside_area", f"{value} 不在此凭证的辖区内",
                         f"{value} is outside this credential's area")
        else:
            return value
        return None

    def person(self, column: str, known: Known) -> str | None:
        value = self.text(column, required=True, max_length=64)
        if value is not None and value not in known.people:
            self.problem(column, "unknown_person", f"人员 {value} 不存在(请先导入人员)",
                         f"unknown person {value} (import people first)")
            return None
        return value

    def clock(self, column: str) -> time | None:
        value = self.text(column)
        if value is None:
            return None
        try:
            return time.fromisoformat(value)
        except ValueError:
            self.problem(column, "invalid_time", f"时间格式应为 HH:MM: {value}",
                         f"not a time of day (HH:MM): {value!r}")
            return None


def _person(row: _Row, known: Known, area: str) -> Person | None:
    code = row.text("code", required=True, max_length=64)
    if code is not None and not PERSON_CODE.fullmatch(code):
        row.problem("code", "invalid_code", "人员编号只能含字母、数字和 _ . @ -",
                    f"a person's code is letters, digits and _ . @ -: {code!r}")
    elif code in known.people and not known.people[code].startswith(area):
        row.problem("code", "outside_area", f"人员 {code} 属于辖区外的 {known.people[code]}",
                    f"person {code} belongs to {known.people[code]}, outside this "
                    "credential's area")
    name = row.text("name", required=True, max_length=NAME_MAX)
    node = row.node("node", known, area)
    phone = row.text("phone", max_length=32)
    if phone is not None:
        phone = re.sub(r"[\s-]", "", phone)
        if not PHONE.fullmatch(phone):
            row.problem("phone", "invalid_phone", "电话号码格式不正确", "not a phone number")
    email = row.text("email", max_length=254)
    if email is not None and not EMAIL.fullmatch(email):
        row.problem("email", "invalid_email", "电子邮箱格式不正确", "not an e-mail address")
    chat_kind = row.text("chat_kind")
    webhook = row.text("chat_webhook", max_length=2000)
    secret = row.text("chat_secret", max_length=200)
    if chat_kind is not None and chat_kind not in CHAT_KINDS:
        row.problem("chat_kind", "not_allowed", f"应为 {' / '.join(CHAT_KINDS)} 之一",
                    f"one of {', '.join(CHAT_KINDS)}")
    if (chat_kind is None) != (webhook is None):
        row.problem("chat_webhook" if webhook is None else "chat_kind", "required",
                    "群机器人需同时填写类型和地址",
                    "a group robot needs both chat_kind and chat_webhook")
    if webhook is not None and not webhook.startswith(("https://", "http://")):
        row.problem("chat_webhook", "invalid_url", "应为 http(s) 地址", "not an http(s) URL")
    elif webhook is not None and known.hosts is not None and (
            reason := known.hosts.refusal(webhook)):
        row.problem("chat_webhook", "host_not_allowed",
                    f"机器人地址的主机不在允许列表中({reason})", reason)
    if secret is not None and chat_kind != "dingtalk":
        row.problem("chat_secret", "not_allowed", "只有钉钉机器人有加签密钥",
                    "only a DingTalk robot has a signing secret")
    if not row.ok:
        return None
    assert code and name and node
    return Person(code, name, node, phone, email, chat_kind, webhook, secret)


def _contact(row: _Row, known: Known, area: str) -> tuple[str, str, str, str] | None:
    scope = row.text("scope", required=True, max_length=32)
    role = row.choice("role", CONTACT_ROLES)
    person = row.person("person", known)
    node = None
    if scope is not None:
        node = scope if scope in known.nodes else known.units.get(scope)
        if node is None:
            row.problem("scope", "unknown_scope", f"单位或区划 {scope} 不存在",
                        f"no unit or node {scope}")
        elif not node.startswith(area):
            row.problem("scope", "outside_area", f"{scope} 不在此凭证的辖区内",
                        f"{scope} is outside this credential's area")
    if not row.ok:
        return None
    assert scope and role and node and person
    return scope, role, node, person


def _shift(row: _Row, known: Known, area: str) -> Shift | None:
    node = row.node("node", known, area)
    day = _date(row.record, "day", row.problems) if row.text("day", required=True) else None
    person = row.person("person", known)
    role = row.choice("role", DUTY_ROLES)
    starts = row.clock("starts") or time(0, 0)
    ends = row.clock("ends")
    if ends is not None and ends <= starts:
        row.problem("ends", "ends_before_start", "结束时间应晚于开始时间(跨夜班请分两天填写)",
                    "ends must be after starts (a night shift is two rows, one each day)")
    if not row.ok:
        return None
    assert node and day and person and role
    return Shift(node, day, person, role, starts, ends)


def check(kind: str, records: list[Record], problems: list[Problem], known: Known, area: str
          ) -> tuple[Staff | None, list[Problem]]:
    """The rows to write, or every problem of the file: `area` is the importing operator's
    node, and every row must lie inside it."""
    problems = list(problems)
    staff = Staff()
    seen: dict[tuple, int] = {}
    for record in records:
        row = _Row(record, problems)
        if kind == "people":
            value: object = _person(row, known, area)
            key: tuple | None = (value.code,) if isinstance(value, Person) else None
        elif kind == "contacts":
            value = _contact(row, known, area)
            key = value[:2] if isinstance(value, tuple) else None
        else:
            value = _shift(row, known, area)
            key = ((value.node, value.day, value.person, value.role, value.starts)
                   if isinstance(value, Shift) else None)
        if key is None:
            continue
        if (first := seen.setdefault(key, record.line)) != record.line:
            row.problem("", "duplicate", f"与第 {first} 行重复", f"same as line {first}")
        elif isinstance(value, Person):
            staff.people.append(value)
        elif isinstance(value, Shift):
            staff.rosters.setdefault((value.node, value.day), []).append(value)
        else:
            staff.contacts.append(value)  # type: ignore[arg-type]
    if problems:
        return None, sorted(problems, key=lambda p: (p.line, p.field))
    return staff, []
