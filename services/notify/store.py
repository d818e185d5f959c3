"""Notify's tables (schema `notify`) and what it reads of the registry: SQL only, no rules.
Every function runs in the caller's transaction; the caller commits."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import String

from services.notify.deliveries import NOBODY, Planned
from services.notify.models import NotifyOutboxRow, deliveries
from services.notify.staff import Directory, Person, Shift, masked
from shared.contracts import DeliveryOutcome
from shared.registry.placement import placement_on

_PEOPLE = ("SELECT code, name, node, phone, email, chat_kind, chat_webhook, chat_secret "
           "FROM notify.people")


def _codes(name: str):
    return bindparam(name, type_=ARRAY(String))


# ---------------------------------------------------------------- the registry, read only


async def known_nodes(session: AsyncSession, codes: Iterable[str]) -> set[str]:
    rows = await session.execute(
        text("SELECT code FROM registry.nodes WHERE code = ANY(:codes)")
        .bindparams(_codes("codes")), {"codes": sorted(set(codes))})
    return {code for (code,) in rows}


async def unit_nodes(session: AsyncSession, units: Iterable[str], day: date) -> dict[str, str]:
    """The node each known unit is placed at on `day` (the registry's placement rule)."""
    rows = await session.execute(text(
        f"SELECT unit_code, node_code FROM {placement_on('CAST(:day AS date)')} "
        "WHERE unit_code = ANY(:units)").bindparams(_codes("units")),
        {"units": sorted(set(units)), "day": day})
    return dict(rows.all())


async def names(session: AsyncSession, codes: Iterable[str]) -> dict[str, str]:
    """Names of nodes and units by code."""
    wanted = sorted(set(codes))
    rows = await session.execute(text(
        "SELECT code, name FROM registry.nodes WHERE code = ANY(:codes) "
        "UNION ALL SELECT code, name FROM registry.units WHERE code = ANY(:codes)")
        .bindparams(_codes("codes")), {"codes": wanted})
    return dict(rows.all())


# ---------------------------------------------------------------- staff


async def people(session: AsyncSession, codes: Iterable[str]) -> dict[str, Person]:
    rows = await session.execute(text(f"{_PEOPLE} WHERE code = ANY(:codes)")
                                 .bindparams(_codes("codes")), {"codes": sorted(set(codes))})
    return {row.code: Person(*row) for row in rows}


async def people_within(session: AsyncSession, node: str) -> list[Person]:
    rows = await session.execute(text(f"{_PEOPLE} WHERE node LIKE :prefix ORDER BY node, code"),
                                 {"prefix": node + "%"})
    return [Person(*row) for row in rows]


async def contacts_within(session: AsyncSession, node: str) -> list[tuple[str, str, str, str]]:
    """(scope, role, node, person) of every contact whose scope lies in the subtree."""
    rows = await session.execute(text(
        "SELECT scope, role, node, person FROM notify.contacts WHERE node LIKE :prefix "
        "ORDER BY node, scope, role"), {"prefix": node + "%"})
    return [tuple(row) for row in rows]  # type: ignore[misc]


async def roster(session: AsyncSession, node: str, day: date) -> list[Shift]:
    rows = await session.execute(text(
        "SELECT node, day, person, role, starts, ends FROM notify.duty "
        "WHERE node = :node AND day = :day ORDER BY starts, role, person"),
        {"node": node, "day": day})
    return [Shift(*row) for row in rows]


async def upsert_people(session: AsyncSession, rows: Sequence[Person], now: datetime) -> None:
    if not rows:
        return
    await session.execute(text(
        "INSERT INTO notify.people (code, name, node, phone, email, chat_kind, chat_webhook, "
        "chat_secret, updated_at) VALUES (:code, :name, :node, :phone, :email, :chat_kind, "
        ":chat_webhook, :chat_secret, :now) ON CONFLICT (code) DO UPDATE SET "
        "name = excluded.name, node = excluded.node, phone = excluded.phone, "
        "email = excluded.email, chat_kind = excluded.chat_kind, "
        "chat_webhook = excluded.chat_webhook, chat_secret = excluded.chat_secret, "
        "updated_at = excluded.updated_at"),
        [{"code": p.code, "name": p.name, "node": p.node, "phone": p.phone, "email": p.email,
          "chat_kind": p.chat_kind, "chat_webhook": p.chat_webhook,
          "chat_secret": p.chat_secret, "now": now} for p in rows])


async def upsert_contacts(session: AsyncSession,
                          rows: Sequence[tuple[str, str, str, str]]) -> None:
    """(scope, role, node, person) rows; a scope's role names one person."""
    if not rows:
        return
    await session.execute(text(
        "INSERT INTO notify.contacts (scope, role, node, person) VALUES "
        "(:scope, :role, :node, :person) ON CONFLICT (scope, role) DO UPDATE SET "
        "node = excluded.node, person = excluded.person"),
        [{"scope": s, "role": r, "node": n, "person": p} for s, r, n, p in rows])


async def replace_rosters(session: AsyncSession, days: dict[tuple[str, date], list[Shift]]
                          ) -> None:
    """Each (node, day) given gets exactly the shifts given (none: an empty roster)."""
    for (node, day), shifts in sorted(days.items()):
        # Two operators putting the same day at once: the second replaces the first's, whole.
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                              {"key": f"notify.duty:{node}:{day.isoformat()}"})
        await session.execute(text("DELETE FROM notify.duty WHERE node = :node AND day = :day"),
                              {"node": node, "day": day})
        if shifts:
            await session.execute(text(
                "INSERT INTO notify.duty (node, day, person, role, starts, ends) VALUES "
                "(:node, :day, :person, :role, :starts, :ends)"),
                [{"node": s.node, "day": s.day, "person": s.person, "role": s.role,
                  "starts": s.starts, "ends": s.ends} for s in shifts])


async def directory(session: AsyncSession, node: str, unit: str | None, day: date
                    ) -> Directory:
    """The roster of `node` on `day`, its contacts and the unit's, and the people they name."""
    shifts = await roster(session, node, day)
    contacts = (await session.execute(text(
        "SELECT scope, role, person FROM notify.contacts WHERE scope = ANY(:scopes)")
        .bindparams(_codes("scopes")), {"scopes": [node, *([unit] if unit else [])]})).all()
    node_contacts = {role: person for scope, role, person in contacts if scope == node}
    unit_contacts = {role: person for scope, role, person in contacts if scope == unit}
    named = {s.person for s in shifts} | set(node_contacts.values()) | set(
        unit_contacts.values())
    return Directory(tuple(shifts), node_contacts, unit_contacts, await people(session, named))


# ---------------------------------------------------------------- alert events and deliveries


async def fresh(session: AsyncSession, events: Sequence[tuple[str, uuid.UUID, str]],
                now: datetime) -> set[str]:
    """Records (msg_id, alert_id, node) as applied; the message ids not applied before."""
    if not events:
        return set()
    rows = await session.execute(text(
        "INSERT INTO notify.applied_events (msg_id, alert_id, node, applied_at) "
        "SELECT m, a, n, :now FROM unnest(CAST(:msg_ids AS text[]), CAST(:alert_ids AS uuid[]), "
        "CAST(:nodes AS text[])) AS t(m, a, n) ON CONFLICT (msg_id) DO NOTHING "
        "RETURNING msg_id"),
        {"msg_ids": [m for m, _, _ in events], "alert_ids": [a for _, a, _ in events],
         "nodes": [n for _, _, n in events], "now": now})
    return {msg_id for (msg_id,) in rows}


async def keys_recorded(session: AsyncSession, keys: Sequence[str]) -> set[str]:
    """Of these keys, those some delivery has already (an edition taken before)."""
    rows = await session.execute(text(
        "SELECT DISTINCT key FROM notify.deliveries WHERE key = ANY(:keys)")
        .bindparams(_codes("keys")), {"keys": sorted(set(keys))})
    return {key for (key,) in rows}


def _rows(key: str, topic: str, alert_ids: list[uuid.UUID], title: str, body: str,
          planned: Sequence[Planned], now: datetime, items: list | None = None) -> list[dict]:
    return [{"key": key, "topic": topic, "alert_ids": alert_ids, "items": items,
             "person": p.person, "person_name": p.person_name, "role": p.role,
             "channel": p.channel, "title": title, "body": body,
             "status": "failed" if p.failed else "pending", "attempts": 0,
             "next_attempt_at": p.due, "created_at": now, "last_error": p.failed}
            for p in planned]


async def add_deliveries(session: AsyncSession, key: str, topic: str,
                         alert_id: uuid.UUID | None,
                         title: str, body: str, planned: Sequence[Planned], now: datetime
                         ) -> int:
    """Store planned deliveries; one that exists already (same key, person and channel) is
    kept as it is. The number added."""
    if not planned:
        return 0
    added = (await session.execute(
        pg_insert(deliveries).values(_rows(key, topic, [alert_id] if alert_id else [], title,
                                           body, planned, now))
        .on_conflict_do_nothing(constraint="uq_deliveries_once")
        .returning(deliveries.c.id, deliveries.c.status))).all()
    # Nobody could be told: that outcome is known now, and the alert's history says so.
    await publish_outcomes(session, [row.id for row in added if row.status == "failed"], now)
    return len(added)


async def add_to_digest(session: AsyncSession, key: str, alert_id: uuid.UUID, item: dict,
                        planned: Sequence[Planned], now: datetime) -> list[tuple[int, list]]:
    """Add an alert's entry to the digest deliveries `key` names, creating them if need be;
    (id, entries) of each digest that took it. A digest already taken by a worker takes no
    more entries."""
    if not planned:
        return []
    statement = pg_insert(deliveries).values(
        _rows(key, "digest", [alert_id], "", "", planned, now, [item]))
    written = await session.execute(statement.on_conflict_do_update(
        constraint="uq_deliveries_once",
        set_={"alert_ids": deliveries.c.alert_ids.op("||")(statement.excluded.alert_ids),
              "items": deliveries.c["items"].op("||")(statement.excluded["items"])},
        where=(deliveries.c.status == "pending") & (deliveries.c.attempts == 0))
        .returning(deliveries.c.id, deliveries.c["items"], deliveries.c.status))
    rows = written.all()
    # A digest nobody can be told: failed now, and the alert's history says so.
    await publish_outcomes(session, [row.id for row in rows if row.status == "failed"], now)
    return [(row.id, row.items) for row in rows]


async def set_text(session: AsyncSession, delivery_id: int, title: str, body: str) -> None:
    await session.execute(text("UPDATE notify.deliveries SET title = :title, body = :body "
                               "WHERE id = :id"), {"id": delivery_id, "title": title,
                                                   "body": body})


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    subject: str  # the key of what it tells of
    person: str
    channel: str
    title: str
    body: str
    attempts: int  # including this one

    @property
    def key(self) -> str:
        """The delivery's own key, unique: receivers that deduplicate see it once."""
        return f"{self.subject}/{self.person}/{self.channel}"


async def claim_due(session: AsyncSession, now: datetime, lease_until: datetime, limit: int
                    ) -> list[Claimed]:
    """Takes up to `limit` pending deliveries that are due, for this worker until
    `lease_until`: another worker (a replica) skips them meanwhile, and takes them again only
    if this one dies before recording the outcome."""
    rows = await session.execute(text(
        "WITH due AS (SELECT id FROM notify.deliveries WHERE status = 'pending' "
        "AND next_attempt_at <= :now ORDER BY next_attempt_at, id LIMIT :limit "
        "FOR UPDATE SKIP LOCKED) "
        "UPDATE notify.deliveries d SET attempts = d.attempts + 1, next_attempt_at = :lease "
        "FROM due WHERE d.id = due.id "
        "RETURNING d.id, d.key, d.person, d.channel, d.title, d.body, d.attempts"),
        {"now": now, "lease": lease_until, "limit": limit})
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


async def record_outcome(session: AsyncSession, delivery: Claimed, now: datetime,
                         error: str | None, retry_at: datetime | None,
                         provider_id: str | None = None) -> bool:
    """Sent (error None; with the gateway's message id, for its receipt), failed for good
    (retry_at None), or due again at `retry_at`. Only while the delivery is still this
    worker's claim (pending, at the same attempt): whether it was. A final outcome goes into
    the outbox as a DeliveryOutcome event, in the same transaction."""
    status = "sent" if error is None else "pending" if retry_at else "failed"
    recorded = await session.execute(text(
        "UPDATE notify.deliveries SET status = :status, last_error = :error, "
        "sent_at = CASE WHEN :sent THEN CAST(:now AS timestamptz) END, "
        "provider_id = CAST(:provider_id AS text), "
        "next_attempt_at = COALESCE(CAST(:retry_at AS timestamptz), next_attempt_at) "
        "WHERE id = :id AND status = 'pending' AND attempts = :attempts"),
        {"status": status, "error": error, "sent": error is None, "now": now,
         "retry_at": retry_at, "id": delivery.id, "attempts": delivery.attempts,
         "provider_id": provider_id})
    if not recorded.rowcount:
        return False
    if status != "pending":
        await publish_outcomes(session, [delivery.id], now)
    return True


async def publish_outcomes(session: AsyncSession, delivery_ids: Sequence[int], now: datetime
                           ) -> int:
    """The DeliveryOutcome event of each delivery's recorded outcome (sent, delivered,
    failed) into notify's outbox, one per alert it tells of (a digest tells of several; a
    reminder of none); the relay publishes after commit. The person is masked; no address."""
    if not delivery_ids:
        return 0
    rows = (await session.execute(text(
        "SELECT d.id, a.alert_id, e.node, d.topic, d.channel, d.status, d.person, "
        "d.person_name, d.role, d.last_error, CASE d.status WHEN 'sent' THEN d.sent_at "
        "WHEN 'delivered' THEN d.delivered_at END AS at "
        "FROM notify.deliveries d CROSS JOIN LATERAL unnest(d.alert_ids) AS a(alert_id) "
        "JOIN LATERAL (SELECT node FROM notify.applied_events WHERE alert_id = a.alert_id "
        "LIMIT 1) e ON true "
        "WHERE d.id = ANY(CAST(:ids AS bigint[])) AND d.status IN ('sent', 'delivered', 'failed')"
        " ORDER BY d.id, a.alert_id"), {"ids": list(delivery_ids)})).all()
    events = [DeliveryOutcome(
        delivery_id=row.id, alert_id=row.alert_id, node=row.node, step=row.topic,
        channel=row.channel, outcome=row.status, at=row.at or now,
        person="无人" if row.person == NOBODY else masked(row.person_name), role=row.role,
        reason=row.last_error if row.status == "failed" else None) for row in rows]
    if events:
        await session.execute(NotifyOutboxRow.__table__.insert(), [
            {"subject": e.subject, "msg_id": e.msg_id, "payload": e.model_dump_json().encode(),
             "created_at": now} for e in events])
    return len(events)


async def apply_receipt(session: AsyncSession, channel: str, provider_id: str, status: str,
                        error: str | None, reported_at: datetime | None, now: datetime
                        ) -> tuple[str, int | None]:
    """A gateway's receipt for the message it named `provider_id`: the delivery it concerns
    becomes delivered (or failed, with the gateway's code) once, and the receipt is kept
    whatever it matched. (result, delivery id): `applied`, `duplicate` (its outcome is
    already known), or `unknown_message` (no delivery has that id; kept, not applied)."""
    rows = (await session.execute(text(
        "SELECT id, status FROM notify.deliveries WHERE channel = :channel "
        "AND provider_id = :provider_id ORDER BY id FOR UPDATE"),
        {"channel": channel, "provider_id": provider_id})).all()
    waiting = [row.id for row in rows if row.status == "sent"]
    delivery_id = rows[0].id if rows else None
    result = "unknown_message" if not rows else "applied" if waiting else "duplicate"
    if waiting:
        await session.execute(text(
            "UPDATE notify.deliveries SET status = :status, "
            "delivered_at = CASE WHEN :delivered THEN CAST(:at AS timestamptz) END, "
            "last_error = CASE WHEN :delivered THEN NULL ELSE CAST(:error AS text) END "
            "WHERE id = ANY(CAST(:ids AS bigint[]))"),
            {"status": "delivered" if status == "delivered" else "failed",
             "delivered": status == "delivered", "at": reported_at or now, "ids": waiting,
             "error": f"{channel}: not delivered ({error or 'no reason given'})"})
        await publish_outcomes(session, waiting, now)
    await session.execute(text(
        "INSERT INTO notify.receipts (channel, provider_id, status, error, reported_at, "
        "received_at, delivery_id, result) VALUES (:channel, :provider_id, :status, :error, "
        ":reported_at, :now, :delivery_id, :result)"),
        {"channel": channel, "provider_id": provider_id, "status": status, "error": error,
         "reported_at": reported_at, "now": now, "delivery_id": delivery_id, "result": result})
    return result, delivery_id


async def cancel_pending(session: AsyncSession, alert_id: uuid.UUID, reason: str) -> int:
    """What still waits to tell of one alert (a digest tells of others too: it goes)."""
    cancelled = await session.execute(text(
        "UPDATE notify.deliveries SET status = 'cancelled', last_error = :reason "
        "WHERE status = 'pending' AND alert_ids = ARRAY[CAST(:id AS uuid)] AND topic <> 'digest'"),
        {"id": alert_id, "reason": reason})
    return cancelled.rowcount or 0


async def alert_node(session: AsyncSession, alert_id: uuid.UUID) -> str | None:
    """The node of an alert notify has taken events of; None for one it has not."""
    return await session.scalar(text(
        "SELECT node FROM notify.applied_events WHERE alert_id = :id LIMIT 1"), {"id": alert_id})


async def deliveries_of(session: AsyncSession, alert_id: uuid.UUID) -> list:
    rows = await session.execute(text(
        "SELECT id, topic, person, person_name, role, channel, status, attempts, created_at, "
        "sent_at, delivered_at, last_error, next_attempt_at FROM notify.deliveries "
        "WHERE alert_ids @> ARRAY[CAST(:id AS uuid)] ORDER BY id"), {"id": alert_id})
    return list(rows.mappings())


async def alert_nodes(session: AsyncSession, alert_ids: Sequence[uuid.UUID]
                      ) -> dict[uuid.UUID, str]:
    """`alert_node` for many alerts at once: those notify has not taken events of are absent."""
    rows = await session.execute(text(
        "SELECT DISTINCT ON (alert_id) alert_id, node FROM notify.applied_events "
        "WHERE alert_id = ANY(CAST(:ids AS uuid[]))"), {"ids": list(alert_ids)})
    return dict(rows.all())


async def deliveries_of_many(session: AsyncSession, alert_ids: Sequence[uuid.UUID]
                             ) -> dict[uuid.UUID, list]:
    """`deliveries_of` for many alerts in one query; a digest is listed under each it tells of."""
    rows = await session.execute(text(
        "SELECT a.alert_id, d.id, d.topic, d.person, d.person_name, d.role, d.channel, "
        "d.status, d.attempts, d.created_at, d.sent_at, d.delivered_at, d.last_error, "
        "d.next_attempt_at "
        "FROM notify.deliveries d CROSS JOIN LATERAL unnest(d.alert_ids) AS a(alert_id) "
        "WHERE d.alert_ids && CAST(:ids AS uuid[]) AND a.alert_id = ANY(CAST(:ids AS uuid[])) "
        "ORDER BY d.id"), {"ids": list(alert_ids)})
    found: dict[uuid.UUID, list] = {alert_id: [] for alert_id in alert_ids}
    for row in rows.mappings():
        found[row["alert_id"]].append({k: v for k, v in row.items() if k != "alert_id"})
    return found


async def pending_by_channel(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(text(
        "SELECT channel, count(*) FROM notify.deliveries WHERE status = 'pending' "
        "GROUP BY channel"))
    return dict(rows.all())



# ---------------------------------------------------------------- reminders


async def record_reported(session: AsyncSession, unit_days: set[tuple[str, date]]) -> None:
    if not unit_days:
        return
    rows = sorted(unit_days)
    await session.execute(text(
        "INSERT INTO notify.reported (unit, day) SELECT * FROM "
        "unnest(CAST(:units AS text[]), CAST(:days AS date[])) ON CONFLICT DO NOTHING"),
        {"units": [u for u, _ in rows], "days": [d for _, d in rows]})


async def reported_on(session: AsyncSession, day: date, units: Iterable[str]) -> set[str]:
    rows = await session.execute(text(
        "SELECT unit FROM notify.reported WHERE day = :day AND unit = ANY(:units)")
        .bindparams(_codes("units")), {"day": day, "units": sorted(units)})
    return {unit for (unit,) in rows}


async def claim_reminder_run(session: AsyncSession, day: date, cutoff: time, now: datetime
                             ) -> bool:
    """True for the one caller that makes the reminders of this day's cutoff."""
    claimed = await session.execute(text(
        "INSERT INTO notify.reminder_runs (day, cutoff, ran_at, reminded) "
        "VALUES (:day, :cutoff, :now, 0) ON CONFLICT DO NOTHING RETURNING day"),
        {"day": day, "cutoff": cutoff, "now": now})
    return claimed.first() is not None


async def finish_reminder_run(session: AsyncSession, day: date, cutoff: time, reminded: int
                              ) -> None:
    await session.execute(text(
        "UPDATE notify.reminder_runs SET reminded = :n WHERE day = :day AND cutoff = :cutoff"),
        {"n": reminded, "day": day, "cutoff": cutoff})


async def contacts_of(session: AsyncSession, scopes: Sequence[str]
                      ) -> dict[str, dict[str, str]]:
    """scope -> contact role -> person, for many units or nodes at once."""
    rows = await session.execute(text(
        "SELECT scope, role, person FROM notify.contacts WHERE scope = ANY(:scopes)")
        .bindparams(_codes("scopes")), {"scopes": list(scopes)})
    out: dict[str, dict[str, str]] = {}
    for scope, role, person in rows:
        out.setdefault(scope, {})[role] = person
    return out
