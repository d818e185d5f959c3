"""A person's file as the ledger reasons about it, without SQL, NATS or HTTP: where they are on
a day (which phase, so which headcount), which tests, releases and sign-offs are due when, and
which of those are met. The store (`services/ledger/store.py`) loads the facts, these functions
decide, and the use cases write what they say.

Days are local days of the deployment; a countdown's deadline is the end of its day (local
midnight): what is recorded during the day is on time (docs/architecture.md, "Time")."""

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.ledger.regimes import Regime, Regimes
from shared.hierarchy import CODE_LENGTHS, Level

TEST, RELEASE, SIGNOFF = "test", "release", "signoff"
# The alert kind each countdown raises when it passes unmet (shared/contracts.py AlertKind).
ALERT_KIND = {TEST: "test_overdue", RELEASE: "release_overdue", SIGNOFF: "team_signoff_missing"}


@dataclass(frozen=True, slots=True)
class Facts:
    """What is recorded of one person: enough to decide everything else."""

    person_id: str
    pseudonym: str
    category: str
    village: str
    regime: str
    start: date
    phase_ends: tuple[date, ...]  # the release day of each phase released so far, in order
    outcome: str | None  # set once the file is closed (销账)
    tests_done: frozenset[date]  # the days a test was taken
    team: frozenset[int]  # the seats of the team's members
    signed: dict[date, frozenset[int]]  # per day, the seats that signed

    @property
    def released_on(self) -> date | None:
        """The day the file was closed, if it is."""
        return self.phase_ends[-1] if self.outcome is not None and self.phase_ends else None


@dataclass(frozen=True, slots=True)
class Span:
    index: int
    kind: str
    starts: date
    planned_end: date  # the day it should be released: starts + its days
    ended: date | None  # the day it was released


def spans(regime: Regime, facts: Facts) -> list[Span]:
    """The phases reached so far: every released one, and the current one (none once closed).
    A phase starts the day the one before it was released."""
    out, starts = [], facts.start
    for i, plan in enumerate(regime.phases):
        ended = facts.phase_ends[i] if i < len(facts.phase_ends) else None
        out.append(Span(i, plan.kind, starts, starts + timedelta(days=plan.days), ended))
        if ended is None:
            break
        starts = ended
    return out


def current(regime: Regime, facts: Facts) -> Span | None:
    if facts.outcome is not None:
        return None
    last = spans(regime, facts)[-1]
    return last if last.ended is None else None


def planned_release(regime: Regime, facts: Facts) -> date:
    """The day the whole regime should end, from the phases as released so far."""
    reached = spans(regime, facts)
    last = reached[-1]
    end = last.ended if last.ended is not None else last.planned_end
    rest = regime.phases[last.index + 1:]
    return end + timedelta(days=sum(p.days for p in rest))


def phase_on(regime: Regime, facts: Facts, day: date) -> Span | None:
    """The phase a person is counted under on `day`: the one that started on or before it and
    was not released by then (released on day R: counted in the next phase from R on). Before
    the start and from the final release on, none."""
    for span in spans(regime, facts):
        if span.starts <= day and (span.ended is None or day < span.ended):
            return span if facts.outcome is None or span.ended is not None else None
    return None


def end_of(day: date, zone: ZoneInfo) -> datetime:
    """A day's deadline: its last instant is on time, the next day's midnight is not."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)


@dataclass(frozen=True, slots=True)
class Countdown:
    key: str
    kind: str  # test, release, signoff
    day: date
    group: str  # the alert it joins when it passes: its own, or the village's day of sign-offs
    met: bool
    details: dict

    @property
    def alert_kind(self) -> str:
        return ALERT_KIND[self.kind]


def countdowns(regimes: Regimes, facts: Facts, today: date) -> list[Countdown]:
    """Every countdown the file holds now: the regime's tests (those before a closing), the
    tests after a completed regime, the current phase's release, and the team's sign-off for
    each day under control (up to today while a stay runs past its plan). A countdown the file
    no longer holds (a test after an early closing) is withdrawn by the caller."""
    regime = regimes.regimes[facts.regime]
    pid, out = facts.person_id, []
    closed = facts.released_on

    def add(kind: str, day: date, met: bool, group: str | None = None, **details) -> None:
        key = f"{kind}:{pid}:{day.isoformat()}"
        out.append(Countdown(key, kind, day, group or key, met, {"day": day.isoformat(),
                                                                 **details}))

    for offset in regime.test_days:
        day = facts.start + timedelta(days=offset)
        if closed is None or day <= closed:
            add(TEST, day, day in facts.tests_done, test_day=offset)
    if closed is not None and facts.outcome == "completed":
        for offset in regime.tests_after_release:
            day = closed + timedelta(days=offset)
            add(TEST, day, day in facts.tests_done, after_release=offset)
    for span in spans(regime, facts):
        if span.ended is not None or closed is None:  # released (met), or the current phase
            add(RELEASE, span.planned_end, span.ended is not None, phase=span.kind,
                phase_index=span.index)
    last = (closed - timedelta(days=1)) if closed is not None else max(
        planned_release(regime, facts) - timedelta(days=1), today)
    day = facts.start
    while day <= last:
        signed = facts.signed.get(day, frozenset())
        add(SIGNOFF, day, bool(facts.team) and facts.team <= signed,
            group=f"{SIGNOFF}:{facts.village}:{day.isoformat()}",
            missing=sorted(facts.team - signed))
        day += timedelta(days=1)
    return out


SIGNOFF_MISSING = "control_signoff_missing"  # the catalogue's count of people not signed for


def signed_off(facts: Facts, day: date) -> bool:
    """Whether every member of the team signed the day (a file without a team never is)."""
    return bool(facts.team) and facts.team <= facts.signed.get(day, frozenset())


def headcounts(regimes: Regimes, files: list[Facts], day: date, top: Level = Level.PROVINCE,
               final: bool = True) -> dict[str, Counter[str]]:
    """The day's figures of every node from `top` down to each village: the people in each
    kind of phase (its catalogue metric) and, once the day is `final` (over), those whose team
    did not all sign. The one definition: the ledger's reports and `rollcall reconcile` both
    count with it."""
    out: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for f in files:
        span = phase_on(regimes.regimes[f.regime], f, day)
        if span is None:
            continue
        metrics = [regimes.phase_kinds[span.kind].metric]
        if final and not signed_off(f, day):
            metrics.append(SIGNOFF_MISSING)
        for level in Level:
            if level >= top:
                for metric in metrics:
                    out[f.village[:CODE_LENGTHS[level]]][metric] += 1
    return out
