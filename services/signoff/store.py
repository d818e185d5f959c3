"""Signoff's tables (schema `signoff`): SQL only, no rules. Every function runs in the caller's
transaction; the caller commits."""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.signoff.models import SignoffOutboxRow
from services.signoff.review import Confirmation
from shared.contracts import ReportAccepted, SignoffChanged

# One lock per node-day: a confirmation and the reports that may touch it take turns, so a
# report either is in the snapshot or reopens it. Sorted by the caller: no deadlock.
LOCK_NODE_DAYS = text("""
    SELECT pg_advisory_xact_lock(k) FROM (
        SELECT DISTINCT hashtextextended('signoff:' || n, 0) AS k
        FROM unnest(CAST(:keys AS text[])) AS t(n)) keys
    ORDER BY k
""")
# Newer revisions only: a redelivery or an older revision arriving late changes nothing.
UPSERT_UNIT_DAYS = text("""
    INSERT INTO signoff.unit_days AS ud (unit, day, node, unit_type, revision, "values", zero,
                                        late, submitted_at, reporter, reason, note, actor)
    SELECT * FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS t(
        unit text, day date, node text, unit_type text, revision int, "values" jsonb,
        zero boolean, late boolean, submitted_at timestamptz, reporter text, reason text,
        note text, actor text)
    ON CONFLICT (unit, day) DO UPDATE
        SET node = excluded.node, unit_type = excluded.unit_type, revision = excluded.revision,
            "values" = excluded."values", zero = excluded.zero, late = excluded.late,
            submitted_at = excluded.submitted_at, reporter = excluded.reporter,
            reason = excluded.reason, note = excluded.note, actor = excluded.actor
        WHERE ud.revision < excluded.revision
    RETURNING unit, day, revision
""")


@dataclass(frozen=True, slots=True)
class UnitDay:
    unit: str
    day: date
    node: str
    unit_type: str
    revision: int
    values: dict
    zero: bool
    late: bool
    submitted_at: datetime
    reporter: str
    reason: str | None
    note: str | None
    actor: str | None


@dataclass(frozen=True, slots=True)
class Sendback:
    sendback_id: uuid.UUID
    unit: str
    day: date
    node: str
    revision: int
    reason: str
    sent_by: str
    sent_at: datetime
    cleared_at: datetime | None
    cleared_revision: int | None
    cleared_by: str | None
    cleared_reason: str | None


@dataclass(frozen=True, slots=True)
class Change:
    confirmation_id: uuid.UUID
    unit: str
    revision: int
    confirmed_revision: int | None
    kind: str
    reason: str | None
    actor: str | None
    at: datetime


async def one_snapshot(session: AsyncSession) -> None:
    """Every read of the session's transaction sees the same committed state: a view that read
    the figures before a correction committed and the confirmation after it would show a
    confirmation reopened with no difference. Called before the session's first statement."""
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


async def lock_node_days(session: AsyncSession, keys: Sequence[tuple[str, date]]) -> None:
    if keys:
        await session.execute(LOCK_NODE_DAYS, {
            "keys": sorted({f"{node}:{day.isoformat()}" for node, day in keys})})


async def record(session: AsyncSession, action: str, node: str, day: date, actor: str,
                 at: datetime, *, unit: str | None = None, revision: int | None = None,
                 reason: str | None = None, details: dict | None = None,
                 **event: object) -> SignoffChanged:
    """An audit entry and its event, in the outbox, in the caller's transaction."""
    entry = (await session.execute(text(
        "INSERT INTO signoff.audit (action, node, day, unit, revision, actor, at, reason, "
        "details) VALUES (:action, :node, :day, :unit, :revision, :actor, :at, :reason, "
        "CAST(:details AS jsonb)) RETURNING entry"), {
            "action": action, "node": node, "day": day, "unit": unit, "revision": revision,
            "actor": actor, "at": at, "reason": reason,
            "details": json.dumps(details or {}, ensure_ascii=False, default=str)})).scalar_one()
    changed = SignoffChanged(action=action, entry=entry, node=node, day=day,  # type: ignore[arg-type]
                             unit=unit, revision=revision, reason=reason, actor=actor, at=at,
                             **event)
    session.add(SignoffOutboxRow(subject=changed.subject, msg_id=changed.msg_id,
                                 payload=changed.model_dump_json().encode(), created_at=at))
    return changed


# ---------------------------------------------------------------- the reports as reviewed


async def take_reports(session: AsyncSession, events: Sequence[ReportAccepted]
                       ) -> set[tuple[str, date, int]]:
    """Store each unit-day's newest revision; (unit, day, revision) of those that were newer."""
    rows = [{"unit": e.unit, "day": e.day.isoformat(), "node": e.node, "unit_type": e.unit_type,
             "revision": e.revision, "values": e.values, "zero": e.zero, "late": e.late,
             "submitted_at": e.submitted_at.isoformat(), "reporter": e.reporter,
             "reason": e.reason, "note": e.note, "actor": e.actor}
            for e in sorted(events, key=lambda e: (e.unit, e.day))]
    done = await session.execute(UPSERT_UNIT_DAYS, {"rows": json.dumps(rows, ensure_ascii=False)})
    return {(u, d, r) for u, d, r in done.all()}


_UNIT_DAY = ('SELECT unit, day, node, unit_type, revision, "values", zero, late, submitted_at, '
             "reporter, reason, note, actor FROM signoff.unit_days")


async def unit_days_below(session: AsyncSession, node: str, day: date) -> list[UnitDay]:
    rows = await session.execute(text(
        f"{_UNIT_DAY} WHERE day = :day AND node LIKE :prefix ORDER BY node, unit"),
        {"day": day, "prefix": f"{node}%"})
    return [UnitDay(*row) for row in rows.all()]


async def unit_day(session: AsyncSession, unit: str, day: date, *,
                   for_update: bool = False) -> UnitDay | None:
    row = (await session.execute(text(
        f"{_UNIT_DAY} WHERE unit = :unit AND day = :day{' FOR UPDATE' if for_update else ''}"),
        {"unit": unit, "day": day})).one_or_none()
    return UnitDay(*row) if row else None


# ---------------------------------------------------------------- send-backs

_SENDBACK = ("SELECT sendback_id, unit, day, node, revision, reason, sent_by, sent_at, "
             "cleared_at, cleared_revision, cleared_by, cleared_reason FROM signoff.sendbacks")


async def add_sendback(session: AsyncSession, unit: UnitDay, reason: str, who: str,
                       credential: uuid.UUID, now: datetime) -> Sendback | None:
    """None when the unit-day already has one open."""
    sendback_id = uuid.uuid4()
    row = (await session.execute(text(
        "INSERT INTO signoff.sendbacks (sendback_id, unit, day, node, revision, reason, "
        "sent_by, credential, sent_at) VALUES (:id, :unit, :day, :node, :revision, :reason, "
        ":who, :credential, :now) ON CONFLICT DO NOTHING RETURNING sendback_id"), {
            "id": sendback_id, "unit": unit.unit, "day": unit.day, "node": unit.node,
            "revision": unit.revision, "reason": reason, "who": who, "credential": credential,
            "now": now})).one_or_none()
    if row is None:
        return None
    return Sendback(sendback_id, unit.unit, unit.day, unit.node, unit.revision, reason, who, now,
                    None, None, None, None)


async def open_sendback(session: AsyncSession, unit: str, day: date) -> Sendback | None:
    row = (await session.execute(text(
        f"{_SENDBACK} WHERE unit = :unit AND day = :day AND cleared_at IS NULL"),
        {"unit": unit, "day": day})).one_or_none()
    return Sendback(*row) if row else None


async def clear_sendbacks(session: AsyncSession, cleared: Sequence[ReportAccepted],
                          now: datetime) -> list[Sendback]:
    """The open send-backs of these unit-days that a newer revision answers, cleared."""
    if not cleared:
        return []
    rows = await session.execute(text("""
        UPDATE signoff.sendbacks s SET cleared_at = :now, cleared_revision = t.revision,
               cleared_by = t.actor, cleared_reason = t.reason
        FROM jsonb_to_recordset(CAST(:rows AS jsonb))
             AS t(unit text, day date, revision int, actor text, reason text)
        WHERE s.unit = t.unit AND s.day = t.day AND s.cleared_at IS NULL
          AND s.revision < t.revision
        RETURNING s.sendback_id, s.unit, s.day, s.node, s.revision, s.reason, s.sent_by,
                  s.sent_at, s.cleared_at, s.cleared_revision, s.cleared_by, s.cleared_reason
    """), {"now": now, "rows": json.dumps([
        {"unit": e.unit, "day": e.day.isoformat(), "revision": e.revision,
         "actor": e.actor or e.reporter, "reason": e.reason} for e in cleared],
        ensure_ascii=False)})
    return [Sendback(*row) for row in rows.all()]


async def sendbacks_below(session: AsyncSession, node: str, day: date,
                          only_open: bool = False) -> list[Sendback]:
    rows = await session.execute(text(
        f"{_SENDBACK} WHERE day = :day AND node LIKE :prefix"
        f"{' AND cleared_at IS NULL' if only_open else ''} ORDER BY sent_at, unit"),
        {"day": day, "prefix": f"{node}%"})
    return [Sendback(*row) for row in rows.all()]


async def sendbacks_of_unit(session: AsyncSession, unit: str) -> list[Sendback]:
    rows = await session.execute(text(
        f"{_SENDBACK} WHERE unit = :unit ORDER BY day DESC, sent_at DESC"), {"unit": unit})
    return [Sendback(*row) for row in rows.all()]


# ---------------------------------------------------------------- confirmations

_CONFIRMATION = ("SELECT DISTINCT ON (node) confirmation_id, node, version, figures, units, "
                 "confirmed_at, confirmed_by, reopened_at FROM signoff.confirmations")


async def current_confirmations(session: AsyncSession, nodes: Sequence[str], day: date
                                ) -> dict[str, tuple[uuid.UUID, Confirmation]]:
    """The latest confirmation of each node's day that has one."""
    rows = await session.execute(text(
        f"{_CONFIRMATION} WHERE day = :day AND node = ANY(CAST(:nodes AS text[])) "
        "ORDER BY node, version DESC"), {"day": day, "nodes": sorted(set(nodes))})
    return {node: (cid, Confirmation(node, version, figures, units, at, by, reopened))
            for cid, node, version, figures, units, at, by, reopened in rows.all()}


async def add_confirmation(session: AsyncSession, node: str, day: date, version: int,
                           figures: dict, units: dict[str, int], who: str,
                           credential: uuid.UUID, now: datetime) -> uuid.UUID:
    confirmation_id = uuid.uuid4()
    await session.execute(text(
        "INSERT INTO signoff.confirmations (confirmation_id, node, day, version, figures, "
        "units, reported, confirmed_at, confirmed_by, credential) VALUES (:id, :node, :day, "
        ":version, CAST(:figures AS jsonb), CAST(:units AS jsonb), :reported, :now, :who, "
        ":credential)"), {
            "id": confirmation_id, "node": node, "day": day, "version": version,
            "figures": json.dumps(figures), "units": json.dumps(units), "reported": len(units),
            "now": now, "who": who, "credential": credential})
    return confirmation_id


async def reopen(session: AsyncSession, confirmation_id: uuid.UUID, now: datetime) -> None:
    await session.execute(text(
        "UPDATE signoff.confirmations SET reopened_at = :now WHERE confirmation_id = :id "
        "AND reopened_at IS NULL"), {"id": confirmation_id, "now": now})


async def add_change(session: AsyncSession, confirmation_id: uuid.UUID, event: ReportAccepted,
                     confirmed_revision: int | None, kind: str, now: datetime) -> None:
    await session.execute(text(
        "INSERT INTO signoff.changes (confirmation_id, unit, revision, confirmed_revision, "
        "kind, reason, actor, at) VALUES (:cid, :unit, :revision, :held, :kind, :reason, "
        ":actor, :at)"), {
            "cid": confirmation_id, "unit": event.unit, "revision": event.revision,
            "held": confirmed_revision, "kind": kind, "reason": event.reason,
            "actor": event.actor or event.reporter, "at": now})


async def changes_of(session: AsyncSession, confirmation_ids: Sequence[uuid.UUID]
                     ) -> dict[uuid.UUID, list[Change]]:
    out: dict[uuid.UUID, list[Change]] = {cid: [] for cid in confirmation_ids}
    if not confirmation_ids:
        return out
    rows = await session.execute(text(
        "SELECT confirmation_id, unit, revision, confirmed_revision, kind, reason, actor, at "
        "FROM signoff.changes WHERE confirmation_id = ANY(CAST(:ids AS uuid[])) ORDER BY id"),
        {"ids": list(confirmation_ids)})
    for row in rows.all():
        out[row[0]].append(Change(*row))
    return out


async def audit(session: AsyncSession, node: str, day: date, limit: int = 1000,
                units: Sequence[str] | None = None) -> list[dict]:
    """The entries below a node on a day, in order; with `units`, only the entries of those."""
    of_units = "" if units is None else " AND unit = ANY(CAST(:units AS text[]))"
    rows = await session.execute(text(
        "SELECT entry, action, node, day, unit, revision, actor, at, reason, details "
        f"FROM signoff.audit WHERE day = :day AND node LIKE :prefix{of_units} "
        "ORDER BY entry LIMIT :limit"),
        {"day": day, "prefix": f"{node}%", "limit": limit,
         **({} if units is None else {"units": list(units)})})
    return [dict(row._mapping) for row in rows.all()]
