"""Alerts' wire schemas: what operators send and get back."""

import re
from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, BeforeValidator, Field

from shared.contracts import AlertKind


def _written_as_a_day(value: object) -> object:
    """A day is written YYYY-MM-DD, as the schema says: a number is not read as a timestamp."""
    if isinstance(value, str) and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError("a day is written YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(_written_as_a_day)]


class Acknowledge(BaseModel):
    reason: str | None = Field(default=None, max_length=1000,
                               examples=["值班员已电话联系村委会"])


class Close(BaseModel):
    """What was done: isolated, referred to a fever clinic, excluded, or other (say what)."""

    outcome: Literal["isolated", "referred", "excluded", "other"]
    note: str = Field(min_length=1, max_length=2000, examples=["已转诊至县人民医院发热门诊"])


class MissingUnit(BaseModel):
    unit: str
    reported_at: datetime | None
    exempted_by: int | None = Field(default=None, description="the calendar (免报) that took "
                                    "the unit off the alert, declared after the cutoff")


class Told(BaseModel):
    """One outcome of a notification about the alert, as notify reported it: "短信已送达 13:30
    张某". The person is masked (surname + 某); no address is ever held here."""

    step: str = Field(description="what was told: the alert's change (opened, warned, "
                                  "escalated…) or `digest`")
    channel: Literal["sms", "email", "wecom", "dingtalk", "none"]
    outcome: Literal["sent", "delivered", "failed"] = Field(
        description="sent: the channel took it (SMTP 250, a robot's errcode 0, the SMS "
                    "gateway's 2xx); delivered: the SMS receipt says it reached the phone")
    at: datetime
    person: str
    role: str
    reason: str | None
    text: str = Field(examples=["短信已送达 13:30 张某"])


class AlertView(BaseModel):
    alert_id: UUID
    kind: AlertKind
    status: Literal["open", "acknowledged", "closed"]
    node: str
    unit: str | None
    unit_type: str | None
    case_id: UUID | None
    case_kind: str | None
    recipients: list[str]
    level: str = Field(description="the level now responsible")
    responsible: str = Field(description="the node now responsible")
    day: date
    started_at: datetime
    deadline: datetime
    seconds_left: int | None = Field(description="until the deadline; negative once overdue; "
                                                 "None once acknowledged or closed")
    overdue: bool
    late: bool = Field(description="reported already past its deadline")
    escalations: int
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    closed_at: datetime | None
    closed_by: str | None
    outcome: str | None
    note: str | None
    details: dict
    missing_units: list[MissingUnit] | None = None
    told: list[Told] | None = Field(
        default=None, description="who was told of it, how, when and whether it arrived "
                                  "(in the alert's detail only; from notify's delivery events)")


class Change(BaseModel):
    seq: int
    change: str
    at: datetime
    actor: str
    reason: str | None
    details: dict


class Problem(BaseModel):
    detail: str
    errors: list[dict[str, str]]


class KindLevelCount(BaseModel):
    kind: AlertKind
    level: str = Field(description="the level now responsible")
    alerts: int
    overdue: int = Field(description="open and past their deadline")


class AlertCounts(BaseModel):
    """How many alerts a list with the same filters holds, in all and per kind and level."""

    node: str
    scope: Literal["subtree", "exact"]
    status: Literal["active", "open", "acknowledged", "closed"]
    total: int
    overdue: int
    by_kind: dict[str, int]
    by_level: dict[str, int]
    by_kind_and_level: list[KindLevelCount]


class FlagView(BaseModel):
    """A suspicion of concealment (疑似瞒报): shown beside the figures, never changing them."""

    flag_id: UUID
    kind: Literal["zero_with_case", "identical_values"]
    unit: str
    node: str
    unit_type: str
    sector: str
    day: date
    details: dict
    raised_at: datetime
    status: Literal["open", "dismissed"]
    dismissed_at: datetime | None = None
    dismissed_by: str | None = None
    dismissal_reason: str | None = None


class Dismiss(BaseModel):
    reason: str = Field(min_length=1, max_length=1000,
                        examples=["已核实:病例为外地来诊,本单位当日无在校学生发热"])


class FlagCounts(BaseModel):
    node: str
    start: date
    end: date
    total: int
    open: int
    by_kind: dict[str, dict[str, int]]
    open_by_unit: dict[str, int]
