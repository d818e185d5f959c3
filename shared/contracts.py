"""Event contracts between the services: what travels on the bus, and under which subject.

Events are past tense. Every subject carries the hierarchy, `<county>.<town>.<village>`, so a
consumer can take one county's traffic and the work can be partitioned by county.
"""

import hashlib
import re
from datetime import date, datetime, time
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic_core import from_json

from shared.hierarchy import subject_tokens

_SAFE_TOKEN = re.compile(r"[0-9A-Za-z_-]{1,64}")


class Event(BaseModel):
    model_config = ConfigDict(frozen=True)


class ReportAccepted(Event):
    """A stored revision of a unit's daily report. Revision 1 is the first report."""

    report_id: UUID
    unit: str
    node: str = Field(description="the node the unit belonged to on that day")
    unit_type: str
    sector: str
    day: date
    revision: int = Field(ge=1)
    # Typed as the catalogue declares: a count travels as an integer (2, not 2.0).
    values: dict[str, int | float]
    zero: bool = Field(description="a zero report (零报告): every value zero, counts as reported")
    late: bool = Field(description="submitted after the unit's cutoff (迟报)")
    submitted_at: datetime
    reporter: str
    reason: str | None = Field(default=None, description="why a correction was made")
    actor: str | None = Field(default=None,
                              description="who sent it: the credential, `unit:…`/`operator:…`")
    # Added later with a default: consumers that predate it ignore it, events before it lack it.
    note: str | None = Field(default=None,
                             description="the unit's free-text note (有特殊情况及时报送), never "
                                         "aggregated")

    @property
    def subject(self) -> str:
        return f"report.accepted.{subject_tokens(self.node)}"

    @property
    def msg_id(self) -> str:
        return f"report:{self.unit}:{self.day.isoformat()}:{self.revision}"


# The accepted-report contract is versioned (docs/architecture.md, "Accepted reports: the
# versioned contract"). v1: one ReportAccepted object per message, no `version` key. v2: an
# envelope `{"version": 2, "reports": [ReportAccepted, ...]}` carrying every revision of one
# village that one ingest transaction committed, at most ACCEPTED_BATCH_MAX of them.
ACCEPTED_VERSION = 2
ACCEPTED_VERSIONS = (1, 2)
ACCEPTED_BATCH_MAX = 256  # reports per message: ~400 bytes each, far below NATS's 1 MiB
_REPORTS = TypeAdapter(list[ReportAccepted])


class _AcceptedV2(BaseModel):
    version: Literal[2]
    reports: list[ReportAccepted] = Field(min_length=1, max_length=ACCEPTED_BATCH_MAX)


_V2_PREFIX = b'{"version":2,'  # how accepted_batch (and ingest's SQL) starts a v2 message


class UnknownVersion(ValueError):
    """A message of a contract version this code does not know: refused, never guessed at."""


def reports_of(msg: object) -> list[ReportAccepted]:
    """The reports a `report.accepted.…` message carries, whichever version it is (a NATS
    message, or its bytes). Raises UnknownVersion for a version this code does not know, and
    ValueError (pydantic's ValidationError) for a malformed one: the shared batch consumer
    terminates and logs such a message rather than acknowledging it. Every consumer of the
    subject decodes with this function, so that a new version is adopted in one place."""
    data = msg if isinstance(msg, bytes | bytearray | memoryview) else msg.data  # type: ignore[attr-defined]
    if bytes(data[:len(_V2_PREFIX)]) == _V2_PREFIX:
        # What ingest writes: validated straight from the bytes, in one pass.
        return _AcceptedV2.model_validate_json(data).reports
    body = from_json(data)
    if not isinstance(body, dict):
        raise ValueError("a report.accepted message must be a JSON object")
    version = body.get("version", 1)
    if version == 1:
        return [ReportAccepted.model_validate(body)]
    if version == 2:
        reports = body.get("reports")
        if not isinstance(reports, list) or not 1 <= len(reports) <= ACCEPTED_BATCH_MAX:
            raise ValueError(f"reports: a list of 1 to {ACCEPTED_BATCH_MAX} reports expected")
        return _REPORTS.validate_python(reports)
    raise UnknownVersion(f"version: {version!r} is not a known report.accepted version "
                         f"(known: {', '.join(map(str, ACCEPTED_VERSIONS))})")


def accepted_batch(payloads: list[bytes]) -> bytes:
    """A v2 message from reports already serialised as ReportAccepted JSON."""
    return b'{"version":2,"reports":[' + b",".join(payloads) + b"]}"


def accepted_batch_id(msg_ids: list[str]) -> str:
    """A v2 message's id, derived from the reports it carries (their own ids, in order): the
    same outbox row published twice has the same id, and the stream drops the replay. A batch
    of one keeps its report's id."""
    if len(msg_ids) == 1:
        return msg_ids[0]
    return "reports:" + hashlib.md5(" ".join(msg_ids).encode()).hexdigest()


class SubmissionRejected(Event):
    """Bad input kept with its reasons: nothing a unit sends disappears silently."""

    rejection_id: UUID
    kind: Literal["report", "case"]
    unit: str | None
    received_at: datetime
    errors: list[dict[str, str]]
    payload: dict

    @property
    def subject(self) -> str:
        # The unit is as received, so it may not be a valid subject token.
        unit = self.unit if self.unit and _SAFE_TOKEN.fullmatch(self.unit) else "_"
        return f"{self.kind}.rejected.{unit}"

    @property
    def msg_id(self) -> str:
        return f"rejected:{self.rejection_id}"


class CaseReported(Event):
    """A fever or flu-like case found at a unit; opens an alert with a two-hour clock."""

    case_id: UUID
    unit: str
    node: str
    unit_type: str
    sector: str
    kind: Literal["fever", "ili"]
    found_at: datetime
    received_at: datetime
    temperature: float | None = None
    symptoms: list[str] = []
    person_ref: str
    late: bool
    actor: str | None = None

    @property
    def subject(self) -> str:
        return f"case.reported.{subject_tokens(self.node)}"

    @property
    def msg_id(self) -> str:
        return f"case:{self.case_id}"


class RollupUpdated(Event):
    node: str
    day: date
    updated_at: datetime
    sectors: list[str] | None = Field(
        default=None, description="the sectors whose units moved the figures (their reports, "
                                  "or a cutoff passing: its units'); absent when every "
                                  "sector's may have")

    @property
    def subject(self) -> str:
        return f"rollup.updated.{self.node}"

    @property
    def msg_id(self) -> str:
        return f"rollup:{self.node}:{self.day.isoformat()}:{self.updated_at.isoformat()}"


class EditionPublished(Event):
    """A scheduled edition of a node's summary (e.g. the town's at 14:30, the county's at
    15:00) was produced and kept: the console serves its files at `download` exactly as they
    were made (the same bytes, whose SHA-256 is here), so that notify or a gateway can deliver
    it. One per node, day and scheduled time: the message id says which, so a replay is
    dropped."""

    edition_id: UUID
    node: str
    name: str | None
    day: date = Field(description="the reporting day it summarises")
    scheduled: time = Field(description="its time of day in the deployment's zone")
    produced_at: datetime
    title: str
    filename: str
    media_type: str
    size: int = Field(ge=0, description="bytes of the workbook")
    sha256: str
    download: str = Field(description="the console's path of the workbook, e.g. "
                                      "/api/editions/<id>/xlsx (an operator's token reads it)")

    @property
    def subject(self) -> str:
        return f"edition.published.{self.node}"

    @property
    def msg_id(self) -> str:
        return f"edition:{self.node}:{self.day.isoformat()}:{self.scheduled.strftime('%H:%M')}"


class RegistryChanged(Event):
    """The hierarchy, the units or the catalogue changed: reload reference data."""

    changed_at: datetime
    what: list[str]

    subject: ClassVar[str] = "registry.changed"

    @property
    def msg_id(self) -> str:
        return f"registry:{self.changed_at.isoformat()}"


CalendarChange = Literal["declared", "ended"]


class CalendarChanged(Event):
    """A calendar (免报, shared/registry/calendar.py) declared or ended, as it stands after the
    change: published by whoever records it (aggregate's `POST /v1/calendars`, `rollcall
    calendar`) after commit. Subject `calendar.<declared|ended>`, without the hierarchy: one
    calendar may cover a unit type across every county. One of each per calendar: the message
    id says which, so a replay is dropped (an ending that changes nothing is not published)."""

    change: CalendarChange
    exemption_id: int = Field(ge=1)
    node_code: str | None = None
    unit_code: str | None = None
    unit_type: str | None = None
    weekday: int | None = None
    valid_from: date
    valid_to: date | None = None
    withdrawn: bool = False
    reason: str = Field(description="why it was declared, or why it ended")
    actor: str = Field(description="who declared or ended it")
    at: datetime

    @property
    def subject(self) -> str:
        return f"calendar.{self.change}"

    @property
    def msg_id(self) -> str:
        return f"calendar:{self.exemption_id}:{self.change}:{self.at.isoformat()}"


# Commands gateways publish (captured by the SUBMISSIONS stream, handled by ingest): the body is
# the HTTP API's (SubmitReport, a correction with `unit` and `day`, SubmitCase), the credential
# goes in an `Authorization: Bearer …` header, and a `reply_to` header asks for the outcome.
# A gateway may append tokens (`report.submit.430621`) to spread its traffic.
REPORT_SUBMIT = "report.submit"
REPORT_CORRECT = "report.correct"
CASE_SUBMIT = "case.submit"
AlertKind = Literal["case", "outbreak", "missing_report", "supply_low", "missing_confirmation",
                    "test_overdue", "release_overdue", "team_signoff_missing"]
AlertStatus = Literal["open", "acknowledged", "closed"]
AlertOutcome = Literal["isolated", "referred", "excluded", "other", "reported", "replenished",
                       "confirmed", "done", "withdrawn"]
# The countdowns of people under control (services/ledger): each passes unmet into an alert of
# its kind, through the alerts service's clock.
CountdownKind = Literal["test_overdue", "release_overdue", "team_signoff_missing"]


class AlertEvent(Event):
    """What every alert event says: the alert, where it is, who must act, and by when.

    Subject `alert.<change>.<county>.<town>.<village>` of the alert's node, so that a deployment
    routes one area's alerts; `recipients` names who must be told (village committee, CDC,
    education authority...). `seq` numbers an alert's changes from 1 (opened), which makes the
    message id deterministic: a change published twice is dropped by the stream."""

    change: str
    alert_id: UUID
    seq: int = Field(ge=1)
    kind: AlertKind
    node: str
    unit: str | None = None
    unit_type: str | None = None
    recipients: list[str]
    level: str = Field(description="the level now responsible: village, town, county...")
    responsible: str = Field(description="the node now responsible")
    status: AlertStatus
    deadline: datetime
    late: bool
    at: datetime
    actor: str = Field(description="the operator, or `system` for the clock")
    reason: str | None = None

    @property
    def subject(self) -> str:
        return f"alert.{self.change}.{subject_tokens(self.node)}"

    @property
    def msg_id(self) -> str:
        return f"alert:{self.alert_id}:{self.seq}"


class AlertOpened(AlertEvent):
    change: Literal["opened"] = "opened"
    case_id: UUID | None = None
    case_kind: Literal["fever", "ili"] | None = None
    started_at: datetime = Field(description="when the clock started: found-time, cutoff...")
    details: dict = {}


class AlertWarned(AlertEvent):
    change: Literal["warned"] = "warned"
    minutes_left: int


class AlertAcknowledged(AlertEvent):
    change: Literal["acknowledged"] = "acknowledged"


class AlertEscalated(AlertEvent):
    change: Literal["escalated"] = "escalated"
    from_node: str
    step: int = Field(ge=1, description="1: the level above, 2: the one above that...")


class AlertUnitsExempted(AlertEvent):
    """Units of a missing-report alert taken off it by a calendar declared after its cutoff:
    no longer expected that day, so no longer missing. The alert's status does not change
    (it closes, outcome `withdrawn`, once no unit is left missing)."""

    change: Literal["units_exempted"] = "units_exempted"
    units: list[str]
    exemption_id: int


class AlertClosed(AlertEvent):
    change: Literal["closed"] = "closed"
    outcome: AlertOutcome
    note: str | None = None


# Any alert event; `change` tells them apart (pydantic.TypeAdapter(AlertChanged) reads one).
AlertChanged = (AlertOpened | AlertWarned | AlertAcknowledged | AlertEscalated
                | AlertUnitsExempted | AlertClosed)


class CountdownEvent(Event):
    """A countdown of the ledger of people under control (一人一案): a test due on a day, a
    phase's planned release, the 包保 team's sign-off of a day. Only the pseudonym and the
    category travel: names and contacts never leave the ledger. Subject
    `control.<due|settled>.<county>.<town>.<village>`; `seq` numbers the announcements of one
    key, so a replay is dropped and an older one never wins."""

    key: str = Field(description="test:<person>:<day>, release:<person>:<day>, signoff:…")
    kind: CountdownKind
    group: str = Field(description="countdowns of one group pass into one alert (a village's "
                                   "sign-offs of a day)")
    node: str = Field(description="the person's village")
    pseudonym: str
    category: str
    day: date
    seq: int = Field(ge=1)
    at: datetime

    @property
    def subject(self) -> str:
        return f"control.{self.change}.{subject_tokens(self.node)}"

    @property
    def msg_id(self) -> str:
        return f"control:{self.key}:{self.seq}"


class CountdownDue(CountdownEvent):
    """Due by `due_at` (the end of its day): the alerts service opens an alert of `kind` once
    that instant has passed and no `CountdownSettled` came."""

    change: Literal["due"] = "due"
    due_at: datetime
    details: dict = {}


class CountdownSettled(CountdownEvent):
    """Met (the test, release or sign-off was recorded, even late: its alert closes), or
    withdrawn (the file no longer holds it: closed early, say)."""

    change: Literal["settled"] = "settled"
    outcome: Literal["done", "withdrawn"]


CountdownChanged = CountdownDue | CountdownSettled


DeliveryOutcomeKind = Literal["sent", "delivered", "failed"]


class DeliveryOutcome(Event):
    """What became of one notification about an alert: notify tells the alerts service, which
    adds it to the alert's history ("短信已送达 13:30 张某"). Published by notify through its
    outbox on `notify.delivery.<outcome>.<county>.<town>.<village>` of the alert's node.

    It carries the person's masked name only (surname + 某): never a phone number, an e-mail
    address, a robot's webhook or a full name. `sent` means the channel took the message (SMTP
    250, a robot's errcode 0, the SMS gateway's 2xx); `delivered` that a receipt said it reached
    the phone; `failed` that it was given up, with the reason."""

    delivery_id: int
    alert_id: UUID
    node: str = Field(description="the alert's node (the subject's hierarchy)")
    step: str = Field(description="what it told of: the alert's change (opened, warned, "
                                  "escalated…) or `digest`")
    channel: Literal["sms", "email", "wecom", "dingtalk", "none"]
    outcome: DeliveryOutcomeKind
    at: datetime
    person: str = Field(max_length=20, description="the person told, masked: 张某")
    role: str = Field(description="why they were told: on_duty, leader, unit_in_charge…")
    reason: str | None = Field(default=None, description="why it failed (never an address)")

    @property
    def subject(self) -> str:
        return f"notify.delivery.{self.outcome}.{subject_tokens(self.node)}"

    @property
    def msg_id(self) -> str:
        return f"delivery:{self.delivery_id}:{self.alert_id}:{self.outcome}"
SignoffAction = Literal["sent_back", "cleared", "confirmed", "reopened"]


class SignoffChanged(Event):
    """逐级审核上报: a report sent back (退回) to its unit with a reason, the send-back cleared by
    the unit's correction, a node's day confirmed (确认上报: its figures frozen), or a
    confirmation reopened by a report that changed the figures after it.

    Subject `signoff.<action>.<county>.<town>.<village>` of the node concerned (the unit's node
    for a send-back); `entry` is the signoff service's audit entry, which orders the changes and
    makes the message id."""

    action: SignoffAction
    entry: int = Field(ge=1)
    node: str
    day: date
    unit: str | None = None
    revision: int | None = Field(default=None, description="sent back, or that cleared / reopened")
    sendback_id: UUID | None = None
    confirmation_id: UUID | None = None
    version: int | None = Field(default=None, description="a node-day's confirmations from 1")
    reason: str | None = None
    actor: str
    at: datetime
    figures: dict[str, int | float] | None = Field(
        default=None, description="confirmed: the figures frozen")
    difference: dict[str, int | float] | None = Field(
        default=None, description="reopened: the live figures minus the confirmed ones")

    @property
    def subject(self) -> str:
        return f"signoff.{self.action}.{subject_tokens(self.node)}"

    @property
    def msg_id(self) -> str:
        return f"signoff:{self.entry}"
