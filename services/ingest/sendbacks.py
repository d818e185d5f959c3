"""The send-backs (退回) of units' reports, copied from the signoff service's events so that a
unit reads why its report went back on its own token (`GET /v1/units/{unit}/sendbacks`).
Signoff decides; ingest only keeps what it said. A send-back and its clearing may arrive in
either order and more than once: each writes only what it knows."""

from collections.abc import Sequence
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.contracts import SignoffChanged

SENT = text("""
    INSERT INTO ingest.sendbacks AS s (sendback_id, unit, day, revision, reason, sent_by,
                                       sent_at)
    VALUES (:id, :unit, :day, :revision, :reason, :actor, :at)
    ON CONFLICT (sendback_id) DO UPDATE
        SET revision = excluded.revision, reason = excluded.reason, sent_by = excluded.sent_by,
            sent_at = excluded.sent_at
""")
CLEARED = text("""
    INSERT INTO ingest.sendbacks AS s (sendback_id, unit, day, cleared_at, cleared_revision,
                                       cleared_by, cleared_reason)
    VALUES (:id, :unit, :day, :at, :revision, :actor, :reason)
    ON CONFLICT (sendback_id) DO UPDATE
        SET cleared_at = excluded.cleared_at, cleared_revision = excluded.cleared_revision,
            cleared_by = excluded.cleared_by, cleared_reason = excluded.cleared_reason
""")


async def take(session: AsyncSession, events: Sequence[SignoffChanged]) -> None:
    for e in events:
        if e.sendback_id is None or e.unit is None:
            continue
        statement = SENT if e.action == "sent_back" else CLEARED if e.action == "cleared" \
            else None
        if statement is not None:
            await session.execute(statement, {
                "id": e.sendback_id, "unit": e.unit, "day": e.day, "revision": e.revision,
                "reason": e.reason, "actor": e.actor, "at": e.at})


async def of_unit(session: AsyncSession, unit: str, day: date | None = None) -> list[dict]:
    """A unit's send-backs, newest day first, those still open first."""
    rows = await session.execute(text(
        "SELECT sendback_id, unit, day, revision, reason, sent_by, sent_at, cleared_at, "
        "cleared_revision, cleared_by, cleared_reason FROM ingest.sendbacks "
        "WHERE unit = :unit AND (CAST(:day AS date) IS NULL OR day = :day) "
        "ORDER BY day DESC, cleared_at IS NOT NULL, sent_at DESC"), {"unit": unit, "day": day})
    return [dict(row._mapping) for row in rows.all()]
