"""Staff records and who is on duty: pure rules, no database.

A person has a home node (whose staff they are: operators of that subtree see and edit them)
and the addresses they can be reached at. A unit or a node names its person in charge
(第一责任人) and its reporting officer (信息员); a node's duty roster says, for each day, who is
on duty (值班) and who leads (带班领导), for the whole day or for a shift (`starts` to `ends`; a
night shift across midnight is two entries, one on each day). Rosters are kept per day in the
deployment's time zone."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time

CONTACT_ROLES = ("in_charge", "reporter")
DUTY_ROLES = ("on_duty", "leader")
CHAT_KINDS = ("wecom", "dingtalk")


@dataclass(frozen=True, slots=True)
class Person:
    code: str
    name: str
    node: str
    phone: str | None = None
    email: str | None = None
    chat_kind: str | None = None
    chat_webhook: str | None = None
    chat_secret: str | None = None

    def address(self, channel: str) -> str | None:
        """Where `channel` reaches this person; None when it does not."""
        if channel == "sms":
            return self.phone
        if channel == "email":
            return self.email
        if channel in CHAT_KINDS:
            return self.chat_webhook if self.chat_kind == channel else None
        return None

    def __repr__(self) -> str:  # never the addresses: a person may end up in a log line
        return f"Person({self.code!r}, {self.name!r})"


# Two-character surnames (复姓) a masked name keeps whole: 欧阳某, not 欧某.
COMPOUND_SURNAMES = frozenset((
    "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "令狐", "长孙",
    "宇文", "司徒", "夏侯", "轩辕", "端木", "独孤", "南宫", "西门", "万俟", "申屠", "澹台"))


def masked(name: str) -> str:
    """A person's name as it may travel beyond notify (on the bus, in an alert's history):
    the surname and 某 ("张三" → "张某", "欧阳修" → "欧阳某"); a name in Latin letters keeps its
    first letter ("Li Wei" → "L某"); never more."""
    name = name.strip()
    if not name:
        return "某"
    surname = name[:2] if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else name[0]
    return f"{surname.upper() if surname.isascii() else surname}某"


@dataclass(frozen=True, slots=True)
class Shift:
    node: str
    day: date
    person: str
    role: str  # on_duty | leader
    starts: time = time(0, 0)
    ends: time | None = None  # None: to the end of the day

    def covers(self, at: time) -> bool:
        return self.starts <= at and (self.ends is None or at < self.ends)


def on_roster(shifts: Iterable[Shift], role: str, at: time) -> list[str]:
    """The people holding `role` at the local time `at` of the shifts' day, in roster order,
    each once."""
    found: list[str] = []
    for shift in shifts:
        if shift.role == role and shift.covers(at) and shift.person not in found:
            found.append(shift.person)
    return found


@dataclass(frozen=True)
class Directory:
    """Who can be told about one alert: the responsible node's roster for the day of the change
    and its contacts, and the alert's unit's contacts."""

    shifts: tuple[Shift, ...]
    node_contacts: Mapping[str, str]  # contact role -> person code
    unit_contacts: Mapping[str, str]
    people: Mapping[str, Person]

    def holders(self, role: str, at: time) -> list[str]:
        if role in DUTY_ROLES:
            return on_roster(self.shifts, role, at)
        scope, _, contact = role.partition("_")
        person = (self.node_contacts if scope == "node" else self.unit_contacts).get(contact)
        return [person] if person else []


def resolve(roles: Iterable[str], fallback: Mapping[str, tuple[str, ...]],
            directory: Directory, at: time) -> list[tuple[Person, str]]:
    """The people to tell and the role each is told as. A role that finds nobody is taken by
    its first fallback that finds someone; a person is told once, as the first role that
    names them."""
    told: dict[str, tuple[Person, str]] = {}
    for role in roles:
        for candidate in (role, *fallback.get(role, ())):
            found = [p for p in directory.holders(candidate, at) if p in directory.people]
            if found:
                for code in found:
                    told.setdefault(code, (directory.people[code], candidate))
                break
    return list(told.values())
