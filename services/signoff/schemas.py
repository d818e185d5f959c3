"""Signoff's HTTP bodies."""

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Number = int | float


class SendBackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit: str = Field(min_length=1, max_length=32)
    day: date
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                             max_length=500)] = Field(
        description="why it goes back: shown to the unit")


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node: str = Field(min_length=2, max_length=12)
    day: date


class SendbackView(BaseModel):
    sendback_id: uuid.UUID
    unit: str
    day: date
    node: str
    revision: int = Field(description="the revision sent back")
    reason: str
    sent_by: str
    sent_at: datetime
    status: Literal["open", "cleared"]
    cleared_at: datetime | None = None
    cleared_revision: int | None = Field(default=None, description="the correction that "
                                                                   "cleared it")
    cleared_by: str | None = None
    cleared_reason: str | None = None


class ChangeView(BaseModel):
    unit: str
    revision: int
    confirmed_revision: int | None = Field(description="the revision the confirmation held; "
                                                       "None: the unit was not in it")
    kind: Literal["correction", "late_report"]
    label: str = Field(description="更正 after confirmation, or 迟报 after confirmation")
    reason: str | None
    actor: str | None
    at: datetime


class ConfirmationView(BaseModel):
    confirmation_id: uuid.UUID
    version: int
    figures: dict[str, Number]
    reported: int
    confirmed_at: datetime
    confirmed_by: str
    reopened_at: datetime | None


class NodeDayView(BaseModel):
    node: str
    name: str
    level: str
    confirms: bool = Field(description="whether this level confirms its day")
    due_at: datetime | None = Field(description="by when it must confirm")
    status: Literal["unconfirmed", "confirmed", "reopened", "not_required"]
    live: dict[str, Number] = Field(description="the figures now (unconfirmed until confirmed)")
    reported: int = Field(description="units with a report in the live figures")
    confirmation: ConfirmationView | None
    changed_after_confirmation: bool
    difference: dict[str, Number] = Field(description="live minus confirmed")
    changes: list[ChangeView]
    open_sendbacks: int


class SignoffView(NodeDayView):
    day: date
    children: list[NodeDayView]


class ReportView(BaseModel):
    revision: int
    values: dict[str, Number]
    zero: bool
    late: bool
    submitted_at: datetime
    reporter: str
    reason: str | None
    note: str | None


class UnitReviewView(BaseModel):
    unit: str
    name: str
    unit_type: str
    node: str
    report: ReportView | None
    sendback: SendbackView | None = Field(description="the open send-back")
    sendbacks: int


class ReviewView(BaseModel):
    node: str
    day: date
    units: list[UnitReviewView]


class AuditEntry(BaseModel):
    entry: int
    action: str
    node: str
    day: date
    unit: str | None
    revision: int | None
    actor: str
    at: datetime
    reason: str | None
    details: dict
