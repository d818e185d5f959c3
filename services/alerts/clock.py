"""The alert clock: pure functions of time and the rules, no database and no broker.

The two-hour rule (docs/architecture.md, "The path of a fever case"): every case opens
an alert whose deadline is its found-time + 2 h; an alert nobody acknowledges in time escalates
to the level above (village → town → county); a case that arrives already past its deadline is
flagged late at once and escalated.

An alert's clock is a fixed schedule computed from its deadline: a warning `warning_before` the
deadline, then each escalation step. The database keeps only how far along the schedule an
alert is (its stage) and when the next step is due, so the schedule itself is never stored and a
change of rules applies to the steps not yet taken.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from shared.catalogue import Catalogue
from shared.deadlines import case_deadline, cutoff_instant, is_past
from shared.hierarchy import ancestors, level_of
from shared.rules import Rules


@dataclass(frozen=True, slots=True)
class Step:
    index: int  # position in the schedule; an alert's stage is the index of its next step
    action: Literal["warn", "escalate"]
    at: datetime
    levels_up: int = 0


def schedule(deadline: datetime, rules: Rules) -> list[Step]:
    steps = [Step(0, "warn", deadline - rules.warning_before)]
    steps += [Step(i, "escalate", deadline + s.after_deadline, s.levels_up)
              for i, s in enumerate(rules.escalation, 1)]
    return steps


def next_due(deadline: datetime, stage: int, rules: Rules) -> datetime | None:
    """When the alert's clock must next act; None when every step has been taken."""
    steps = schedule(deadline, rules)
    return steps[stage].at if stage < len(steps) else None


def due(deadline: datetime, stage: int, now: datetime, rules: Rules) -> tuple[list[Step], int]:
    """The steps to take at `now` from `stage` on, in order, and the stage that follows.

    A step is due once its moment has passed (`deadlines.is_past`), like any deadline: an
    escalation for "not acknowledged in time" comes only after the deadline, so an operator who
    acknowledges at the deadline itself was in time. Steps that came due together (after an
    outage, or for a late case) are all taken, except a warning whose deadline has already
    passed: the escalation says more, and a "30 minutes left" that arrives after the deadline
    would mislead."""
    pending = [s for s in schedule(deadline, rules)[stage:] if is_past(s.at, now)]
    if not pending:
        return [], stage
    new_stage = pending[-1].index + 1
    if any(s.action == "escalate" for s in pending):
        pending = [s for s in pending if s.action != "warn"]
    return pending, new_stage


def deadline_for(start: datetime, topic: str, unit_type: str | None, rules: Rules) -> datetime:
    """`topic` is the case kind (fever, ili), `outbreak` or `missing_report`; every clock's
    length comes from the one deadline rule."""
    return case_deadline(start, topic, unit_type, rules)


def escalation_target(node: str, levels_up: int) -> str:
    """The node `levels_up` above `node` (the province at most)."""
    chain = ancestors(node)
    return chain[max(0, len(chain) - 1 - levels_up)]


def level_name(node: str) -> str:
    return level_of(node).name.lower()


# --- outbreaks (流感样病例暴发) -------------------------------------------------------------


def unit_day_count(from_cases: int, from_report: float | None) -> int:
    """A unit's flu-like cases on a day: the larger of the case events and the daily report's
    count, so a case sent as an event and counted again in the report is counted once."""
    return max(from_cases, int(from_report or 0))


def window_total(counts: Mapping[date, int], day: date, rules: Rules,
                 after: date | None = None) -> int:
    """Flu-like cases of one unit in the window ending on `day`, counting only days after
    `after` (the day the unit's previous outbreak alert was closed: a closed outbreak's cases
    do not open a new one)."""
    first = day - timedelta(days=rules.outbreak_window_days - 1)
    return sum(n for d, n in counts.items()
               if first <= d <= day and (after is None or d > after))


def is_outbreak(total: int, rules: Rules) -> bool:
    return total >= rules.outbreak_threshold


# --- missing reports (漏报) -----------------------------------------------------------------


def cutoffs_due(now: datetime, zone: ZoneInfo, cutoffs: Iterable[time],
                rules: Rules) -> list[tuple[date, time]]:
    """(day, cutoff) pairs whose check is due at `now`: the cutoff and the grace period after it
    have passed (local time, `deadlines.is_past`: a report at the cutoff is on time), on today
    or on up to `catch_up_days` days before."""
    today = now.astimezone(zone).date()
    out = []
    for back in range(rules.missing_catch_up_days, -1, -1):
        day = today - timedelta(days=back)
        for cutoff in sorted(set(cutoffs)):
            if is_past(cutoff_instant(day, cutoff, zone) + rules.missing_grace, now):
                out.append((day, cutoff))
    return out



# --- supplies below a stock level (物资储备不足) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class StockReading:
    """What one unit's report says of one stock level of a node above it: `below` when its
    figure is under the level's minimum, else (a figure at or above it, or none) not below."""

    node: str
    metric: str
    stock_level: str  # the catalogue's code of the level, e.g. town_reserve_15_days
    minimum: float
    unit: str
    day: date
    revision: int
    value: float | None
    below: bool

    @property
    def key(self) -> str:
        """One supply alert per node, metric and day: redelivery and a second unit below open
        nothing new."""
        return f"supply_low:{self.node}:{self.metric}:{self.day.isoformat()}"


def stock_readings(catalogue: Catalogue, unit: str, node: str, day: date, revision: int,
                   values: Mapping[str, float]) -> list[StockReading]:
    """Each stock level of the catalogue at a level of `node` or above, as this report bears on
    it (docs/architecture.md, "Each rule has one home": `Catalogue.below_minimum` decides).

    A node's days of supplies combine across units by `min`, so the node is below a level's
    minimum exactly when some unit placed below it reports a figure under that minimum: one
    accepted report is enough to decide, with no rollup read, and the node is back above once
    the latest report of every unit that was below is at or above it."""
    readings = []
    for above in ancestors(node):
        level = level_name(above)
        below = {flag["code"] for flag in catalogue.below_minimum(level, values)}
        readings += [StockReading(above, s.metric, s.code, s.minimum, unit, day, revision,
                                  values.get(s.metric), s.code in below)
                     for s in catalogue.stock_levels if s.level == level]
    return readings
