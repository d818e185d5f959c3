"""The ledger's use cases: register people (one, or a CSV batch all or nothing), correct a
registration (kept with its reason and what changed), record a test, a release (解除; the last
one closes the file, 销账) and a team member's sign-off, and keep the countdowns announced in
step, each in one transaction with its events; then read the register, the day's tests and
releases due, the sign-offs missing and the headcounts."""

import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger import intake, plan, store
from services.ledger.regimes import Regimes
from services.ledger.schemas import (
    Correction,
    Registration,
    Release,
    SignOff,
    TeamMember,
    TestResult,
)
from shared.auth import Principal
from shared.deadlines import local_day
from shared.errors import FieldError
from shared.hierarchy import CODE_LENGTHS, Level, level_of
from shared.outbox import OutboxRelay
from shared.refusals import Refused, refuse
from shared.registry.reference import Reference
from shared.settings import Settings


def _refused(errors: list[FieldError]) -> Refused:
    return Refused(422, errors)


def unknown_person(person_id: object) -> Refused:
    return refuse("unknown_person", "person_id", person_id=str(person_id))


@dataclass
class LedgerContext:
    settings: Settings
    clock: Callable[[], datetime]
    sessions: async_sessionmaker[AsyncSession]
    regimes: Regimes
    relay: OutboxRelay
    reference: Reference
    # Tell the services that the registry changed (a new ledger unit), after commit.
    announce: Callable[[list[str]], Awaitable[None]] | None = None
    # Called after a commit that changed a village's headcounts (wakes the publisher).
    changed: Callable[[], None] = lambda: None

    def today(self) -> date:
        return local_day(self.clock(), self.settings.zone)

    async def reload_reference(self) -> None:
        async with self.sessions() as session:
            self.reference = await Reference.load(session)

    def _require_names(self, who: Principal) -> None:
        if not intake.names_visible(who.scope):
            raise refuse("names_below_town", "authorization")

    async def _sync(self, session: AsyncSession, ids: list[uuid.UUID],
                    again: frozenset[str] = frozenset()) -> int:
        files = await store.facts(session, ids)
        return await store.sync(session, self.regimes, files, self.today(),
                                self.settings.zone, self.clock(), again)

    # -- changes ---------------------------------------------------------------------------

    async def register(self, who: Principal, items: list[Registration],
                       where: Callable[[int], str] | None = None) -> list[uuid.UUID]:
        """Register people, all or none: every problem of every item is named (`where` says
        how an item's fields are addressed: `[3].regime` in a file)."""
        self._require_names(who)
        today, errors = self.today(), []
        for i, r in enumerate(items):
            for e in intake.check_registration(r, self.regimes, self.reference.nodes,
                                               who.scope, today):
                field = f"{where(i)}.{e.field}" if where else e.field
                errors.append(FieldError(field, e.code, e.message_zh, e.message_en))
        if errors:
            raise _refused(errors)
        since: dict[str, date] = {}
        for r in items:
            since[r.village] = min(r.start_day, since.get(r.village, r.start_day))
        async with self.sessions() as session, session.begin():
            ids = [await store.add_person(session, r, who.holder, self.clock()) for r in items]
            await self._sync(session, ids)
            new_units = False
            for village, first in sorted(since.items()):
                new_units |= await store.ensure_unit(session, self.reference, village, first)
                await store.mark(session, village, first)
        await self._committed(new_units)
        return ids

    async def _file(self, session: AsyncSession, who: Principal, person_id: uuid.UUID):
        row = await store.person_row(session, person_id, lock=True)
        if row is None or not row.village.startswith(who.scope):
            raise unknown_person(person_id)  # outside the area is as if it did not exist
        return row

    async def correct(self, who: Principal, person_id: uuid.UUID, body: Correction
                      ) -> list[str]:
        """Correct a registration (village and town operators: they hold the name); returns
        the fields changed. A new regime or start day re-plans what is due: the countdowns
        follow (a moved test announced on its new day, one no longer held withdrawn), and
        every countdown still due is announced again with the file's new details."""
        self._require_names(who)
        given = body.model_dump(exclude_unset=True)
        async with self.sessions() as session, session.begin():
            row = await self._file(session, who, person_id)
            identity = (await store.identities_of(session, [person_id]))[person_id]
            [facts] = await store.facts(session, [person_id])
            before = {"name": identity.name, "contact": identity.contact,
                      "category": row.category, "regime": row.regime, "site": row.site,
                      "start_day": row.start_day, "village": row.village}
            recorded = intake.Recorded(
                released_on=facts.phase_ends[0] if facts.phase_ends else None,
                closed=row.outcome is not None,
                first_recorded=min([*facts.tests_done, *facts.signed], default=None))
            changes, problems, conflicts = intake.check_correction(
                given, before, recorded, self.regimes, self.today())
            if problems:
                raise _refused(problems)
            if conflicts:
                raise Refused(409, conflicts)
            await store.correct(session, person_id, changes, who.holder, self.clock(),
                                body.reason.strip())
            replans = bool(changes.keys() & {*intake.REPLANS, "category"})
            await self._sync(session, [person_id],
                             frozenset({str(person_id)}) if replans else frozenset())
            new_units = False
            if changes.keys() & set(intake.REPLANS):
                # The headcounts from the earlier of the two starts on are counted anew, and
                # the village's unit reports from then on.
                since = min(row.start_day, given.get("start_day") or row.start_day)
                new_units = await store.ensure_unit(session, self.reference, row.village, since)
                await store.mark(session, row.village, since)
        await self._committed(new_units)
        return sorted(changes)

    async def _committed(self, new_units: bool) -> None:
        """After a change of files: the events go out, and a village that now has a ledger
        unit is known to every service (the registry changed)."""
        self.relay.wake()
        if new_units:
            await self.reload_reference()
            if self.announce is not None:
                await self.announce(["units"])
        self.changed()

    async def corrections(self, who: Principal, person_id: uuid.UUID) -> list[dict]:
        """A file's corrections, oldest first: who, when, why, each field before and after.
        Above the town a name or contact corrected shows as changed, without its values, and
        the reason of such a correction (written where the name is known) is withheld."""
        names = intake.names_visible(who.scope)
        async with self.sessions() as session:
            row = await store.person_row(session, person_id)
            if row is None or not row.village.startswith(who.scope):
                raise unknown_person(person_id)
            found = await store.corrections_of(session, person_id)
        out = []
        for c in found:
            hidden = not names and bool(c.changes.keys() & set(intake.IDENTITY))
            out.append({
                "corrected_at": c.corrected_at.isoformat(), "corrected_by": c.corrected_by,
                "pseudonym": row.pseudonym, "reason": None if hidden else c.reason,
                "changes": [{"field": k, "before": b, "after": a}
                            if names or k not in intake.IDENTITY else {"field": k, "withheld": True}
                            for k, (b, a) in sorted(c.changes.items())]})
        return out

    async def record_test(self, who: Principal, person_id: uuid.UUID, body: TestResult) -> None:
        if body.day > self.today():
            raise _refused([intake.problem("day", "future_day", "日期不能晚于今天",
                                           "the day cannot be after today")])
        async with self.sessions() as session, session.begin():
            row = await self._file(session, who, person_id)
            if body.day < row.start_day:
                raise _refused([intake.problem("day", "before_start", "日期早于管控开始日",
                                               "the day is before the person's start day")])
            await store.add_test(session, person_id, body.day, body.result, who.holder,
                                 self.clock())
            await self._sync(session, [person_id])
        self.relay.wake()

    async def release(self, who: Principal, person_id: uuid.UUID, body: Release) -> dict:
        """End the current phase on `body.day`; the last one (or any, with an outcome) closes
        the file."""
        if body.day > self.today():
            raise _refused([intake.problem("day", "future_day", "日期不能晚于今天",
                                           "the day cannot be after today")])
        if body.outcome is not None and body.outcome not in self.regimes.outcomes:
            raise _refused([intake.problem("outcome", "unknown_outcome",
                                           f"没有销账结果 {body.outcome}",
                                           f"no outcome {body.outcome} (known: "
                                           f"{', '.join(self.regimes.outcomes)})")])
        async with self.sessions() as session, session.begin():
            row = await self._file(session, who, person_id)
            [facts] = await store.facts(session, [person_id])
            regime = self.regimes.regimes[row.regime]
            span = plan.current(regime, facts)
            if span is None:
                raise refuse("wrong_state", "person_id", status=("已销账", "closed"),
                             action=("解除", "released"))
            if body.day < span.starts:
                raise _refused([intake.problem("day", "before_phase",
                                               f"日期早于本阶段开始日 {span.starts}",
                                               f"the day is before this phase began "
                                               f"({span.starts})")])
            last = span.index == len(regime.phases) - 1
            outcome = body.outcome or ("completed" if last else None)
            await store.end_phase(session, person_id, span.index, body.day, who.holder,
                                  self.clock())
            if outcome is not None:
                await store.close_file(session, person_id, outcome)
            elif body.site:
                await store.set_site(session, person_id, body.site)
            await self._sync(session, [person_id])
            await store.mark(session, row.village, body.day)
        self.relay.wake()
        self.changed()
        return {"phase_ended": span.kind, "closed": outcome is not None, "outcome": outcome}

    async def sign(self, who: Principal, person_id: uuid.UUID, body: SignOff) -> bool:
        if body.day > self.today():
            raise _refused([intake.problem("day", "future_day", "日期不能晚于今天",
                                           "the day cannot be after today")])
        async with self.sessions() as session, session.begin():
            row = await self._file(session, who, person_id)
            seats = {r.seat for r in (await store.teams_of(session, [person_id]))[person_id]}
            if body.seat not in seats:
                raise _refused([intake.problem("seat", "unknown_seat",
                                               f"包保组没有第 {body.seat} 位成员",
                                               f"the team has no member in seat {body.seat}")])
            fresh = await store.sign(session, person_id, body.day, body.seat,
                                     body.signed_at or self.clock(), who.holder)
            await self._sync(session, [person_id])
            await store.mark(session, row.village, body.day)
        self.relay.wake()
        self.changed()
        return fresh

    async def set_team(self, who: Principal, person_id: uuid.UUID,
                       members: list[TeamMember]) -> None:
        """A new 包保 team (a member replaced, one added): from today its members sign."""
        errors = intake.check_team(members, self.regimes)
        if errors:
            raise _refused(errors)
        async with self.sessions() as session, session.begin():
            row = await self._file(session, who, person_id)
            await store.set_team(session, person_id, members)
            await self._sync(session, [person_id])
            await store.mark(session, row.village, self.today())
        self.relay.wake()
        self.changed()

    async def roll(self) -> int:
        """Every open file brought in step with today (a stay past its plan needs the team's
        sign-off of each new day): run at each new day, and at start."""
        yesterday = self.today() - timedelta(days=1)
        async with self.sessions() as session, session.begin():
            ids = await store.active_ids(session, lock=True)
            n = await self._sync(session, ids)
            # Yesterday's missing sign-offs are final now, and today's headcounts are due; so
            # are the days from the last one submitted (perhaps while it was not over yet),
            # after a stop of the service.
            # Every village with a ledger unit reports each day, a zero report once nobody is
            # under control there: its unit is expected like any other.
            sent = await store.last_sent(session)
            for village in await store.villages(session):
                since = min(yesterday, sent.get(village, yesterday))
                await store.mark(session, village, since)
        if n:
            self.relay.wake()
        self.changed()
        return n

    async def signoff_gaps(self, node: str, day: date) -> list[plan.Facts]:
        """The files under control on `day` whose team did not all sign it."""
        async with self.sessions() as session:
            files = await store.facts(session, await store.ids_on(session, node, day))
        return [f for f in files
                if plan.phase_on(self.regimes.regimes[f.regime], f, day) is not None
                and not plan.signed_off(f, day)]

    # -- reads -----------------------------------------------------------------------------

    async def people(self, who: Principal, node: str, status: str, limit: int,
                     offset: int) -> list[dict]:
        async with self.sessions() as session:
            rows = await store.register(session, node, status, limit, offset)
            return await self._views(session, who, rows)

    async def person(self, who: Principal, person_id: uuid.UUID) -> dict:
        async with self.sessions() as session:
            row = await store.person_row(session, person_id)
            if row is None or not row.village.startswith(who.scope):
                raise unknown_person(person_id)
            [view] = await self._views(session, who, [row])
            return view

    async def _views(self, session: AsyncSession, who: Principal, rows) -> list[dict]:
        ids = [r.person_id for r in rows]
        named = await store.identities_of(session, ids) if intake.names_visible(who.scope) else {}
        teams = await store.teams_of(session, ids)
        files = {uuid.UUID(f.person_id): f for f in await store.facts(session, ids)}
        today, out = self.today(), []
        for r in rows:
            f, regime = files[r.person_id], self.regimes.regimes[r.regime]
            span = plan.current(regime, f)
            phase = plan.phase_on(regime, f, today)
            view = {
                "person_id": str(r.person_id), "pseudonym": r.pseudonym, "village": r.village,
                "village_name": self.reference.nodes.get(r.village), "category": r.category,
                "regime": r.regime, "site": r.site, "start_day": r.start_day.isoformat(),
                "planned_release": plan.planned_release(regime, f).isoformat(),
                "phase": phase.kind if phase else None,
                "place": self._place(r.site, phase.kind) if phase else None,
                "phase_planned_end": span.planned_end.isoformat() if span else None,
                "released_on": f.released_on.isoformat() if f.released_on else None,
                "outcome": r.outcome, "tests_done": sorted(d.isoformat() for d in f.tests_done),
                "team": [{"seat": t.seat, "role": t.role, "staff": t.staff}
                         for t in teams.get(r.person_id, [])]}
            if r.person_id in named:
                view["name"] = named[r.person_id].name
                view["contact"] = named[r.person_id].contact
            out.append(view)
        return out

    def _place(self, site: str | None, kind: str) -> str:
        return (site or "?") if self.regimes.phase_kinds[kind].place == "site" else "home"

    async def due(self, who: Principal, node: str, day: date) -> dict:
        """A day's work: tests due that day, releases due by then and not recorded, and the
        team sign-offs of that day (each person with the seats still to sign)."""
        async with self.sessions() as session:
            ids = sorted(set(await store.ids_on(session, node, day))
                         | set(await store.tested_on(session, node, day)))
            rows = {r.person_id: r for r in await store.rows_of(session, ids)}
            views = {uuid.UUID(v["person_id"]): v
                     for v in await self._views(session, who, list(rows.values()))}
            tests_due = await store.countdown_rows(session, ids, plan.TEST, day)
            releases = await store.countdown_rows(session, ids, plan.RELEASE, day, up_to=True)
            signed = await store.signoffs_on(session, ids, day)
            files = await store.facts(session, ids)
        brief = lambda pid: {k: views[pid][k] for k in  # noqa: E731
                             ("person_id", "pseudonym", "village", "category", "regime",
                              "phase", "place", "name") if k in views[pid]}
        present = {uuid.UUID(f.person_id): span for f in files
                   if (span := plan.phase_on(self.regimes.regimes[f.regime], f, day))}
        sign = []
        for pid, v in sorted(views.items(), key=lambda kv: kv[1]["pseudonym"]):
            if pid not in present:
                continue
            got = signed.get(pid, {})
            sign.append({**brief(pid), "team": [
                {**t, "signed_at": got[t["seat"]].isoformat() if t["seat"] in got else None}
                for t in v["team"]],
                "complete": bool(v["team"]) and all(t["seat"] in got for t in v["team"])})
        return {
            "node": node, "day": day.isoformat(),
            "tests": [{**brief(c.person_id), "day": c.day.isoformat(),
                       "done": c.state == "met"} for c in tests_due],
            "releases": [{**brief(c.person_id), "planned": c.day.isoformat(),
                          "overdue": c.day < day} for c in releases],
            "signoffs": sign,
        }

    async def missing_signoffs(self, who: Principal, node: str, day: date) -> dict:
        """包保 sign-offs missing on a day: listed per village (by pseudonym, with names for
        the village and town), and counted at every level of the subtree."""
        due = await self.due(who, node, day)
        missing = [s for s in due["signoffs"] if not s["complete"]]
        by_village: defaultdict[str, list] = defaultdict(list)
        for s in missing:
            by_village[s["village"]].append({**s, "team": [t for t in s["team"]
                                                            if t["signed_at"] is None]})
        counts: Counter[str] = Counter()
        for s in missing:
            for level in Level:
                if level >= level_of(node):
                    counts[s["village"][:CODE_LENGTHS[level]]] += 1
        return {"node": node, "day": day.isoformat(), "missing": len(missing),
                "under_control": len(due["signoffs"]),
                "villages": [{"village": v, "name": self.reference.nodes.get(v),
                              "people": p} for v, p in sorted(by_village.items())],
                "counts": dict(sorted(counts.items()))}

    async def stock(self, node: str, day: date) -> dict:
        """The day's headcounts from the ledger, per village and at every level of the
        subtree: by phase kind (the catalogue's metric; `plan.headcounts`), and by regime,
        phase and place."""
        async with self.sessions() as session:
            ids = await store.ids_on(session, node, day)
            files = await store.facts(session, ids)
            sites = {r.person_id: r.site for r in await store.rows_of(session, ids)}
        metrics = [*self.regimes.metrics, plan.SIGNOFF_MISSING]
        final = day < self.today()
        figures = plan.headcounts(self.regimes, files, day, level_of(node), final)
        detail: Counter[tuple[str, str, str, str]] = Counter()
        for f in files:
            span = plan.phase_on(self.regimes.regimes[f.regime], f, day)
            if span is not None:
                place = self._place(sites.get(uuid.UUID(f.person_id)), span.kind)
                detail[(f.village, f.regime, span.kind, place)] += 1
        return {"node": node, "day": day.isoformat(), "metrics": metrics, "final": final,
                "figures": {n: {m: c[m] for m in metrics} for n, c in sorted(figures.items())},
                "by_regime": [{"village": v, "regime": r, "phase": k, "place": p, "people": n}
                              for (v, r, k, p), n in sorted(detail.items())]}
