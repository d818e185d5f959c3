"""An alert's lifecycle in the database: open → (warned, escalated) → acknowledged → closed.

Every change is one row of the alert's history and one event in the outbox, written in the
caller's transaction together with the change itself; the relay publishes after commit. The
caller commits. Changes made by the clock are taken on rows locked FOR UPDATE SKIP LOCKED, so
with several replicas exactly one takes each step, and a restart finds the clock where the
last commit left it.
"""

import math
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import clock
from services.alerts.models import AlertOutboxRow, AlertRow, TransitionRow
from shared import deadlines
from shared.auth import Principal
from shared.contracts import (
    AlertAcknowledged,
    AlertClosed,
    AlertEscalated,
    AlertEvent,
    AlertOpened,
    AlertWarned,
)
from shared.rules import Rules

SYSTEM = "system"
OPERATOR_OUTCOMES = ("isolated", "referred", "excluded", "other")


class AlertNotFound(Exception):
    pass


class OutsideSubtree(Exception):
    """An operator acts only on alerts of their own node's subtree."""


class WrongState(Exception):
    """The change does not follow the lifecycle from the alert's current status."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True, slots=True)
class NewAlert:
    key: str  # unique: opening the same thing twice opens it once
    kind: str  # case, outbreak, missing_report
    topic: str  # what the deadline rule is looked up by: fever, ili, outbreak, missing_report
    node: str
    day: date
    started_at: datetime  # when the clock starts: found-time, the cutoff, the threshold crossed
    received_at: datetime  # when the system learnt of it: late if at or after the deadline
    recipients: list[str]
    unit: str | None = None
    unit_type: str | None = None
    case_id: uuid.UUID | None = None
    case_kind: str | None = None
    late: bool = False  # already flagged late by the door
    details: dict = field(default_factory=dict)


class _Collected(list):
    """Stands in for the session while alerts are prepared in bulk: keeps the rows `_record`
    would add (transition, outbox), to be written in one go."""


def _base(row: AlertRow, at: datetime, actor: str, reason: str | None) -> dict:
    row.seq += 1
    return {"alert_id": row.alert_id, "seq": row.seq, "kind": row.kind, "node": row.node,
            "unit": row.unit, "unit_type": row.unit_type, "recipients": list(row.recipients),
            "level": clock.level_name(row.responsible), "responsible": row.responsible,
            "status": row.status, "deadline": row.deadline, "late": row.late, "at": at,
            "actor": actor, "reason": reason}


def _record(session: "AsyncSession | _Collected", event: AlertEvent, details: dict) -> None:
    transition = {"alert_id": event.alert_id, "seq": event.seq, "change": event.change,
                  "at": event.at, "actor": event.actor, "reason": event.reason,
                  "details": details}
    outbox = {"subject": event.subject, "msg_id": event.msg_id,
              "payload": event.model_dump_json().encode(), "created_at": event.at}
    if isinstance(session, _Collected):
        session.append((transition, outbox))
    else:
        session.add(TransitionRow(**transition))
        session.add(AlertOutboxRow(**outbox))


def _opening(new: NewAlert, rules: Rules, now: datetime) -> dict:
    """The row of a new alert, before any clock step."""
    deadline = clock.deadline_for(new.started_at, new.topic, new.unit_type, rules)
    return {
        "alert_id": uuid.uuid4(), "key": new.key, "kind": new.kind, "node": new.node,
        "unit": new.unit, "unit_type": new.unit_type, "case_id": new.case_id,
        "case_kind": new.case_kind, "recipients": new.recipients, "status": "open",
        "responsible": new.node, "day": new.day, "started_at": new.started_at,
        "deadline": deadline, "stage": 0, "next_at": clock.next_due(deadline, 0, rules),
        "late": new.late or deadlines.is_past(deadline, new.received_at), "seq": 0,
        "opened_at": now, "details": new.details}


def _opened(session, row: AlertRow, new: NewAlert, rules: Rules, now: datetime) -> None:
    """Record the opening, and take at once the steps of an alert that is late already."""
    event = AlertOpened(**_base(row, now, SYSTEM, "late" if row.late else None),
                        case_id=new.case_id, case_kind=new.case_kind,  # type: ignore[arg-type]
                        started_at=new.started_at, details=new.details)
    _record(session, event, {"started_at": new.started_at.isoformat(), **new.details})
    # A late alert is escalated at once, whatever the clock of this replica says.
    advance(session, row, max(now, row.deadline) if row.late else now, rules, actual=now)


async def open_alert(session: AsyncSession, new: NewAlert, rules: Rules,
                     now: datetime) -> AlertRow | None:
    """Open an alert, or nothing if one with the same key exists. A late one is escalated at
    once."""
    row = (await session.scalars(
        pg_insert(AlertRow).values(_opening(new, rules, now))
        .on_conflict_do_nothing(index_elements=["key"]).returning(AlertRow))).one_or_none()
    if row is None:
        return None
    _opened(session, row, new, rules, now)
    return row


async def open_alerts(session: AsyncSession, news: list[NewAlert], rules: Rules,
                      now: datetime) -> list[AlertRow]:
    """`open_alert` for many at once, in a few statements: a cutoff may find thousands of
    villages with units missing. Returns the alerts opened (rows not held by the session)."""
    prepared = []
    for new in news:
        row, records = AlertRow(**_opening(new, rules, now)), _Collected()
        _opened(records, row, new, rules, now)
        prepared.append((row, records))
    if not prepared:
        return []
    table = AlertRow.__table__
    opened = set((await session.execute(
        pg_insert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key),
        [{c.key: getattr(row, c.key) for c in table.columns} for row, _ in prepared]
    )).scalars())
    kept = [(row, records) for row, records in prepared if row.key in opened]
    for model, i in ((TransitionRow, 0), (AlertOutboxRow, 1)):
        rows = [record[i] for _, records in kept for record in records]
        if rows:
            await session.execute(model.__table__.insert(), rows)
    return [row for row, _ in kept]


def advance(session: AsyncSession, row: AlertRow, now: datetime, rules: Rules,
            actual: datetime | None = None) -> int:
    """Take the clock steps due at `now` on a locked open alert; returns how many were taken."""
    if row.status != "open":
        row.next_at = None
        return 0
    steps, stage = clock.due(row.deadline, row.stage, now, rules)
    at = actual or now
    for step in steps:
        if step.action == "warn":
            left = math.ceil((row.deadline - at).total_seconds() / 60)
            event = AlertWarned(**_base(row, at, SYSTEM, f"{left} minutes left"),
                                minutes_left=left)
            _record(session, event, {"minutes_left": left, "due_at": step.at.isoformat()})
        else:
            before = row.responsible
            row.responsible = clock.escalation_target(row.node, step.levels_up)
            reason = "late" if row.late and step.index == 1 else "not acknowledged in time"
            event = AlertEscalated(**_base(row, at, SYSTEM, reason), from_node=before,
                                   step=step.index)
            _record(session, event, {"from": before, "to": row.responsible,
                                     "level": clock.level_name(row.responsible),
                                     "due_at": step.at.isoformat()})
    row.stage = stage
    row.next_at = clock.next_due(row.deadline, stage, rules)
    return len(steps)


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> list[AlertRow]:
    """Open alerts whose clock must act, locked; rows another replica holds are skipped."""
    rows = await session.scalars(
        select(AlertRow).where(AlertRow.status == "open", AlertRow.next_at <= now)
        .order_by(AlertRow.next_at).limit(limit).with_for_update(skip_locked=True))
    return list(rows)


async def _locked(session: AsyncSession, alert_id: uuid.UUID, who: Principal | None
                  ) -> AlertRow:
    row = await session.get(AlertRow, alert_id, with_for_update=True)
    if row is None:
        raise AlertNotFound(alert_id)
    if who is not None and not who.may_see(row.node):
        raise OutsideSubtree(row.node)
    return row


async def acknowledge(session: AsyncSession, alert_id: uuid.UUID, who: Principal,
                      reason: str | None, now: datetime, rules: Rules) -> AlertRow:
    """An operator takes the alert: its clock stops. Steps already due are taken first, so
    the history says what happened before the operator acted."""
    row = await _locked(session, alert_id, who)
    advance(session, row, now, rules)
    if row.status != "open":
        raise WrongState(row.status)
    row.status, row.acknowledged_at, row.acknowledged_by, row.next_at = (
        "acknowledged", now, who.holder, None)
    _record(session, AlertAcknowledged(**_base(row, now, who.holder, reason)),
            {"credential": str(who.credential_id)})
    return row


async def close(session: AsyncSession, alert_id: uuid.UUID, who: Principal | None,
                outcome: str, note: str | None, now: datetime, rules: Rules) -> AlertRow:
    """Record what was done (isolated, referred to a fever clinic, excluded, other) and close.
    `who` None is the system (a missing-report alert whose units have all reported)."""
    row = await _locked(session, alert_id, who)
    advance(session, row, now, rules)
    return close_locked(session, row, who, outcome, note, now)


def close_locked(session: AsyncSession, row: AlertRow, who: Principal | None, outcome: str,
                 note: str | None, now: datetime) -> AlertRow:
    if row.status == "closed":
        raise WrongState(row.status)
    actor = who.holder if who else SYSTEM
    row.status, row.closed_at, row.closed_by, row.outcome, row.note, row.next_at = (
        "closed", now, actor, outcome, note, None)
    event = AlertClosed(**_base(row, now, actor, note), outcome=outcome,  # type: ignore[arg-type]
                        note=note)
    details = {"outcome": outcome}
    if who is not None:
        details["credential"] = str(who.credential_id)
    _record(session, event, details)
    return row


async def history(session: AsyncSession, alert_id: uuid.UUID) -> list[TransitionRow]:
    rows = await session.scalars(select(TransitionRow).where(TransitionRow.alert_id == alert_id)
                                 .order_by(TransitionRow.seq))
    return list(rows)


async def outbox_depth(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(AlertOutboxRow))).scalar_one()
