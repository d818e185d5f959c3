"""Rollup arithmetic: pure functions, no database and no broker.

A unit's latest applied report for a day contributes to its node and to every node above it.
Replacing one revision by the next applies the difference: sums move by (new - old), counts of
reporting move likewise, and max/min move monotonically unless a correction lowers (or removes)
the value that may have been the extreme, in which case that node's extreme is recomputed.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from shared.catalogue import Catalogue
from shared.hierarchy import ancestors

NodeDay = tuple[str, date]
NodeDayMetric = tuple[str, date, str]


@dataclass(frozen=True, slots=True)
class Applied:
    """The revision of a unit's report for a day that the rollups currently include."""

    unit: str
    day: date
    revision: int
    node: str
    values: dict[str, float]
    zero: bool
    late: bool


@dataclass
class Changes:
    """The net effect of a batch of replacements, ready to be written in one transaction."""

    sums: defaultdict[NodeDayMetric, float] = field(default_factory=lambda: defaultdict(float))
    counts: defaultdict[NodeDay, list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0]))  # reported, zero, late
    highs: dict[NodeDayMetric, float] = field(default_factory=dict)  # raise max to at least
    lows: dict[NodeDayMetric, float] = field(default_factory=dict)  # lower min to at most
    recompute: set[NodeDayMetric] = field(default_factory=set)

    def replace(self, old: Applied | None, new: Applied, catalogue: Catalogue) -> None:
        if old is not None:
            self._contribute(old, -1, catalogue)
            self._withdraw_extremes(old, new, catalogue)
        self._contribute(new, +1, catalogue)
        for code in catalogue.by_aggregation["max"]:
            if code in new.values:
                for node in ancestors(new.node):
                    key = (node, new.day, code)
                    self.highs[key] = max(self.highs.get(key, new.values[code]), new.values[code])
        for code in catalogue.by_aggregation["min"]:
            if code in new.values:
                for node in ancestors(new.node):
                    key = (node, new.day, code)
                    self.lows[key] = min(self.lows.get(key, new.values[code]), new.values[code])

    def _contribute(self, applied: Applied, sign: int, catalogue: Catalogue) -> None:
        for node in ancestors(applied.node):
            counts = self.counts[(node, applied.day)]
            counts[0] += sign
            counts[1] += sign * applied.zero
            counts[2] += sign * applied.late
            for code in catalogue.by_aggregation["sum"]:
                value = applied.values.get(code)
                if value:
                    self.sums[(node, applied.day, code)] += sign * value

    def _withdraw_extremes(self, old: Applied, new: Applied, catalogue: Catalogue) -> None:
        """Where the old value may have been the extreme and the new one is not as far out."""
        moved = old.node != new.node
        for agg, further in (("max", float.__gt__), ("min", float.__lt__)):
            for code in catalogue.by_aggregation[agg]:
                if code not in old.values:
                    continue
                was, now = float(old.values[code]), new.values.get(code)
                if moved or now is None or further(was, float(now)):
                    self.recompute.update((node, old.day, code) for node in ancestors(old.node))


def from_scratch(applied: Iterable[Applied], catalogue: Catalogue
                 ) -> tuple[dict[NodeDayMetric, float], dict[NodeDay, tuple[int, int, int]]]:
    """The rollup invariant's other side: every node's totals computed from the latest revisions."""
    values: dict[NodeDayMetric, float] = {}
    counts: defaultdict[NodeDay, list[int]] = defaultdict(lambda: [0, 0, 0])
    for a in applied:
        for node in ancestors(a.node):
            c = counts[(node, a.day)]
            c[0] += 1
            c[1] += a.zero
            c[2] += a.late
            for code, value in a.values.items():
                metric = catalogue.metrics[code]
                key = (node, a.day, code)
                if metric.aggregation == "sum":
                    values[key] = values.get(key, 0.0) + value
                elif metric.aggregation == "max":
                    values[key] = max(values.get(key, value), value)
                else:
                    values[key] = min(values.get(key, value), value)
    return values, {k: (c[0], c[1], c[2]) for k, c in counts.items()}
