"""Alerts in the database: loads and locks the rows, asks the lifecycle
(`services.alerts.machine`) what changes, and writes the new state, its history rows and its
outbox rows in the caller's transaction; the relay publishes after commit. The caller commits.

Rows the clock acts on are taken FOR UPDATE SKIP LOCKED, so with several replicas exactly one
takes each step, and a restart finds the clock where the last commit left it.
"""

import uuid
from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.alerts import machine
from services.alerts.machine import AlertState, Changed, NewAlert
from services.alerts.models import AlertOutboxRow, AlertRow, ToldRow, TransitionRow
from services.alerts.queries import is_past_sql, sector_allows
from shared.auth import Principal
from shared.contracts import DeliveryOutcome
from shared.rules import Rules

STATE_FIELDS = tuple(f.name for f in fields(AlertState))


class AlertNotFound(Exception):
    pass


class OutsideArea(Exception):
    """An operator acts only on alerts of their own node's subtree."""


class OutsideSector(Exception):
    """A sector operator acts only on alerts that concern its own sector's units alone."""


def state_of(row: AlertRow) -> AlertState:
    values = {name: getattr(row, name) for name in STATE_FIELDS}
    return AlertState(**{**values, "recipients": tuple(row.recipients)})


def _row_values(state: AlertState) -> dict:
    # Field by field, not dataclasses.asdict: asdict deep-copies `details`, which for a missing
    # report alert lists every unit, and a cutoff opens thousands of them at once.
    return {**{name: getattr(state, name) for name in STATE_FIELDS},
            "recipients": list(state.recipients)}


async def _record(session: AsyncSession, changes: Sequence[Changed]) -> None:
    """The history rows and outbox rows of `changes`, in one statement each."""
    entries = [entry for c in changes for entry in c.history]
    if not entries:
        return
    history = [{"alert_id": e.event.alert_id, "seq": e.event.seq, "change": e.event.change,
                "at": e.event.at, "actor": e.event.actor, "reason": e.event.reason,
                "details": e.details} for e in entries]
    outbox = [{"subject": e.event.subject, "msg_id": e.event.msg_id,
               "payload": e.event.model_dump_json().encode(), "created_at": e.event.at}
              for e in entries]
    await session.execute(TransitionRow.__table__.insert(), history)
    await session.execute(AlertOutboxRow.__table__.insert(), outbox)


async def _apply(session: AsyncSession, rows: Sequence[AlertRow],
                 changes: Sequence[Changed]) -> None:
    """Write each changed state onto its locked row, and record the changes."""
    for row, changed in zip(rows, changes, strict=True):
        if changed.history:
            for name, value in _row_values(changed.state).items():
                if getattr(row, name) != value:
                    setattr(row, name, value)
    await _record(session, changes)


async def open_alerts(session: AsyncSession, news: Sequence[NewAlert], rules: Rules,
                      now: datetime) -> list[AlertState]:
    """Open alerts, in a few statements whatever their number (a cutoff may find thousands of
    villages with units missing); one whose key exists already is not opened again. A late
    alert takes its due steps at once. Returns the alerts opened."""
    by_key: dict[str, Changed] = {}
    for new in news:
        if new.key not in by_key:
            by_key[new.key] = machine.open_alert(new, uuid.uuid4(), rules, now)
    if not by_key:
        return []
    table = AlertRow.__table__
    opened = set((await session.execute(
        pg_insert(table).on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key),
        [_row_values(c.state) for c in by_key.values()])).scalars())
    kept = [c for key, c in by_key.items() if key in opened]
    await _record(session, kept)
    return [c.state for c in kept]


async def open_alert(session: AsyncSession, new: NewAlert, rules: Rules,
                     now: datetime) -> AlertState | None:
    """Open one alert, or nothing if one with the same key exists."""
    opened = await open_alerts(session, [new], rules, now)
    return opened[0] if opened else None


async def claim_due(session: AsyncSession, now: datetime, limit: int) -> list[AlertRow]:
    """Open alerts whose clock must act (its next step's moment has passed), locked; rows
    another replica holds are skipped."""
    rows = await session.scalars(
        select(AlertRow).where(AlertRow.status == "open", is_past_sql(AlertRow.next_at, now))
        .order_by(AlertRow.next_at).limit(limit).with_for_update(skip_locked=True))
    return list(rows)


async def advance(session: AsyncSession, rows: Sequence[AlertRow], now: datetime,
                  rules: Rules) -> int:
    """Take the clock steps due at `now` on locked alerts; returns how many were taken."""
    changes = [machine.tick(state_of(row), now, rules) for row in rows]
    await _apply(session, rows, changes)
    return sum(len(c.history) for c in changes)


async def _locked(session: AsyncSession, alert_id: uuid.UUID, who: Principal | None
                  ) -> AlertRow:
    row = await session.get(AlertRow, alert_id, with_for_update=True)
    if row is None:
        raise AlertNotFound(alert_id)
    if who is not None and not who.may_see(row.node):
        raise OutsideArea(row.node)
    if who is not None and not await sector_allows(session, alert_id, who.sector, acting=True):
        raise OutsideSector(alert_id)
    return row


async def acknowledge(session: AsyncSession, alert_id: uuid.UUID, who: Principal,
                      reason: str | None, now: datetime, rules: Rules) -> AlertState:
    """An operator of the alert's area takes it (`machine.acknowledge`)."""
    row = await _locked(session, alert_id, who)
    changed = machine.acknowledge(state_of(row), who.holder, who.credential_id, reason, now,
                                  rules)
    await _apply(session, [row], [changed])
    return changed.state


async def close(session: AsyncSession, alert_id: uuid.UUID, who: Principal, outcome: str,
                note: str | None, now: datetime, rules: Rules) -> AlertState:
    """An operator of the alert's area records what was done and closes it (`machine.close`)."""
    row = await _locked(session, alert_id, who)
    changed = machine.close(state_of(row), who.holder, who.credential_id, outcome, note, now,
                            rules)
    await _apply(session, [row], [changed])
    return changed.state


async def close_resolved(session: AsyncSession, rows: Sequence[AlertRow], now: datetime,
                         rules: Rules, outcome: str = "reported",
                         note: str = "all listed units have reported") -> int:
    """The system closes locked alerts resolved by reports (a missing-report alert whose units
    have all reported: `reported`; supplies back at their stock level: `replenished`) or by a
    calendar (a missing-report alert whose last missing units it exempted: `withdrawn`); those
    closed already are left as they are. Returns how many were closed."""
    rows = [row for row in rows if row.status != "closed"]
    changes = [machine.close(state_of(row), None, None, outcome, note, now, rules)
               for row in rows]
    await _apply(session, rows, changes)
    return len(changes)


async def exempt_units(session: AsyncSession, rows: Sequence[AlertRow],
                       taken: dict[uuid.UUID, list[tuple[int, list[str]]]], now: datetime,
                       rules: Rules) -> None:
    """Record on locked missing-report alerts the units calendars took off them (alert →
    [(calendar, units)], each a history entry and an event)."""
    changes = []
    for row in rows:
        changed = Changed(state_of(row))
        for exemption_id, units in taken.get(row.alert_id, []):
            changed = changed.then(machine.exempt_units(changed.state, units, exemption_id,
                                                        now, rules))
        changes.append(changed)
    await _apply(session, rows, changes)


async def history(session: AsyncSession, alert_id: uuid.UUID) -> list[TransitionRow]:
    rows = await session.scalars(select(TransitionRow).where(TransitionRow.alert_id == alert_id)
                                 .order_by(TransitionRow.seq))
    return list(rows)



async def record_told(session: AsyncSession, events: Sequence[DeliveryOutcome],
                      now: datetime) -> int:
    """Add what notify says became of its deliveries to the alerts' histories, each event once
    (by its message id); an event about an alert this database does not hold is passed over.
    Nothing of the alert itself changes. The number added."""
    if not events:
        return 0
    known = set(await session.scalars(select(AlertRow.alert_id).where(
        AlertRow.alert_id.in_({e.alert_id for e in events}))))
    rows = list({e.msg_id: {
        "msg_id": e.msg_id, "alert_id": e.alert_id, "delivery_id": e.delivery_id,
        "step": e.step, "channel": e.channel, "outcome": e.outcome, "at": e.at,
        "person": e.person, "role": e.role, "reason": e.reason, "received_at": now}
        for e in events if e.alert_id in known}.values())
    if not rows:
        return 0
    added = await session.execute(pg_insert(ToldRow).values(rows).on_conflict_do_nothing(
        index_elements=["msg_id"]).returning(ToldRow.msg_id))
    return len(added.all())


async def told(session: AsyncSession, alert_id: uuid.UUID) -> list[ToldRow]:
    rows = await session.scalars(select(ToldRow).where(ToldRow.alert_id == alert_id)
                                 .order_by(ToldRow.at, ToldRow.msg_id))
    return list(rows)
