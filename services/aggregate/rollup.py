"""Rollup arithmetic: pure functions, no database and no broker.

A unit's latest applied report for a day contributes to its node and to every node above it,
each metric combined by its kind (shared/aggregation.py). Replacing one revision by the next
applies the difference: additive metrics and counts of reporting move by (new - old), extremes
only move further out, unless a correction pulls back (or removes) the value that may have been
the extreme, in which case that node's extreme is recomputed.

Completeness (docs/architecture.md, "Cutoffs, completeness, timeliness"): for every node and
day, the units expected (active that day, placed at or below the node, not exempt), those that
reported, sent a zero report (零报告: counted as reported, and late when sent after the cutoff,
like any report), reported late (迟报), the expected units with no report yet whose cutoff has
not passed (待报) or has (漏报), and the units exempt that day (免报). Which state a unit is in at
an instant is `shared/deadlines.py` `day_state`.

What a node-day keeps does not depend on the clock: its expected units not yet reported are
counted by cutoff (`Tally.unreported`), and `Tally.at` splits them into pending and missing at
the instant asked, so the passing of a cutoff rewrites nothing.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, time
from functools import lru_cache

from shared.aggregation import Kind, MetricKinds, fold_days, fold_into, over_units
from shared.catalogue import Catalogue
from shared.deadlines import DayState, Moment
from shared.hierarchy import ancestors, parent_of

NodeDay = tuple[str, date]
NodeDayMetric = tuple[str, date, str]
NodeDayCutoff = tuple[str, date, str]  # the cutoff as stored: "10:00:00"




def spread(node_days: Iterable[NodeDay]) -> set[NodeDay]:
    """These node-days and every node-day above them; each parent is found once per level."""
    out: set[NodeDay] = set()
    level = set(node_days)
    while level:
        out |= level
        level = {(parent, day) for node, day in level
                 if (parent := parent_of(node)) is not None} - out
    return out


@dataclass(frozen=True, slots=True)
class Applied:
    """The revision of a unit's report for a day that the rollups currently include."""

    unit: str
    day: date
    revision: int
    node: str
    values: Mapping[str, float]
    zero: bool
    late: bool


@dataclass(slots=True)
class Counts:
    """A node-day's completeness at an instant (or a change to it): units expected, reported,
    zero-reported, reported late, missing (漏报), pending (待报) and exempt (免报). Adds and
    subtracts field by field, e.g. over several days.

    A value, never changed in place (every operation returns a new one); not declared frozen
    because a frozen dataclass takes several times longer to build, and the projector builds
    one per unit report and per node-day of a batch."""

    expected: int = 0
    reported: int = 0
    zero: int = 0
    late: int = 0
    missing: int = 0
    pending: int = 0
    exempt: int = 0

    # Written out rather than looped over fields: the projector adds these for every node-day.
    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.expected + other.expected, self.reported + other.reported,
                      self.zero + other.zero, self.late + other.late,
                      self.missing + other.missing, self.pending + other.pending,
                      self.exempt + other.exempt)

    def __sub__(self, other: "Counts") -> "Counts":
        return Counts(self.expected - other.expected, self.reported - other.reported,
                      self.zero - other.zero, self.late - other.late,
                      self.missing - other.missing, self.pending - other.pending,
                      self.exempt - other.exempt)

    def __bool__(self) -> bool:
        """False when every count is zero (a change that changes nothing)."""
        return bool(self.expected or self.reported or self.zero or self.late or self.missing
                    or self.pending or self.exempt)

    def as_dict(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in COUNT_FIELDS}

    @property
    def on_time(self) -> int:
        return self.reported - self.late

    @property
    def due(self) -> int:
        """Expected units whose day is decided so far: reported, or missing once their cutoff
        passed (the pending ones are not due yet)."""
        return self.expected - self.pending

    def rates(self) -> dict[str, float | None]:
        """Reporting rate (报告率) and on-time rate (及时率) over the units due so far, and the
        day's final reporting rate over every expected unit, once none is pending (after the
        last cutoff). From counts, never averaged."""
        due, expected = self.due, self.expected
        reported = due - self.missing  # expected units that reported
        return {"reporting_rate": reported / due if due else None,
                "on_time_rate": self.on_time / due if due else None,
                "final_reporting_rate": (reported / expected
                                         if expected and not self.pending else None)}


COUNT_FIELDS = tuple(f.name for f in fields(Counts))


def reported(applied: "Applied", sign: int = 1) -> Counts:
    """What one unit's applied report adds to its node's counts (`sign` -1 takes it away)."""
    return Counts(0, sign, sign * applied.zero, sign * applied.late, 0)


@lru_cache(maxsize=256)
def _cutoff(stored: str) -> time:
    return time.fromisoformat(stored)


def cutoff_key(cutoff: time) -> str:
    """How a cutoff is stored in `Tally.unreported` (PostgreSQL's text form of a time)."""
    return cutoff.isoformat()


@dataclass(slots=True)
class Tally:
    """What a node-day keeps of its completeness, independent of the clock: the units expected,
    reported, zero, late and exempt, and the expected units not reported yet by cutoff."""

    expected: int = 0
    reported: int = 0
    zero: int = 0
    late: int = 0
    exempt: int = 0
    unreported: dict[str, int] = field(default_factory=dict)

    def at(self, day: date, moment: Moment) -> Counts:
        """The counts at `moment`: the unreported units whose cutoff has passed are missing,
        the others pending."""
        pending = missing = 0
        for cutoff, n in self.unreported.items():
            if moment.cutoff_passed(day, _cutoff(cutoff)):
                missing += n
            else:
                pending += n
        return Counts(self.expected, self.reported, self.zero, self.late, missing, pending,
                      self.exempt)


def moved(unreported: Mapping[str, int], changes: Mapping[str, int]) -> dict[str, int]:
    """A node-day's unreported units by cutoff after `changes`; cutoffs left at zero dropped."""
    out = dict(unreported)
    for cutoff, n in changes.items():
        out[cutoff] = out.get(cutoff, 0) + n
        if not out[cutoff]:
            del out[cutoff]
    return out


@dataclass(frozen=True)
class Effect:
    """What a batch changes, expanded to every level: ready to be written in one transaction."""

    sums: dict[NodeDayMetric, float]  # additive metrics: move by
    extremes: dict[Kind, dict[NodeDayMetric, float]]  # push the extreme of each kind out to
    counts: dict[NodeDay, Counts]  # changes to each node-day's completeness
    unreported: dict[NodeDayCutoff, int]  # changes to its expected units not reported, by cutoff
    recompute: set[NodeDayMetric]  # extremes a correction may have withdrawn
    touched: set[NodeDay]  # every node-day whose figures may have moved


@dataclass
class Changes:
    """Accumulates replacements at each unit's own node (the leaves of the change): `effect()`
    spreads them up the hierarchy a level at a time, once per distinct node, which keeps a large
    batch cheap."""

    catalogue: Catalogue
    sums: defaultdict[NodeDayMetric, float] = field(default_factory=lambda: defaultdict(float))
    extremes: defaultdict[Kind, dict[NodeDayMetric, float]] = field(
        default_factory=lambda: defaultdict(dict))
    counts: dict[NodeDay, Counts] = field(default_factory=dict)
    unreported: defaultdict[NodeDayCutoff, int] = field(default_factory=lambda: defaultdict(int))
    withdrawn: set[NodeDayMetric] = field(default_factory=set)
    touched: set[NodeDay] = field(default_factory=set)
    kinds: MetricKinds = field(init=False)

    def __post_init__(self) -> None:
        self.kinds = over_units(self.catalogue)

    def replace(self, old: Applied | None, new: Applied,
                expected: tuple[str, str] | None = None) -> None:
        """`new` replaces `old` (None for a unit-day's first report). `expected` is where the
        registry expects the unit that day and its cutoff (as stored), if it expects it: its
        first report ends its being unreported there."""
        kinds = self.kinds
        if old is None:
            if expected is not None:
                node, cutoff = expected
                self.touched.add((node, new.day))
                self.unreported[(node, new.day, cutoff)] -= 1
        else:
            self._contribute(old, -1, kinds)
            self._withdraw_extremes(old, new, kinds)
        self._contribute(new, +1, kinds)

    def _count(self, key: NodeDay, change: Counts) -> None:
        self.touched.add(key)
        counts = self.counts
        counts[key] = counts[key] + change if key in counts else change

    def _contribute(self, applied: Applied, sign: int, kinds: MetricKinds) -> None:
        """An additive metric moves by its value (either sign); an extreme only moves further
        out, so taking a report away (sign -1) leaves extremes to `_withdraw_extremes`."""
        node, day = applied.node, applied.day
        self._count((node, day), reported(applied, sign))
        for code, value in applied.values.items():
            kind = kinds.get(code)
            if kind is None:
                continue
            at = (node, day, code)
            if kind.additive:
                if value:
                    self.sums[at] += sign * value
            elif sign > 0:
                further = self.extremes[kind]
                was = further.get(at)
                further[at] = value if was is None else kind.combine(was, value)

    def _withdraw_extremes(self, old: Applied, new: Applied, kinds: MetricKinds) -> None:
        """Where the old value may have been the extreme and the new one is not as far out."""
        moved = old.node != new.node
        for code, was in old.values.items():
            kind = kinds.get(code)
            if kind is None or kind.additive:
                continue
            now = new.values.get(code)
            if moved or now is None or kind.withdraws(was, now):
                self.withdrawn.add((old.node, old.day, code))

    def recompute(self) -> set[NodeDayMetric]:
        """Every node-day-metric whose extreme a correction may have withdrawn."""
        return {(above, day, code) for node, day, code in self.withdrawn
                for above in ancestors(node)}

    def touched_everywhere(self) -> set[NodeDay]:
        return spread(self.touched)

    def effect(self) -> Effect:
        return Effect(
            {k: v for k, v in _spread(self.sums, float.__add__).items() if v},
            {kind: _spread(leaves, kind.combine) for kind, leaves in self.extremes.items()},
            {k: c for k, c in _spread(self.counts, Counts.__add__).items() if c},
            {k: n for k, n in _spread(self.unreported, int.__add__).items() if n},
            self.recompute(), self.touched_everywhere())


_PARENT_LENGTH = {12: 9, 9: 6, 6: 4, 4: 2}


def _spread(leaves: Mapping, combine: Callable) -> dict:
    """Values keyed by (node, day, ...) combined into every node above, one level at a time, so
    that siblings meet in their parent before going further up."""
    out: dict = {}
    level = leaves
    while level:
        above: dict = {}
        for key, value in level.items():
            out[key] = combine(out[key], value) if key in out else value
            parent_length = _PARENT_LENGTH.get(len(key[0]))
            if parent_length is not None:
                parent = (key[0][:parent_length], *key[1:])
                above[parent] = combine(above[parent], value) if parent in above else value
        level = above
    return out


Roster = Iterable[tuple[str, date, str, time, bool]]  # unit, day, node, cutoff, exempt


def from_scratch(applied: Iterable[Applied], catalogue: Catalogue, expected: Roster = (),
                 moment: Moment | None = None
                 ) -> tuple[dict[NodeDayMetric, float], dict[NodeDay, Counts]]:
    """The rollup invariant's other side: every node's figures computed from the latest revision
    of each unit's report and from the units the registry places (unit, day, node, cutoff,
    exempt), each in its state at `moment` (`shared/deadlines.py` `day_state`; without a
    moment, the units not reported are counted as missing)."""
    kinds = over_units(catalogue)
    by_node: defaultdict[NodeDay, dict[str, float]] = defaultdict(dict)
    counts: defaultdict[NodeDay, Counts] = defaultdict(Counts)
    seen: set[tuple[str, date]] = set()
    for a in applied:
        seen.add((a.unit, a.day))
        for node in ancestors(a.node):
            counts[(node, a.day)] += reported(a)
            fold_into(by_node[(node, a.day)], a.values, kinds)
    for unit, day, node, cutoff, exempt in expected:
        state = (moment.state(day, cutoff, reported=(unit, day) in seen, exempt=exempt)
                 if moment is not None else
                 DayState.EXEMPT if exempt else
                 DayState.REPORTED if (unit, day) in seen else DayState.MISSING)
        roster = ROSTER[state]
        for above in ancestors(node):
            counts[(above, day)] += roster
    values = {(node, day, code): v
              for (node, day), by_code in by_node.items() for code, v in by_code.items()}
    return values, dict(counts)


ROSTER = {DayState.EXEMPT: Counts(exempt=1), DayState.REPORTED: Counts(expected=1),
          DayState.PENDING: Counts(expected=1, pending=1),
          DayState.MISSING: Counts(expected=1, missing=1)}


@dataclass
class Figures:
    """A node's figures over one day or several: values by metric and the completeness counts."""

    values: dict[str, float] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)

    @classmethod
    def over_days(cls, days: Iterable["Figures"], catalogue: Catalogue) -> "Figures":
        """Several days together, given in day order: each metric combines over days by its
        second kind (`shared.aggregation.fold_days`: a flow sums, a stock is its last day's
        figure, never a sum), and the counts add (unit-days)."""
        days = list(days)
        values = fold_days(((d.values, d.counts.reported > 0) for d in days), catalogue)
        counts = Counts()
        for d in days:
            counts = counts + d.counts
        return cls(values, counts)
