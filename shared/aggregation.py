"""How a metric's values combine: the one definition every rollup path reads.

Each metric of the catalogue names an aggregation kind (docs/architecture.md, "The metric
catalogue"): `sum` for counts, which add across units; `max` and `min` for values that do not
add up (highest temperature, days of supplies left), where the node keeps the extreme. A kind
says it three ways that must agree, and a test holds them to it:

- `combine`, the Python function that folds two values into one (the incremental rollup, the
  recompute from scratch, a range of days folded together);
- `sql`, the PostgreSQL aggregate function that folds a column of values the same way (the
  recount of a day, the recompute of a withdrawn extreme, the counts over unit records), put
  into SQL only through `sql_combine`;
- `additive`: a changed value moves the node by the difference (new - old). A kind that is not
  additive keeps an extreme, which a new value can only push further out; a correction that
  withdraws the extreme makes the node's value be recomputed (`withdraws`).

A metric the catalogue does not know is ignored everywhere: the door refuses it (the
catalogue's `unknown_metric`), so one can only reach the rollups through a catalogue changed
under stored reports, and then it counts nowhere rather than as a guessed kind.

Combining over units is the only axis today: a range of days folds with the same kinds. The
catalogue's aggregation over days (sum, last value, max, min, average) adds its kinds and a
second mapping here (`over_days`), without touching the callers' use of `over_units`.
"""

import json
import operator
from collections.abc import Callable, Iterable, Mapping
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


def over_days(catalogue: "Catalogue") -> MetricKinds:
    """Metric code → how a node's daily values combine over a range of days: today the same
    kinds as across units."""
    return over_units(catalogue)


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
