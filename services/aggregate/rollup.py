"""Rollup arithmetic: pure functions, no database and no broker.

A unit's latest applied report for a day contributes to its node and to every node above it.
Replacing one revision by the next applies the difference: sums move by (new - old), counts of
reporting move likewise, and max/min move monotonically unless a correction lowers (or removes)
the value that may have been the extreme, in which case that node's extreme is recomputed.

Completeness (DESIGN "Cutoffs, completeness, timeliness"): for every node and day, the units
expected (active that day and placed at or below the node), those that reported, sent a zero
report (零报告, counted as reported and on time), reported late (迟报), and the expected units
with no report at all (漏报). A unit is missing until its first report for the day arrives.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import NamedTuple

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


class Counts(NamedTuple):
    expected: int = 0
    reported: int = 0
    zero: int = 0
    late: int = 0
    missing: int = 0

    def __add__(self, other: tuple) -> "Counts":  # type: ignore[override]
        return Counts(*(a + b for a, b in zip(self, other, strict=True)))

    @property
    def on_time(self) -> int:
        return self.reported - self.late

    def rates(self) -> dict[str, float | None]:
        """Reporting rate (报告率) and on-time rate (及时率), from counts, never averaged."""
        if not self.expected:
            return {"reporting_rate": None, "on_time_rate": None}
        return {"reporting_rate": (self.expected - self.missing) / self.expected,
                "on_time_rate": self.on_time / self.expected}


@dataclass(frozen=True)
class Effect:
    """What a batch changes, expanded to every level: ready to be written in one transaction."""

    sums: dict[NodeDayMetric, float]
    highs: dict[NodeDayMetric, float]  # raise max to at least
    lows: dict[NodeDayMetric, float]  # lower min to at most
    counts: dict[NodeDay, tuple[int, int, int, int]]  # deltas: reported, zero, late, missing
    recompute: set[NodeDayMetric]  # extremes a correction may have withdrawn
    touched: set[NodeDay]  # every node-day whose figures may have moved


@dataclass
class Changes:
    """Accumulates replacements at each unit's own node (the leaves of the change): `effect()`
    spreads them up the hierarchy a level at a time, once per distinct node, which keeps a large
    batch cheap."""

    catalogue: Catalogue
    sums: defaultdict[NodeDayMetric, float] = field(default_factory=lambda: defaultdict(float))
    highs: dict[NodeDayMetric, float] = field(default_factory=dict)
    lows: dict[NodeDayMetric, float] = field(default_factory=dict)
    counts: defaultdict[NodeDay, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0]))
    withdrawn: set[NodeDayMetric] = field(default_factory=set)
    touched: set[NodeDay] = field(default_factory=set)

    def replace(self, old: Applied | None, new: Applied, expected_node: str | None = None) -> None:
        """`new` replaces `old` (None for a unit-day's first report). `expected_node` is where the
        registry expects the unit that day, if it does: its first report ends its being missing."""
        aggregation = _aggregations(self.catalogue)
        if old is None:
            if expected_node is not None:
                self.counts[(expected_node, new.day)][3] -= 1
                self.touched.add((expected_node, new.day))
        else:
            self._contribute(old, -1, aggregation)
            self._withdraw_extremes(old, new, aggregation)
        self._contribute(new, +1, aggregation)
        for code, value in new.values.items():
            agg = aggregation.get(code)
            if agg == "max":
                key = (new.node, new.day, code)
                self.highs[key] = max(self.highs.get(key, value), value)
            elif agg == "min":
                key = (new.node, new.day, code)
                self.lows[key] = min(self.lows.get(key, value), value)

    def _contribute(self, applied: Applied, sign: int, aggregation: dict[str, str]) -> None:
        key = (applied.node, applied.day)
        self.touched.add(key)
        counts = self.counts[key]
        counts[0] += sign
        counts[1] += sign * applied.zero
        counts[2] += sign * applied.late
        sums, node, day = self.sums, applied.node, applied.day
        for code, value in applied.values.items():
            if value and aggregation.get(code) == "sum":
                sums[(node, day, code)] += sign * value

    def _withdraw_extremes(self, old: Applied, new: Applied, aggregation: dict[str, str]) -> None:
        """Where the old value may have been the extreme and the new one is not as far out."""
        moved = old.node != new.node
        for code, was in old.values.items():
            agg = aggregation.get(code)
            if agg not in ("max", "min"):
                continue
            now = new.values.get(code)
            if moved or now is None or (was > now if agg == "max" else was < now):
                self.withdrawn.add((old.node, old.day, code))

    def recompute(self) -> set[NodeDayMetric]:
        """Every node-day-metric whose extreme a correction may have withdrawn."""
        return {(above, day, code) for node, day, code in self.withdrawn for above in up(node)}

    def touched_everywhere(self) -> set[NodeDay]:
        return spread(self.touched)

    def effect(self) -> Effect:
        counts = _spread(self.counts, lambda a, b: [x + y for x, y in zip(a, b, strict=True)])
        return Effect(
            {k: v for k, v in _spread(self.sums, float.__add__).items() if v},
            _spread(self.highs, max), _spread(self.lows, min),
            {k: (c[0], c[1], c[2], c[3]) for k, c in counts.items() if any(c)},
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


_AGGREGATIONS: dict[int, tuple[Catalogue, dict[str, str]]] = {}


def _aggregations(catalogue: Catalogue) -> dict[str, str]:
    """Metric code → aggregation, kept per catalogue (which is immutable but not hashable)."""
    found = _AGGREGATIONS.get(id(catalogue))
    if found is None or found[0] is not catalogue:
        found = _AGGREGATIONS[id(catalogue)] = (
            catalogue, {code: m.aggregation for code, m in catalogue.metrics.items()})
    return found[1]


def from_scratch(applied: Iterable[Applied], catalogue: Catalogue,
                 expected: Iterable[tuple[str, date, str]] = ()
                 ) -> tuple[dict[NodeDayMetric, float], dict[NodeDay, Counts]]:
    """The rollup invariant's other side: every node's figures computed from the latest revision
    of each unit's report and from the units expected (unit, day, node) by the registry."""
    aggregation = _aggregations(catalogue)
    values: dict[NodeDayMetric, float] = {}
    counts: defaultdict[NodeDay, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    reported: set[tuple[str, date]] = set()
    for a in applied:
        reported.add((a.unit, a.day))
        for node in up(a.node):
            c = counts[(node, a.day)]
            c[1] += 1
            c[2] += a.zero
            c[3] += a.late
            for code, value in a.values.items():
                agg = aggregation.get(code)
                key = (node, a.day, code)
                if agg == "sum":
                    values[key] = values.get(key, 0.0) + value
                elif agg == "max":
                    values[key] = max(values.get(key, value), value)
                elif agg == "min":
                    values[key] = min(values.get(key, value), value)
    for unit, day, node in expected:
        for above in up(node):
            c = counts[(above, day)]
            c[0] += 1
            c[4] += (unit, day) not in reported
    return values, {k: Counts(*c) for k, c in counts.items()}


@dataclass
class Figures:
    """A node's figures over one day or several: values by metric and the completeness counts."""

    values: dict[str, float] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)

    def fold(self, other: "Figures", catalogue: Catalogue) -> "Figures":
        """Several days together: sums add, extremes stay extremes, counts add (unit-days)."""
        aggregation = _aggregations(catalogue)
        values = dict(self.values)
        for code, value in other.values.items():
            agg = aggregation.get(code, "sum")
            if code not in values:
                values[code] = value
            elif agg == "max":
                values[code] = max(values[code], value)
            elif agg == "min":
                values[code] = min(values[code], value)
            else:
                values[code] += value
        return Figures(values, self.counts + other.counts)
