"""How a metric's values combine: the one definition every rollup path reads.

Each metric of the catalogue names an aggregation kind (docs/architecture.md, "The metric
catalogue"): `sum` for counts, which add across units; `max` and `min` for values that do not
add up (highest temperature, days of supplies left), where the node keeps the extreme. A kind
says it three ways that must agree, and a test holds them to it:

- `combine`, the Python function that folds two values into one (the incremental rollup, the
  recompute from scratch);
- `sql`, the PostgreSQL aggregate function that folds a column of values the same way (the
  recount of a day, the recompute of a withdrawn extreme, the counts over unit records), put
  into SQL only through `sql_combine`;
- `additive`: a changed value moves the node by the difference (new - old). A kind that is not
  additive keeps an extreme, which a new value can only push further out; a correction that
  withdraws the extreme makes the node's value be recomputed (`withdraws`).

A metric the catalogue does not know is ignored everywhere: the door refuses it (the
catalogue's `unknown_metric`), so one can only reach the rollups through a catalogue changed
under stored reports, and then it counts nowhere rather than as a guessed kind.

Over days, a metric combines by its second kind (`over_days`, like DHIS2's aggregation over
periods): `sum` for flows (new fever cases), `last` for stocks (people under observation: the
figure of the range's last day with reports, never their sum), `max`, `min`, and `average`
per day (over the days with a figure). A node's daily figure is what `over_units` gave for
that day; on a day the node has reports, a summed metric it lacks is zero (a sum of zeros is
not stored), otherwise the day has no figure for it. `fold_days` is the one definition; the
range rollups and every answer over several days read it.
"""

import json
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the catalogue imports this module for the names of the kinds
    from shared.catalogue import Catalogue


# One object per kind: compared and hashed by identity (a batch looks kinds up by the thousand).
@dataclass(frozen=True, slots=True, eq=False)
class Kind:
    """One way of combining values: its name in the catalogue, in Python and in SQL."""

    name: str
    combine: Callable[[float, float], float]
    sql: str  # the PostgreSQL aggregate function over a column of values
    additive: bool

    def fold(self, values: Iterable[float]) -> float | None:
        """All the values combined; None for none (what the SQL aggregate gives for no row)."""
        out: float | None = None
        for value in values:
            out = value if out is None else self.combine(out, value)
        return out

    def withdraws(self, was: float, now: float) -> bool:
        """Replacing `was` by `now` may take away the node's extreme: `was` lay further out."""
        return not self.additive and self.combine(was, now) != now


SUM = Kind("sum", operator.add, "sum", additive=True)
MAX = Kind("max", max, "max", additive=False)
MIN = Kind("min", min, "min", additive=False)
KINDS: dict[str, Kind] = {k.name: k for k in (SUM, MAX, MIN)}

MetricKinds = Mapping[str, Kind]  # metric code → its kind; a code not in it is ignored


_OVER_UNITS: dict[int, tuple["Catalogue", dict[str, Kind]]] = {}


def over_units(catalogue: "Catalogue") -> MetricKinds:
    """Metric code → how its values combine across units, kept per catalogue (immutable, but
    not hashable): the projector asks this for every batch."""
    found = _OVER_UNITS.get(id(catalogue))
    if found is None or found[0] is not catalogue:
        found = _OVER_UNITS[id(catalogue)] = (
            catalogue, {code: KINDS[m.aggregation] for code, m in catalogue.metrics.items()})
    return found[1]


@dataclass(frozen=True, slots=True, eq=False)
class DayKind:
    """One way of combining a node's daily figures over a range of days, given in day order
    (days without a figure left out)."""

    name: str
    reduce: Callable[[Sequence[float]], float]


DAY_KINDS: dict[str, DayKind] = {k.name: k for k in (
    DayKind("sum", sum),
    DayKind("last", lambda daily: daily[-1]),
    DayKind("max", max),
    DayKind("min", min),
    DayKind("average", lambda daily: sum(daily) / len(daily)),
)}


@dataclass(frozen=True, slots=True)
class Aggregation:
    """How one metric combines: across units (a Kind), then over days (a DayKind)."""

    over_units: Kind
    over_days: DayKind


_OVER_DAYS: dict[int, tuple["Catalogue", dict[str, Aggregation]]] = {}


def over_days(catalogue: "Catalogue") -> Mapping[str, Aggregation]:
    """Metric code → both of its kinds, kept per catalogue like `over_units`."""
    found = _OVER_DAYS.get(id(catalogue))
    if found is None or found[0] is not catalogue:
        found = _OVER_DAYS[id(catalogue)] = (catalogue, {
            code: Aggregation(KINDS[m.aggregation], DAY_KINDS[m.over_days])
            for code, m in catalogue.metrics.items()})
    return found[1]


def fold_days(days: Iterable[tuple[Mapping[str, float], bool]],
              catalogue: "Catalogue") -> dict[str, float]:
    """A node's figures over a range: `days` gives, in day order, each day's values and whether
    the node had any report that day. A summed metric missing from a day with reports is zero
    that day (zero sums are not stored); an extreme missing is no figure. A metric no day has
    a figure for is left out, as are unknown metrics."""
    aggregations = over_days(catalogue)
    days = list(days)
    present = {code for values, _ in days for code in values if code in aggregations}
    out: dict[str, float] = {}
    for code in present:
        additive = aggregations[code].over_units.additive
        daily = [value for values, reported in days
                 if (value := values.get(code, 0 if reported and additive else None))
                 is not None]
        out[code] = aggregations[code].over_days.reduce(daily)
    return out


def fold_into(into: dict[str, float], values: Mapping[str, float], kinds: MetricKinds) -> None:
    """Combine `values` into `into`, metric by metric; unknown metrics are left out."""
    for code, value in values.items():
        kind = kinds.get(code)
        if kind is not None:
            was = into.get(code)
            into[code] = value if was is None else kind.combine(was, value)


def sql_combine(kind_name: str, value: str) -> str:
    """An SQL expression that aggregates the column `value` by the kind named by the SQL
    expression `kind_name` (NULL for a name that is no kind): one CASE branch per kind."""
    branches = " ".join(f"WHEN '{k.name}' THEN {k.sql}({value})" for k in KINDS.values())
    return f"CASE {kind_name} {branches} END"


def sql_kinds(kinds: MetricKinds) -> str:
    """The metric → kind name mapping as a JSON object, the parameter `sql_combine` reads with
    `CAST(:kinds AS jsonb) ->> metric` (a metric not in it gives NULL: ignored)."""
    return json.dumps({code: kind.name for code, kind in kinds.items()},
                      separators=(",", ":"))


def is_flow(code: str, catalogue: "Catalogue") -> bool:
    """A flow adds up over days (new cases, tests done); its running total (累计) means
    something. A stock (people under observation) or an extreme has none."""
    aggregation = over_days(catalogue).get(code)
    return aggregation is not None and aggregation.over_days is DAY_KINDS["sum"]


def running_totals(days: Iterable[Mapping[str, float]],
                   catalogue: "Catalogue") -> list[dict[str, float]]:
    """The running totals (累计) of the flows: for each day given in day order, each flow's sum
    from the first day given to that one (a day without the metric adds nothing). Stocks and
    extremes are left out: a running sum of headcounts counts people many times over."""
    flows = {code for code in over_days(catalogue) if is_flow(code, catalogue)}
    total: dict[str, float] = {}
    out = []
    for values in days:
        for code, value in values.items():
            if code in flows:
                total[code] = total.get(code, 0) + value
        out.append(dict(total))
    return out
