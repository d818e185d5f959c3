"""Rollup arithmetic: pure functions, no database and no broker.

A unit's latest applied report for a day contributes to its node and to every node above it,
each metric combined by its kind (shared/aggregation.py). Replacing one revision by the next
applies the difference: additive metrics and counts of reporting move by (new - old), extremes
only move further out, unless a correction pulls back (or removes) the value that may have been
the extreme, in which case that node's extreme is recomputed.

Completeness (docs/architecture.md, "Cutoffs, completeness, timeliness"): for every node and
day, the units expected (active that day and placed at or below the node), those that reported,
sent a zero report (零报告: counted as reported, and late when sent after the cutoff, like any
report), reported late (迟报), and the expected units with no report at all (漏报). A unit is
missing until its first report for the day arrives.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from functools import lru_cache

from shared.aggregation import Kind, MetricKinds, fold_days, fold_into, over_units
from shared.catalogue import Catalogue
from shared.hierarchy import ancestors, parent_of

NodeDay = tuple[str, date]
NodeDayMetric = tuple[str, date, str]


@lru_cache(maxsize=1 << 16)
def up(node: str) -> tuple[str, ...]:
    """The node and every node above it (a batch asks this thousands of times)."""
    return tuple(ancestors(node))


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
    """A node-day's completeness (or a change to it): units expected, reported, zero-reported,
    reported late and missing. Adds and subtracts field by field, e.g. over several days.

    A value, never changed in place (every operation returns a new one); not declared frozen
    because a frozen dataclass takes several times longer to build, and the projector builds
    one per unit report and per node-day of a batch."""

    expected: int = 0
    reported: int = 0
    zero: int = 0
    late: int = 0
    missing: int = 0

    # Written out rather than looped over fields: the projector adds these for every node-day.
    def __add__(self, other: "Counts") -> "Counts":
        return Counts(self.expected + other.expected, self.reported + other.reported,
                      self.zero + other.zero, self.late + other.late,
                      self.missing + other.missing)

    def __sub__(self, other: "Counts") -> "Counts":
        return Counts(self.expected - other.expected, self.reported - other.reported,
                      self.zero - other.zero, self.late - other.late,
                      self.missing - other.missing)

    def __bool__(self) -> bool:
        """False when every count is zero (a change that changes nothing)."""
        return bool(self.expected or self.reported or self.zero or self.late or self.missing)

    def as_dict(self) -> dict[str, int]:
        return {f: getattr(self, f) for f in COUNT_FIELDS}

    @property
    def on_time(self) -> int:
        return self.reported - self.late

    def rates(self) -> dict[str, float | None]:
        """Reporting rate (报告率) and on-time rate (及时率), from counts, never averaged."""
        if not self.expected:
            return {"reporting_rate": None, "on_time_rate": None}
        return {"reporting_rate": (self.expected - self.missing) / self.expected,
                "on_time_rate": self.on_time / self.expected}


COUNT_FIELDS = tuple(f.name for f in fields(Counts))


def reported(applied: "Applied", sign: int = 1) -> Counts:
    """What one unit's applied report adds to its node's counts (`sign` -1 takes it away)."""
    return Counts(0, sign, sign * applied.zero, sign * applied.late, 0)


MISSING_ENDED = Counts(missing=-1)


@dataclass(frozen=True)
class Effect:
    """What a batch changes, expanded to every level: ready to be written in one transaction."""

    sums: dict[NodeDayMetric, float]  # additive metrics: move by
    extremes: dict[Kind, dict[NodeDayMetric, float]]  # push the extreme of each kind out to
    counts: dict[NodeDay, Counts]  # changes to each node-day's completeness
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
    withdrawn: set[NodeDayMetric] = field(default_factory=set)
    touched: set[NodeDay] = field(default_factory=set)
    kinds: MetricKinds = field(init=False)

    def __post_init__(self) -> None:
        self.kinds = over_units(self.catalogue)

    def replace(self, old: Applied | None, new: Applied, expected_node: str | None = None) -> None:
        """`new` replaces `old` (None for a unit-day's first report). `expected_node` is where the
        registry expects the unit that day, if it does: its first report ends its being missing."""
        kinds = self.kinds
        if old is None:
            if expected_node is not None:
                self._count((expected_node, new.day), MISSING_ENDED)
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
        return {(above, day, code) for node, day, code in self.withdrawn for above in up(node)}

    def touched_everywhere(self) -> set[NodeDay]:
        return spread(self.touched)

    def effect(self) -> Effect:
        return Effect(
            {k: v for k, v in _spread(self.sums, float.__add__).items() if v},
            {kind: _spread(leaves, kind.combine) for kind, leaves in self.extremes.items()},
            {k: c for k, c in _spread(self.counts, Counts.__add__).items() if c},
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


def from_scratch(applied: Iterable[Applied], catalogue: Catalogue,
                 expected: Iterable[tuple[str, date, str]] = ()
                 ) -> tuple[dict[NodeDayMetric, float], dict[NodeDay, Counts]]:
    """The rollup invariant's other side: every node's figures computed from the latest revision
    of each unit's report and from the units expected (unit, day, node) by the registry."""
    kinds = over_units(catalogue)
    by_node: defaultdict[NodeDay, dict[str, float]] = defaultdict(dict)
    counts: defaultdict[NodeDay, Counts] = defaultdict(Counts)
    seen: set[tuple[str, date]] = set()
    for a in applied:
        seen.add((a.unit, a.day))
        for node in up(a.node):
            counts[(node, a.day)] += reported(a)
            fold_into(by_node[(node, a.day)], a.values, kinds)
    for unit, day, node in expected:
        roster = Counts(expected=1, missing=(unit, day) not in seen)
        for above in up(node):
            counts[(above, day)] += roster
    values = {(node, day, code): v
              for (node, day), by_code in by_node.items() for code, v in by_code.items()}
    return values, dict(counts)


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
