"""An alert's lifecycle as a pure state machine: open → (warned, escalated) → acknowledged →
closed (docs/architecture.md, "The path of a fever case").

Each function takes an alert's state and a command or the clock's time and returns what
changed: the new state, one history entry and one event per change. Nothing here reads or
writes a database or a broker; `services.alerts.repository` loads and locks the rows, calls
these functions, and writes what they return in the caller's transaction.

The rules it keeps: the stage only moves forward; a closed alert never changes; escalation
only goes up the hierarchy; an alert is acknowledged only while open, and closed only once.
"""

import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal

from services.alerts import clock
from shared import deadlines
from shared.contracts import (
    AlertAcknowledged,
    AlertClosed,
    AlertEscalated,
    AlertEvent,
    AlertOpened,
    AlertUnitsExempted,
    AlertWarned,
)
from shared.rules import Rules

SYSTEM = "system"
Status = Literal["open", "acknowledged", "closed"]


class WrongState(Exception):
    """The change does not follow the lifecycle from the alert's current status."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True, slots=True)
class NewAlert:
    """Open an alert: a case, an outbreak, units missing at a cutoff, or supplies below a stock
    level."""

    key: str  # unique: opening the same thing twice opens it once
    kind: str  # case, outbreak, missing_report, supply_low
    topic: str  # the deadline rule's key: fever, ili, outbreak, missing_report, supply_low
    node: str
    day: date
    started_at: datetime  # when the clock starts: found-time, the cutoff, the threshold crossed
    received_at: datetime  # when the system learnt of it: late if after the deadline
    recipients: list[str]
    unit: str | None = None
    unit_type: str | None = None
    case_id: uuid.UUID | None = None
    case_kind: str | None = None
    late: bool = False  # already flagged late by the door
    details: dict = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertState:
    """An alert as the lifecycle sees it; its fields are the columns of `alerts.alerts`.
    `stage` is how far along the clock's schedule it is, `next_at` when the clock must next act
    (None once acknowledged, closed, or at the end of the schedule)."""

    alert_id: uuid.UUID
    key: str
    kind: str
    node: str
    unit: str | None
    unit_type: str | None
    case_id: uuid.UUID | None
    case_kind: str | None
    recipients: tuple[str, ...]
    status: Status
    responsible: str
    day: date
    started_at: datetime
    deadline: datetime
    stage: int
    next_at: datetime | None
    late: bool
    seq: int
    opened_at: datetime
    details: dict
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    closed_at: datetime | None = None
    closed_by: str | None = None
    outcome: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of an alert's history: its event (the change, seq, who, when and why, as
    published) and what the history records beside it."""

    event: AlertEvent
    details: dict


@dataclass(frozen=True, slots=True)
class Changed:
    """What a command or a clock tick did: the state after it, and each change in order, as
    its history entry and the event to publish. No change: none."""

    state: AlertState
    history: tuple[Entry, ...] = ()

    @property
    def events(self) -> tuple[AlertEvent, ...]:
        return tuple(entry.event for entry in self.history)

    def then(self, other: "Changed") -> "Changed":
        return Changed(other.state, self.history + other.history)


def _change(state: AlertState, make: type[AlertEvent], at: datetime, actor: str,
            reason: str | None, recorded: dict, **extra: object) -> Changed:
    """`state` (already changed) with the next seq, its history entry (with what `recorded`
    says) and its event (with the `extra` fields of its kind)."""
    state = replace(state, seq=state.seq + 1)
    event = make(alert_id=state.alert_id, seq=state.seq, kind=state.kind,  # type: ignore[arg-type]
                 node=state.node, unit=state.unit, unit_type=state.unit_type,
                 recipients=list(state.recipients), level=clock.level_name(state.responsible),
                 responsible=state.responsible, status=state.status, deadline=state.deadline,
                 late=state.late, at=at, actor=actor, reason=reason, **extra)
    return Changed(state, (Entry(event, recorded),))


def open_alert(new: NewAlert, alert_id: uuid.UUID, rules: Rules, now: datetime) -> Changed:
    """A new alert: its deadline from the rules, late if it arrived after it. A late alert
    takes at once the steps its clock has passed, at least up to the case's arrival, whatever
    the clock of this replica says."""
    deadline = clock.deadline_for(new.started_at, new.topic, new.unit_type, rules)
    late = new.late or deadlines.is_past(deadline, new.received_at)
    state = AlertState(
        alert_id=alert_id, key=new.key, kind=new.kind, node=new.node, unit=new.unit,
        unit_type=new.unit_type, case_id=new.case_id, case_kind=new.case_kind,
        recipients=tuple(new.recipients), status="open", responsible=new.node, day=new.day,
        started_at=new.started_at, deadline=deadline, stage=0,
        next_at=clock.next_due(deadline, 0, rules), late=late, seq=0, opened_at=now,
        details=new.details)
    opened = _change(state, AlertOpened, now, SYSTEM, "late" if late else None,
                     {"started_at": new.started_at.isoformat(), **new.details},
                     case_id=new.case_id, case_kind=new.case_kind,
                     started_at=new.started_at, details=new.details)
    moment = max(now, new.received_at) if late else now
    return opened.then(tick(opened.state, moment, rules, actual=now))


def tick(state: AlertState, now: datetime, rules: Rules,
         actual: datetime | None = None) -> Changed:
    """The clock's steps due at `now` on an open alert (a step is due once its moment has
    passed, `deadlines.is_past`); `actual` is when they are recorded, if not `now`."""
    if state.status != "open":
        return Changed(state)
    steps, stage = clock.due(state.deadline, state.stage, now, rules)
    if not steps:
        return Changed(state)
    at = actual or now
    done = Changed(state)
    for step in steps:
        current = done.state
        if step.action == "warn":
            left = math.ceil((current.deadline - at).total_seconds() / 60)
            done = done.then(_change(current, AlertWarned, at, SYSTEM, f"{left} minutes left",
                                     {"minutes_left": left, "due_at": step.at.isoformat()},
                                     minutes_left=left))
        else:
            target = clock.escalation_target(current.node, step.levels_up)
            reason = ("late" if current.late and step.index == 1
                      else "not acknowledged in time")
            done = done.then(_change(
                replace(current, responsible=target), AlertEscalated, at, SYSTEM, reason,
                {"from": current.responsible, "to": target, "level": clock.level_name(target),
                 "due_at": step.at.isoformat()},
                from_node=current.responsible, step=step.index))
    final = replace(done.state, stage=stage, next_at=clock.next_due(state.deadline, stage, rules))
    return Changed(final, done.history)


def acknowledge(state: AlertState, actor: str, credential: uuid.UUID, reason: str | None,
                now: datetime, rules: Rules) -> Changed:
    """An operator takes the alert: its clock stops. Steps already due are taken first, so the
    history says what happened before the operator acted. Only an open alert is taken."""
    due = tick(state, now, rules)
    if due.state.status != "open":
        raise WrongState(due.state.status)
    taken = replace(due.state, status="acknowledged", acknowledged_at=now,
                    acknowledged_by=actor, next_at=None)
    return due.then(_change(taken, AlertAcknowledged, now, actor, reason,
                            {"credential": str(credential)}))


def exempt_units(state: AlertState, units: list[str], exemption_id: int, now: datetime,
                 rules: Rules) -> Changed:
    """Units of a missing-report alert taken off it by a calendar declared after its cutoff
    (the system's change, the calendar its reason). Steps already due are taken first; the
    status does not change, and a closed alert never changes."""
    if state.status == "closed" or not units:
        return Changed(state)
    due = tick(state, now, rules)
    return due.then(_change(due.state, AlertUnitsExempted, now, SYSTEM,
                            exempted_reason(exemption_id),
                            {"units": units, "exemption_id": exemption_id},
                            units=units, exemption_id=exemption_id))


def exempted_reason(exemption_id: int) -> str:
    return f"exempted by calendar {exemption_id}"


def close(state: AlertState, actor: str | None, credential: uuid.UUID | None, outcome: str,
          note: str | None, now: datetime, rules: Rules) -> Changed:
    """Record what was done (isolated, referred to a fever clinic, excluded, other; `reported`
    when the system closes a missing-report alert whose units have all reported, `withdrawn`
    one whose last missing units a calendar exempted, `replenished` a supply alert whose units
    are all back at the stock level) and close.
    `actor` None is the system. Steps already due are taken first; a closed alert stays
    closed."""
    due = tick(state, now, rules)
    if due.state.status == "closed":
        raise WrongState("closed")
    who = actor or SYSTEM
    closed = replace(due.state, status="closed", closed_at=now, closed_by=who, outcome=outcome,
                     note=note, next_at=None)
    details = {"outcome": outcome}
    if credential is not None:
        details["credential"] = str(credential)
    return due.then(_change(closed, AlertClosed, now, who, note, details, outcome=outcome,
                            note=note))
