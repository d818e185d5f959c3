"""Notify's wire schemas: staff records, rosters and deliveries as operators see them. A robot's
webhook and secret are never answered with: only whether a person has one."""

from datetime import date, datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PersonView(BaseModel):
    code: str
    name: str
    node: str
    phone: str | None
    email: str | None
    chat: Literal["wecom", "dingtalk"] | None = Field(
        description="the group robot that reaches them, if any (its address is not shown)")


class ContactView(BaseModel):
    scope: str = Field(description="a unit code or a node code")
    role: Literal["in_charge", "reporter"]
    node: str
    person: str


class ShiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    person: str = Field(max_length=64)
    role: Literal["on_duty", "leader"]
    starts: time | None = Field(default=None, description="HH:MM; the day's start when absent")
    ends: time | None = Field(default=None, description="HH:MM; the day's end when absent")


class RosterIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shifts: list[ShiftIn] = Field(max_length=500)


class ShiftView(BaseModel):
    person: str
    role: Literal["on_duty", "leader"]
    starts: time
    ends: time | None


class RosterView(BaseModel):
    node: str
    day: date
    shifts: list[ShiftView]


class Imported(BaseModel):
    kind: str
    written: int


class DeliveryView(BaseModel):
    """One message to one person by one channel ("短信已发送 13:30 张某")."""

    id: int
    topic: str = Field(description="what it tells of: the alert change (opened, warned, "
                                   "escalated…), or `digest` for a missing-report digest")
    person: str
    person_name: str
    role: str = Field(description="why they were told: on_duty, leader, unit_in_charge…")
    channel: Literal["sms", "email", "wecom", "dingtalk", "none"]
    status: Literal["pending", "sent", "delivered", "failed", "cancelled"] = Field(
        description="sent: the channel took it (SMTP 250, a robot's errcode 0, the SMS "
                    "gateway's 2xx); delivered: the SMS gateway's receipt says it reached the "
                    "phone; cancelled: still waiting when the alert was acknowledged or closed")
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    delivered_at: datetime | None = None
    next_attempt_at: datetime | None = Field(description="when a pending one is tried again")
    last_error: str | None


class ReceiptIn(BaseModel):
    """One delivery receipt from the SMS gateway. Other fields a gateway sends (a phone
    number, say) are ignored and never kept."""

    model_config = ConfigDict(extra="ignore")

    message_id: str = Field(min_length=1, max_length=200,
                            description="the id the gateway answered the send with")
    status: Literal["delivered", "failed"]
    at: datetime | None = Field(default=None, description="when it reached the phone, or not")
    error: str | None = Field(default=None, max_length=200,
                              description="the gateway's code when it did not")


class ReceiptsTaken(BaseModel):
    results: list[Literal["applied", "duplicate"]] = Field(
        description="per receipt, in order: applied, or duplicate (its outcome was known)")
