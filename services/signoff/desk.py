"""Signoff's use cases (逐级审核上报): send a unit's report back, confirm a node's day, take the
accepted reports (a correction clears its send-back; a report a confirmation does not hold
reopens it), and the views of a node's day. Each runs in the caller's transaction, which also
holds the audit entries and their events (the outbox)."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.signoff import review, store
from shared.aggregation import MetricKinds
from shared.auth import Principal
from shared.contracts import ReportAccepted, SignoffChanged
from shared.hierarchy import Level, ancestors, level_of, parent_of
from shared.refusals import refuse
from shared.registry.reference import Reference
from shared.signoff_rules import SignoffRules


def actor_of(who: Principal) -> str:
    return f"{who.kind}:{who.holder}"


# ---------------------------------------------------------------- send back (退回)


async def send_back(session: AsyncSession, unit: str, day: date, reason: str, who: Principal,
                    reference: Reference, now: datetime) -> tuple[store.Sendback,
                                                                  SignoffChanged]:
    """An operator above the unit sends its latest report of the day back with a reason; the
    unit sees it (ingest, the console's form) and corrects. One open send-back per unit-day."""
    info = reference.units.get(unit)
    if info is None:
        raise refuse("unknown_unit", "unit", unit=unit)
    if not who.may_submit_for(unit, info.node_on(day)):
        raise refuse("outside_area", "unit", what=unit)
    # Row-locked: a correction being stored now is either seen here or clears this send-back.
    held = await store.unit_day(session, unit, day, for_update=True)
    if held is None:
        raise refuse("nothing_to_review", "day", day=day)
    made = await store.add_sendback(session, held, reason, actor_of(who), who.credential_id, now)
    if made is None:
        existing = await store.open_sendback(session, unit, day)
        raise refuse("already_sent_back", "unit",
                     revision=existing.revision if existing else held.revision)
    event = await store.record(session, "sent_back", held.node, day, actor_of(who), now,
                               unit=unit, revision=held.revision, reason=reason,
                               details={"sendback_id": str(made.sendback_id)},
                               sendback_id=made.sendback_id)
    return made, event


# ---------------------------------------------------------------- confirm (确认上报)


@dataclass(frozen=True, slots=True)
class Confirmed:
    confirmation_id: uuid.UUID
    confirmation: review.Confirmation
    created: bool  # False: the day was already confirmed and unchanged since


async def confirm(session: AsyncSession, node: str, day: date, who: Principal,
                  rules: SignoffRules, kinds: MetricKinds, now: datetime,
                  reference: Reference | None = None) -> Confirmed:
    """The node's operator freezes the day's figures as they are now (who, when, and the
    revision of every unit they hold). Confirming a confirmed day again changes nothing;
    a reopened one is confirmed anew (the next version)."""
    try:
        level_of(node)
    except ValueError:
        raise refuse("bad_node", "node", node=node) from None
    if who.kind != "operator" or who.scope != node:
        raise refuse("not_own_node", "node", node=node)
    if not rules.confirms(node):
        raise refuse("not_confirming", "node", node=node)
    await store.lock_node_days(session, [(node, day)])
    still = await store.sendbacks_below(session, node, day, only_open=True)
    if still:
        raise refuse("sendbacks_open", "node", count=len(still))
    if rules.after_children(node) and reference is not None:
        # Under this node's lock: a report reopening a child takes it too, so none slips by.
        expected = [c for c in children_with_units(reference, node, day) if rules.confirms(c)]
        done = await store.current_confirmations(session, expected, day)
        waiting = [c for c in expected if c not in done or done[c][1].reopened_at is not None]
        if waiting:
            raise refuse("children_unconfirmed", "node", count=len(waiting))
    current = (await store.current_confirmations(session, [node], day)).get(node)
    if current is not None and current[1].reopened_at is None:
        return Confirmed(current[0], current[1], created=False)
    units = await store.unit_days_below(session, node, day)
    figures = review.figures((u.values for u in units), kinds)
    held = {u.unit: u.revision for u in units}
    version = current[1].version + 1 if current else 1
    cid = await store.add_confirmation(session, node, day, version, figures, held,
                                       actor_of(who), who.credential_id, now)
    await store.record(session, "confirmed", node, day, actor_of(who), now,
                       details={"confirmation_id": str(cid), "version": version,
                                "figures": figures, "reported": len(held)},
                       confirmation_id=cid, version=version, figures=figures)
    return Confirmed(cid, review.Confirmation(node, version, figures, held, now, actor_of(who),
                                              None), created=True)


# ---------------------------------------------------------------- accepted reports


async def take_reports(session: AsyncSession, events: Sequence[ReportAccepted],
                       rules: SignoffRules, kinds: MetricKinds, now: datetime) -> int:
    """Accepted reports, newest revision of each unit-day: stored as reviewed; a newer revision
    clears the unit-day's open send-back (audited, with the correction's reason and who sent
    it); and every confirmed node above the unit whose snapshot does not hold this revision is
    marked changed after confirmation and reopened. Returns the events recorded."""
    newest: dict[tuple[str, date], ReportAccepted] = {}
    for e in events:
        if (e.unit, e.day) not in newest or e.revision > newest[(e.unit, e.day)].revision:
            newest[(e.unit, e.day)] = e
    if not newest:
        return 0
    touched_keys = sorted({(n, e.day) for e in newest.values() for n in ancestors(e.node)
                           if level_of(n) >= Level.COUNTY and rules.confirms(n)})
    await store.lock_node_days(session, touched_keys)
    stored = await store.take_reports(session, list(newest.values()))
    fresh = [newest[(u, d)] for u, d, _ in sorted(stored)]
    recorded = 0
    for cleared in await store.clear_sendbacks(session, fresh, now):
        e = newest[(cleared.unit, cleared.day)]
        await store.record(session, "cleared", cleared.node, cleared.day, e.actor or e.reporter,
                           now, unit=cleared.unit, revision=cleared.cleared_revision,
                           reason=e.reason,
                           details={"sendback_id": str(cleared.sendback_id),
                                    "sent_back_revision": cleared.revision},
                           sendback_id=cleared.sendback_id)
        recorded += 1
    by_day: dict[date, list[ReportAccepted]] = {}
    for e in fresh:
        by_day.setdefault(e.day, []).append(e)
    for day, day_events in sorted(by_day.items()):
        nodes = sorted({n for e in day_events for n, d in touched_keys
                        if d == day and e.node.startswith(n)})
        current = await store.current_confirmations(session, nodes, day)
        for node, (cid, conf) in sorted(current.items()):
            hits = [e for e in day_events
                    if e.node.startswith(node) and review.touches(conf.units, e.unit, e.revision)]
            for e in hits:
                await store.add_change(session, cid, e, conf.units.get(e.unit),
                                       review.change_kind(conf.units, e.unit), now)
            if hits and conf.reopened_at is None:
                await store.reopen(session, cid, now)
                live = review.figures(
                    (u.values for u in await store.unit_days_below(session, node, day)), kinds)
                first = hits[0]
                await store.record(
                    session, "reopened", node, day, first.actor or first.reporter, now,
                    unit=first.unit, revision=first.revision, reason=first.reason,
                    details={"confirmation_id": str(cid), "version": conf.version,
                             "units": [f"{e.unit}#{e.revision}" for e in hits]},
                    confirmation_id=cid, version=conf.version,
                    difference=review.difference(live, conf.figures))
                recorded += 1
    return recorded


# ---------------------------------------------------------------- views


@dataclass
class NodeDay:
    node: str
    name: str
    level: str
    confirms: bool
    due_at: datetime | None
    status: review.Status
    live: dict
    reported: int
    confirmation_id: uuid.UUID | None = None
    confirmation: review.Confirmation | None = None
    difference: dict = field(default_factory=dict)
    changes: list[store.Change] = field(default_factory=list)
    open_sendbacks: int = 0


def children_of(reference: Reference, node: str) -> list[str]:
    return sorted(code for code in reference.nodes if parent_of(code) == node)


def children_with_units(reference: Reference, node: str, day: date) -> list[str]:
    """The children of `node` with a unit placed below them (active) on `day`."""
    children = set(children_of(reference, node))
    if not children:
        return []
    length = len(next(iter(children)))
    return sorted(children & {placed[:length] for u in reference.units.values()
                              if u.active_on(day) and (placed := u.node_on(day))
                              and placed.startswith(node) and len(placed) >= length})


async def node_days(session: AsyncSession, node: str, day: date, rules: SignoffRules,
                    kinds: MetricKinds, reference: Reference, zone: ZoneInfo
                    ) -> tuple[NodeDay, list[NodeDay]]:
    """A node's day and each child's: confirmed (with the figures frozen, who and when),
    reopened (changed after confirmation: the changes and live minus confirmed), unconfirmed
    (live figures only), or not required at that level."""
    children = children_of(reference, node)
    await store.one_snapshot(session)
    units = await store.unit_days_below(session, node, day)
    sendbacks = await store.sendbacks_below(session, node, day, only_open=True)
    current = await store.current_confirmations(session, [node, *children], day)
    changes = await store.changes_of(session, [cid for cid, _ in current.values()])

    def one(code: str) -> NodeDay:
        below = [u for u in units if u.node.startswith(code)]
        live = review.figures((u.values for u in below), kinds)
        confirms = rules.confirms(code)
        found = current.get(code)
        conf = found[1] if found else None
        view = NodeDay(code, reference.nodes.get(code, code), level_of(code).name.lower(),
                       confirms, rules.due_at(code, day, zone), review.status(confirms, conf),
                       live, len(below),
                       open_sendbacks=sum(1 for s in sendbacks if s.node.startswith(code)))
        if found:
            view.confirmation_id, view.confirmation = found
            view.changes = changes.get(found[0], [])
            view.difference = review.difference(live, found[1].figures)
        return view

    return one(node), [one(c) for c in children]


@dataclass
class UnitReview:
    unit: str
    name: str
    unit_type: str
    node: str
    report: store.UnitDay | None
    sendback: store.Sendback | None  # the open one, if any
    sendbacks: int  # every send-back of the day, cleared or not


async def units_to_review(session: AsyncSession, node: str, day: date,
                          reference: Reference) -> list[UnitReview]:
    """Every unit placed below `node` on `day` (active that day), with its latest report of the
    day (None: not reported) and its send-backs, by village then unit."""
    await store.one_snapshot(session)
    reports = {u.unit: u for u in await store.unit_days_below(session, node, day)}
    sendbacks = await store.sendbacks_below(session, node, day)
    placed = {code: n for code, info in reference.units.items()
              if info.active_on(day) and (n := info.node_on(day)) and n.startswith(node)}
    placed |= {u: r.node for u, r in reports.items() if u not in placed}
    out = []
    for unit, at in sorted(placed.items(), key=lambda kv: (kv[1], kv[0])):
        info = reference.units.get(unit)
        mine = [s for s in sendbacks if s.unit == unit]
        out.append(UnitReview(unit, info.name if info else unit,
                              info.unit_type if info else reports[unit].unit_type, at,
                              reports.get(unit),
                              next((s for s in mine if s.cleared_at is None), None), len(mine)))
    return out
