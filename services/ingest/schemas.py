"""Ingest's wire schemas: what units and gateways send, and what they get back.

The same bodies travel over HTTP and over the bus. Unknown fields are refused rather than
ignored (a misspelt metric must not vanish), and values must be JSON numbers.
"""

import re
from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic.types import Strict

from shared.problems import custom_error

# Control characters but tab, newline and carriage return.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _printable(value: str) -> str:
    # NUL and other control characters cannot be stored or shown; they are never meant.
    if _CONTROL.search(value):
        raise custom_error("bad_characters", "含有不可见的控制字符",
                           "contains control characters")
    return value


def _plausible_time(value: datetime) -> datetime:
    # Far-off years cannot even be moved into the local time zone (year 1 at +01:00 is before
    # the calendar starts); no case was found before 2000 or will be after 2999.
    if not 2000 <= value.year <= 2999:
        raise custom_error("out_of_range", "时间不合理(应在 2000–2999 年之间)",
                           "not a plausible time (years 2000 to 2999)")
    return value


UnitCode = Annotated[str, StringConstraints(min_length=1, max_length=32),
                     AfterValidator(_printable),
                     Field(examples=["430621108001-CL"], description="the reporting unit's code")]
Reporter = Annotated[str, StringConstraints(min_length=1, max_length=100),
                     AfterValidator(_printable),
                     Field(description="the designated reporter (信息报送专员)")]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1000),
                   AfterValidator(_printable), Field(description="why the report is corrected")]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
                 AfterValidator(_printable), Field(
                     examples=["今日学校停课"],
                     description="有特殊情况及时报送: a free-text note kept with the "
                                 "revision, shown beside the figures and never aggregated; no "
                                 "ID-card or phone number")]
MetricCode = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Values = Annotated[dict[MetricCode, Annotated[float, Strict()]], Field(
    max_length=200, examples=[{"fever": 2, "ili": 1}],
    description="metric code → value, from the catalogue; counts are whole numbers ≥ 0")]
ReportDay = Annotated[date, Field(description="the reporting day, in the deployment's time zone")]


class Wire(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubmitReport(Wire):
    """A unit's daily report. An empty or all-zero `values` is a zero report (零报告)."""

    unit: UnitCode
    day: ReportDay
    values: Values = Field(default_factory=dict)
    reporter: Reporter
    report_id: UUID | None = Field(
        default=None, description="client-chosen id: a retry with the same id changes nothing")
    note: Note | None = None


class SubmitZeroReport(Wire):
    """零报告: "nothing to report today, all clear". Counts as reported, with every value zero."""

    unit: UnitCode
    day: ReportDay
    reporter: Reporter
    report_id: UUID | None = None
    note: Note | None = None


class CorrectReport(Wire):
    """A new revision that replaces the latest one everywhere; the old one is kept."""

    values: Values = Field(default_factory=dict)
    reporter: Reporter
    reason: Reason
    note: Note | None = None
    report_id: UUID | None = Field(
        default=None, description="client-chosen id of this revision: a retry changes nothing")
    revision: int | None = Field(
        default=None, ge=2, le=10_000,
        description="the revision this correction creates (latest + 1); with it, a retry is "
                    "recognised and a correction made meanwhile by someone else is refused")


class CorrectionCommand(CorrectReport):
    """A correction sent over the bus, where the unit and day are not in a path."""

    unit: UnitCode
    day: ReportDay


Symptom = Annotated[str, StringConstraints(min_length=1, max_length=50),
                    AfterValidator(_printable),
                    Field(examples=["cough", "sore_throat", "rash"])]
CaseAction = Literal["isolated", "referred", "sent_home", "observed", "other"]
CASE_DETAILS = ("second_temperature", "travel_risk_area", "contact_with_case", "action")


class SubmitCase(Wire):
    """A fever (≥ 37.3 °C) or flu-like (ILI) case found at a unit: opens a two-hour clock.

    No names: the person is a pseudonymous reference the unit can resolve, never a name, an ID
    card or a phone number."""

    unit: UnitCode
    kind: Literal["fever", "ili"] = Field(description="fever 发热 or ili 流感样病例")
    found_at: Annotated[datetime, AfterValidator(_plausible_time)] = Field(
        description="when the case was found (ISO 8601; without an offset, local time)")
    temperature: Annotated[float, Strict()] | None = Field(
        default=None, examples=[38.2], description="°C; required for a fever case")
    symptoms: list[Symptom] = Field(default_factory=list, max_length=20,
                                    examples=[["cough", "sore_throat"]])
    person_ref: str = Field(min_length=1, max_length=64, examples=["P-7f3a9c"],
                            description="a pseudonymous reference: letters, digits, - _ . :")
    case_id: UUID | None = Field(
        default=None, description="client-chosen id: a retry with the same id changes nothing")
    # What the seeds' incident form records (校园疫情突发情况登记表), all optional.
    second_temperature: Annotated[float, Strict()] | None = Field(
        default=None, examples=[38.1],
        description="°C, the second reading (a mercury thermometer after the first screening)")
    travel_risk_area: Annotated[bool, Strict()] | None = Field(
        default=None, description="recently stayed in or passed through a risk area")
    contact_with_case: Annotated[bool, Strict()] | None = Field(
        default=None, description="in contact with a confirmed or suspected case")
    action: CaseAction | None = Field(
        default=None, description="what was done: isolated on site (应急隔离), referred to a "
                                  "fever clinic (转诊发热门诊), sent home with a parent "
                                  "(家长接回), kept for observation (留观), other")

    def details(self) -> dict:
        """The extra fields given, as the ledger keeps them."""
        return self.model_dump(include=set(CASE_DETAILS), exclude_none=True)


class Receipt(BaseModel):
    status: Literal["accepted", "duplicate"]
    report_id: UUID
    unit: str
    day: date
    revision: int
    zero: bool
    late: bool = Field(description="迟报: submitted after the unit's cutoff")
    submitted_at: datetime


class CaseReceipt(BaseModel):
    status: Literal["accepted", "duplicate"]
    case_id: UUID
    unit: str
    kind: str
    found_at: datetime
    received_at: datetime
    late: bool = Field(description="arrived more than two hours after it was found")
    deadline: datetime = Field(description="found + two hours: when the case was due")


class Problem(BaseModel):
    """Why a submission was refused: every field at fault, with a stable code."""

    detail: str
    errors: list[dict[str, str]]
    rejection_id: UUID | None = None


class ItemResult(BaseModel):
    """One report of a bulk request: accepted, a duplicate of what is stored, or rejected."""

    index: int = Field(description="position in the request (data row for CSV, from 0)")
    status: Literal["accepted", "duplicate", "rejected"]
    code: int = Field(description="the HTTP status the report would have had on its own")
    report_id: UUID | None = None
    unit: str | None = None
    day: date | None = None
    revision: int | None = None
    zero: bool | None = None
    late: bool | None = None
    errors: list[dict[str, str]] = []
    rejection_id: UUID | None = None
    retry_after: int | None = Field(default=None, description="refused for sending too fast "
                                    "(429): seconds until the unit may send again")


class BulkResult(BaseModel):
    accepted: int
    duplicate: int
    rejected: int
    results: list[ItemResult]


class Revision(BaseModel):
    """One stored revision of a report, with who sent it and why it was corrected."""

    report_id: UUID
    unit: str
    day: date
    revision: int
    values: dict[str, int | float]
    zero: bool
    late: bool
    submitted_at: datetime
    reporter: str
    reason: str | None
    actor: str | None
    note: str | None = None


class SendbackNotice(BaseModel):
    """退回: a report of the unit sent back with a reason by an operator above it; the unit
    corrects it (`POST /v1/reports/{unit}/{day}/corrections`), which clears it."""

    sendback_id: UUID
    unit: str
    day: date
    status: Literal["open", "cleared"]
    revision: int | None = Field(description="the revision sent back")
    reason: str | None
    sent_by: str | None
    sent_at: datetime | None
    cleared_at: datetime | None
    cleared_revision: int | None = Field(description="the correction that cleared it")
    cleared_by: str | None
    cleared_reason: str | None


class ReportNote(BaseModel):
    """A unit's note on a day, from the latest revision of its report."""

    unit: str
    node: str
    revision: int
    note: str
    reporter: str
    submitted_at: datetime


class CaseView(BaseModel):
    case_id: UUID
    unit: str
    kind: str
    found_at: datetime
    received_at: datetime
    temperature: float | None
    symptoms: list[str]
    person_ref: str
    late: bool
    actor: str | None
    details: dict = Field(default_factory=dict,
                          description="second_temperature, travel_risk_area, contact_with_case, "
                                      "action: those given")
