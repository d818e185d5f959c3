"""Deadlines and lateness: one boundary for every clock (docs/architecture.md, "Time").

A deadline is an instant. What arrives *at* its deadline is on time; only what arrives after it
is late (迟报), and an alert is overdue only once its deadline has passed. "Report by 10:00"
includes 10:00:00 itself, and a case that reaches the system exactly two hours after it was
found met the two-hour rule. Ingest's receipts, the alerts' flags and clocks, and every query
that counts overdue alerts use the functions below, so the two can never disagree.

Reporting days and cutoffs are evaluated in the deployment's time zone; instants are UTC-aware.
"""

from datetime import date, datetime, time
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


def case_deadline(found_at: datetime, case_kind: str, unit_type: str | None,
                  rules: Rules) -> datetime:
    """The two-hour rule: found-time plus the clock's length for the case kind and unit type
    (rules.toml `[deadline]`, the one source of every deadline's length)."""
    return found_at + rules.deadline_after(case_kind, unit_type)


def seconds_left(deadline: datetime, now: datetime) -> int:
    """Whole seconds until the deadline; negative once it has passed."""
    return int((deadline - now).total_seconds())


__all__ = ["case_deadline", "cutoff_instant", "is_past", "local_day", "report_is_late",
           "seconds_left"]
