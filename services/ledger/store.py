"""The ledger in the database: records a file's facts, loads them back as `plan.Facts`, keeps
the countdowns announced in step with what the plan says (each change an event in the outbox,
in the caller's transaction) and reads the register. The caller commits."""

import secrets
import uuid
from collections import defaultdict
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import plan
from services.ledger.intake import IDENTITY
from services.ledger.models import (
    LedgerOutboxRow,
    corrections,
    countdowns,
    identities,
    people,
    phase_ends,
    signoffs,
    stock_dirty,
    stock_sent,
    team,
    tests,
)
from services.ledger.regimes import Regimes
from services.ledger.schemas import Registration
from shared.contracts import CountdownDue, CountdownEvent, CountdownSettled
from shared.registry import store as registry
from shared.registry.reference import Reference

UNIT_TYPE = "control_ledger"  # each village's ledger unit: its headcounts' report


def new_pseudonym() -> str:
    """What every level above the village and every event knows a person by."""
    return "GK-" + secrets.token_hex(4).upper()


async def add_person(session: AsyncSession, r: Registration, actor: str, now: datetime
                     ) -> uuid.UUID:
    person_id = uuid.uuid4()
    await session.execute(people.insert().values(
        person_id=person_id, pseudonym=new_pseudonym(), village=r.village, category=r.category,
        regime=r.regime, site=(r.site or "").strip() or None, start_day=r.start_day,
        outcome=None, registered_at=now, registered_by=actor))
    await session.execute(identities.insert().values(person_id=person_id, name=r.name.strip(),
                                                     contact=r.contact))
    if r.team:
        await session.execute(team.insert(), [
            {"person_id": person_id, "seat": i, "role": m.role, "staff": m.staff.strip()}
            for i, m in enumerate(r.team, 1)])
    return person_id


async def set_team(session: AsyncSession, person_id: uuid.UUID, members: list) -> None:
    """The team anew, in seat order; sign-offs already given stay with their seats."""
    await session.execute(team.delete().where(team.c.person_id == person_id))
    if members:
        await session.execute(team.insert(), [
            {"person_id": person_id, "seat": i, "role": m.role, "staff": m.staff.strip()}
            for i, m in enumerate(members, 1)])


async def correct(session: AsyncSession, person_id: uuid.UUID, changes: dict, actor: str,
                  now: datetime, reason: str) -> None:
    """A registration corrected ({field: (before, after)}): the identity in
    `ledger.identities`, the rest in the file's row, and the correction kept."""
    who = {k: after for k, (_, after) in changes.items() if k in IDENTITY}
    row = {k: after for k, (_, after) in changes.items() if k not in IDENTITY}
    if who:
        await session.execute(identities.update().where(identities.c.person_id == person_id)
                              .values(**who))
    if row:
        await session.execute(people.update().where(people.c.person_id == person_id)
                              .values(**row))
    await session.execute(corrections.insert().values(
        person_id=person_id, corrected_at=now, corrected_by=actor, reason=reason,
        changes={k: [_plain(b), _plain(a)] for k, (b, a) in changes.items()}))


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


async def corrections_of(session: AsyncSession, person_id: uuid.UUID):
    """A file's corrections, oldest first."""
    return (await session.execute(select(corrections).where(
        corrections.c.person_id == person_id).order_by(corrections.c.id))).all()


async def person_row(session: AsyncSession, person_id: uuid.UUID, lock: bool = False):
    query = select(people).where(people.c.person_id == person_id)
    if lock:
        query = query.with_for_update()
    return (await session.execute(query)).one_or_none()


async def facts(session: AsyncSession, ids: list[uuid.UUID]) -> list[plan.Facts]:
    """Each file's facts, in a few statements whatever their number."""
    if not ids:
        return []
    rows = (await session.execute(select(people).where(people.c.person_id.in_(ids))
                                  .order_by(people.c.person_id))).all()
    ends: defaultdict[uuid.UUID, list[date]] = defaultdict(list)
    for pid, day in await session.execute(
            select(phase_ends.c.person_id, phase_ends.c.day)
            .where(phase_ends.c.person_id.in_(ids)).order_by(phase_ends.c.phase)):
        ends[pid].append(day)
    done: defaultdict[uuid.UUID, set[date]] = defaultdict(set)
    for pid, day in await session.execute(
            select(tests.c.person_id, tests.c.day).where(tests.c.person_id.in_(ids))):
        done[pid].add(day)
    seats: defaultdict[uuid.UUID, set[int]] = defaultdict(set)
    for pid, seat in await session.execute(
            select(team.c.person_id, team.c.seat).where(team.c.person_id.in_(ids))):
        seats[pid].add(seat)
    signed: defaultdict[uuid.UUID, defaultdict[date, set[int]]] = defaultdict(
        lambda: defaultdict(set))
    for pid, day, seat in await session.execute(
            select(signoffs.c.person_id, signoffs.c.day, signoffs.c.seat)
            .where(signoffs.c.person_id.in_(ids))):
        signed[pid][day].add(seat)
    return [plan.Facts(
        person_id=str(r.person_id), pseudonym=r.pseudonym, category=r.category,
        village=r.village, regime=r.regime, start=r.start_day,
        phase_ends=tuple(ends[r.person_id]), outcome=r.outcome,
        tests_done=frozenset(done[r.person_id]), team=frozenset(seats[r.person_id]),
        signed={d: frozenset(s) for d, s in signed[r.person_id].items()}) for r in rows]


def _outbox_row(event: CountdownEvent) -> dict:
    return {"subject": event.subject, "msg_id": event.msg_id,
            "payload": event.model_dump_json().encode(), "created_at": event.at}


async def sync(session: AsyncSession, regimes: Regimes, files: list[plan.Facts], today: date,
               zone: ZoneInfo, now: datetime, again: frozenset[str] = frozenset()) -> int:
    """Bring the countdowns announced for these files in step with their plan: a new one is
    announced (due), one met is settled `done`, one the file no longer holds is settled
    `withdrawn`. The files of `again` (person ids: corrected) announce every countdown still
    due once more, with the next seq, so its details follow the file. Each change is an event
    in the outbox. Returns how many events."""
    if not files:
        return 0
    ids = [uuid.UUID(f.person_id) for f in files]
    stored = {key: (state, seq) for key, state, seq in await session.execute(
        select(countdowns.c.key, countdowns.c.state, countdowns.c.seq)
        .where(countdowns.c.person_id.in_(ids)).with_for_update())}
    events: list[CountdownEvent] = []
    writes: list[dict] = []
    for f in files:
        base = {"kind": None, "node": f.village, "pseudonym": f.pseudonym,
                "category": f.category, "at": now}
        wanted = {c.key: c for c in plan.countdowns(regimes, f, today)}
        for key, c in wanted.items():
            state, seq = stored.get(key, (None, 0))
            common = {**base, "key": key, "kind": c.alert_kind, "group": c.group,
                      "day": c.day}
            if state in (None, "withdrawn") or (
                    state == "due" and not c.met and f.person_id in again):
                seq += 1
                events.append(CountdownDue(**common, seq=seq, due_at=plan.end_of(c.day, zone),
                                           details=c.details))
                state = "due"
            if state == "due" and c.met:
                seq += 1
                events.append(CountdownSettled(**common, seq=seq, outcome="done"))
                state = "met"
            if (state, seq) != stored.get(key):
                writes.append({"key": key, "person_id": uuid.UUID(f.person_id), "kind": c.kind,
                               "day": c.day, "state": state, "seq": seq})
        for key, (state, seq) in stored.items():
            if key.split(":")[1] == f.person_id and key not in wanted and state == "due":
                kind, _, day = key.split(":")
                events.append(CountdownSettled(
                    **{**base, "kind": plan.ALERT_KIND[kind]}, key=key, seq=seq + 1,
                    group=(f"{kind}:{f.village}:{day}" if kind == plan.SIGNOFF else key),
                    day=date.fromisoformat(day), outcome="withdrawn"))
                writes.append({"key": key, "person_id": uuid.UUID(f.person_id), "kind": kind,
                               "day": date.fromisoformat(day), "state": "withdrawn",
                               "seq": seq + 1})
    if writes:
        stmt = pg_insert(countdowns)
        await session.execute(stmt.on_conflict_do_update(
            index_elements=["key"], set_={"state": stmt.excluded.state,
                                          "seq": stmt.excluded.seq}), writes)
    if events:
        await session.execute(LedgerOutboxRow.__table__.insert(),
                              [_outbox_row(e) for e in events])
    return len(events)


async def active_ids(session: AsyncSession, node: str = "", lock: bool = False
                     ) -> list[uuid.UUID]:
    """The files not closed, of a node's subtree (every one by default); `lock`: locked in
    one order, as a change locks its own file, so that the countdowns of a file are brought in
    step by one transaction at a time."""
    query = (select(people.c.person_id).where(people.c.outcome.is_(None),
                                              people.c.village.startswith(node))
             .order_by(people.c.person_id))
    if lock:
        query = query.with_for_update()
    return list((await session.execute(query)).scalars())


async def ids_on(session: AsyncSession, node: str, day: date) -> list[uuid.UUID]:
    """The files of a subtree that may be under control on `day`: started by then, and not
    closed before it (a closed file's last phase end is its closing day)."""
    closed_on = (select(func.max(phase_ends.c.day))
                 .where(phase_ends.c.person_id == people.c.person_id).scalar_subquery())
    return list((await session.execute(
        select(people.c.person_id).where(
            people.c.village.startswith(node), people.c.start_day <= day,
            or_(people.c.outcome.is_(None), closed_on > day)))).scalars())


async def tested_on(session: AsyncSession, node: str, day: date) -> list[uuid.UUID]:
    """The files of a subtree with a test due on `day`: those under control, and those closed
    with a test due after their release."""
    return list((await session.execute(
        select(countdowns.c.person_id).join(people, people.c.person_id == countdowns.c.person_id)
        .where(people.c.village.startswith(node), countdowns.c.kind == plan.TEST,
               countdowns.c.day == day, countdowns.c.state != "withdrawn"))).scalars())


async def register(session: AsyncSession, node: str, status: str, limit: int, offset: int):
    """The files of a subtree, newest first: `active` (not closed), `closed` or `all`."""
    query = select(people).where(people.c.village.startswith(node))
    if status == "active":
        query = query.where(people.c.outcome.is_(None))
    elif status == "closed":
        query = query.where(people.c.outcome.is_not(None))
    rows = (await session.execute(query.order_by(people.c.registered_at.desc(),
                                                 people.c.pseudonym)
                                  .limit(limit).offset(offset))).all()
    return rows


async def rows_of(session: AsyncSession, ids: list[uuid.UUID]):
    return (await session.execute(select(people).where(people.c.person_id.in_(ids))
                                  .order_by(people.c.pseudonym))).all()


async def identities_of(session: AsyncSession, ids: list[uuid.UUID]) -> dict:
    return {r.person_id: r for r in (await session.execute(
        select(identities).where(identities.c.person_id.in_(ids)))).all()}


async def teams_of(session: AsyncSession, ids: list[uuid.UUID]) -> dict:
    out: defaultdict[uuid.UUID, list] = defaultdict(list)
    for r in (await session.execute(select(team).where(team.c.person_id.in_(ids))
                                    .order_by(team.c.seat))).all():
        out[r.person_id].append(r)
    return out


async def signoffs_on(session: AsyncSession, ids: list[uuid.UUID], day: date) -> dict:
    out: defaultdict[uuid.UUID, dict[int, datetime]] = defaultdict(dict)
    for r in (await session.execute(select(signoffs).where(
            signoffs.c.person_id.in_(ids), signoffs.c.day == day))).all():
        out[r.person_id][r.seat] = r.signed_at
    return out


async def add_test(session: AsyncSession, person_id: uuid.UUID, day: date, result: str,
                   actor: str, now: datetime) -> None:
    stmt = pg_insert(tests).values(person_id=person_id, day=day, result=result,
                                   recorded_at=now, recorded_by=actor)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["person_id", "day"],
        set_={"result": stmt.excluded.result, "recorded_at": now, "recorded_by": actor}))


async def end_phase(session: AsyncSession, person_id: uuid.UUID, phase: int, day: date,
                    actor: str, now: datetime) -> None:
    await session.execute(phase_ends.insert().values(person_id=person_id, phase=phase, day=day,
                                                     recorded_at=now, recorded_by=actor))


async def close_file(session: AsyncSession, person_id: uuid.UUID, outcome: str) -> None:
    await session.execute(people.update().where(people.c.person_id == person_id)
                          .values(outcome=outcome))


async def set_site(session: AsyncSession, person_id: uuid.UUID, site: str) -> None:
    await session.execute(people.update().where(people.c.person_id == person_id)
                          .values(site=site))


async def sign(session: AsyncSession, person_id: uuid.UUID, day: date, seat: int,
               signed_at: datetime, actor: str) -> bool:
    """A team member's sign-off of a day; the first one counts (False: already signed)."""
    done = await session.execute(pg_insert(signoffs).values(
        person_id=person_id, day=day, seat=seat, signed_at=signed_at, recorded_by=actor)
        .on_conflict_do_nothing().returning(signoffs.c.seat))
    return done.scalar_one_or_none() is not None


async def countdown_rows(session: AsyncSession, ids: list[uuid.UUID], kind: str, day: date,
                         up_to: bool = False):
    """Countdowns of a kind for a day (or, `up_to`, any day up to it still due)."""
    when = (and_(countdowns.c.day <= day, countdowns.c.state == "due") if up_to
            else countdowns.c.day == day)
    return (await session.execute(select(countdowns).where(
        countdowns.c.person_id.in_(ids), countdowns.c.kind == kind, when,
        countdowns.c.state != "withdrawn").order_by(countdowns.c.day))).all()




def unit_of(village: str) -> str:
    return f"{village}-GK"


async def mark(session: AsyncSession, village: str, since: date) -> None:
    """The village's figures from `since` on are to be submitted again."""
    stmt = pg_insert(stock_dirty).values(village=village, since=since)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["village"], set_={"since": func.least(stock_dirty.c.since, since)}))


async def ensure_unit(session: AsyncSession, reference: Reference, village: str,
                      since: date) -> bool:
    """The village's ledger unit exists and is active from `since`: True if the registry
    changed (the caller announces it after commit)."""
    unit = reference.units.get(unit_of(village))
    if unit is not None and unit.active_from is not None and unit.active_from <= since:
        return False
    start = min(since, unit.active_from) if unit is not None and unit.active_from else since
    await registry.upsert_units(session, [{
        "code": unit_of(village), "unit_type": UNIT_TYPE, "sector": "health", "node": village,
        "name": f"{reference.nodes.get(village, village)} 管控台账", "active_from": start,
        "active_to": None, "cutoff": None}], placed_from=start)
    return True


async def last_sent(session: AsyncSession) -> dict[str, date]:
    """Per village, the last day whose headcounts were submitted."""
    return dict((await session.execute(
        select(stock_sent.c.village, func.max(stock_sent.c.day))
        .group_by(stock_sent.c.village))).all())


async def villages(session: AsyncSession) -> list[str]:
    """The villages with any file, open or closed: those with a ledger unit."""
    return list((await session.execute(
        select(people.c.village).distinct().order_by(people.c.village))).scalars())
