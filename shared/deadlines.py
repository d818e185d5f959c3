"""Deadlines and lateness: one boundary for every clock (docs/architecture.md, "Time").

A deadline is an instant. What arrives *at* its deadline is on time; only what arrives after it
is late (迟报), and an alert is overdue only once its deadline has passed. "Report by 10:00"
includes 10:00:00 itself, and a case that reaches the system exactly two hours after it was
found met the two-hour rule. Ingest's receipts, the alerts' flags and clocks, and every query
that counts overdue alerts use the functions below, so the two can never disagree.

Reporting days and cutoffs are evaluated in the deployment's time zone; instants are UTC-aware.

A unit's day has one of four states at an instant (`day_state`, docs/architecture.md,
"Cutoffs, completeness, timeliness"): exempt (免报: a calendar says it is not expected), reported,
pending (待报: expected, no report, its cutoff not passed) or missing (漏报: expected, no report,
cutoff passed). A unit whose cutoff is 10:00 is pending at 10:00:00 and missing at 10:00:00.000001.
Aggregate's figures and lists and the alerts' missing-report check all decide through it; SQL
states the same rule with `sql_cutoff_passed`, held to the same answers by a test.
"""

from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo

from shared.rules import Rules


def is_past(deadline: datetime, moment: datetime) -> bool:
    """Whether `moment` is after `deadline`: late for an arrival, overdue for a clock."""
    return moment > deadline


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    """The reporting day an instant falls on, in the deployment's zone."""
    return moment.astimezone(zone).date()


def cutoff_instant(day: date, cutoff: time, zone: ZoneInfo) -> datetime:
    """A unit type's daily cutoff on `day`, local time, as an instant."""
    return datetime.combine(day, cutoff, tzinfo=zone)


def report_is_late(day: date, cutoff: time, submitted_at: datetime, zone: ZoneInfo) -> bool:
    """迟报: a report (a zero report too) submitted after its unit's cutoff on the day."""
    return is_past(cutoff_instant(day, cutoff, zone), submitted_at)


def cutoff_passed(day: date, cutoff: time, now: datetime, zone: ZoneInfo) -> bool:
    """Whether a unit whose cutoff is `cutoff` is due on `day` at `now`: its cutoff has passed."""
    return is_past(cutoff_instant(day, cutoff, zone), now)


class DayState(StrEnum):
    EXEMPT = "exempt"  # 免报
    REPORTED = "reported"
    PENDING = "pending"  # 待报
    MISSING = "missing"  # 漏报


def day_state(day: date, cutoff: time, *, reported: bool, exempt: bool, now: datetime,
              zone: ZoneInfo) -> DayState:
    """A unit's state on `day` at `now`. An exempt unit stays exempt if it reports anyway (its
    report is counted, but it was never expected)."""
    if exempt:
        return DayState.EXEMPT
    if reported:
        return DayState.REPORTED
    return DayState.MISSING if cutoff_passed(day, cutoff, now, zone) else DayState.PENDING


@dataclass(frozen=True, slots=True)
class Moment:
    """An instant with the deployment's zone: what deciding pending or missing needs."""

    now: datetime
    zone: ZoneInfo

    def cutoff_passed(self, day: date, cutoff: time) -> bool:
        return cutoff_passed(day, cutoff, self.now, self.zone)

    def state(self, day: date, cutoff: time, *, reported: bool, exempt: bool) -> DayState:
        return day_state(day, cutoff, reported=reported, exempt=exempt, now=self.now,
                         zone=self.zone)

    def params(self) -> dict[str, object]:
        """The parameters `sql_cutoff_passed` reads."""
        return {"now": self.now, "zone": self.zone.key}


def sql_cutoff_passed(day: str, cutoff: str) -> str:
    """`cutoff_passed` in SQL, for the SQL expressions `day` (a date) and `cutoff` (a time);
    reads the parameters :now (an instant) and :zone (the zone's name), see `Moment.params`."""
    return (f"(CAST(:now AS timestamptz) > "
            f"(({day} + {cutoff}) AT TIME ZONE CAST(:zone AS text)))")


def case_deadline(found_at: datetime, case_kind: str, unit_type: str | None,
                  rules: Rules) -> datetime:
    """The two-hour rule: found-time plus the clock's length for the case kind and unit type
    (rules.toml `[deadline]`, the one source of every deadline's length)."""
    return found_at + rules.deadline_after(case_kind, unit_type)


def seconds_left(deadline: datetime, now: datetime) -> int:
    """Whole seconds until the deadline; negative once it has passed."""
    return int((deadline - now).total_seconds())


__all__ = ["DayState", "Moment", "case_deadline", "cutoff_instant", "cutoff_passed", "day_state",
           "is_past", "local_day", "report_is_late", "seconds_left", "sql_cutoff_passed"]
