"""疑似瞒报: what makes a unit's reports suspect of concealment (seed: 漏报、迟报、瞒报、错报 …
追究相關責任). Two rules, pure:

- a zero report (零报告) on a day the same unit sent a fever or flu-like case;
- a unit whose non-zero values stay identical `identical_days` days in a row (rules.toml
  `[suspicion]`): figures copied forward rather than counted.

A flag is shown, listed and counted beside the figures and never changes them; an operator may
dismiss it with a reason (services/alerts/flags.py keeps it)."""

from collections.abc import Mapping
from datetime import date, timedelta

ZERO_WITH_CASE = "zero_with_case"
IDENTICAL_VALUES = "identical_values"
KINDS = (ZERO_WITH_CASE, IDENTICAL_VALUES)


def zero_with_case(report_zero: bool | None, cases: int) -> bool:
    """A zero report said "nothing to report" on a day the unit itself sent a case."""
    return bool(report_zero) and cases > 0


def identical_run(values_by_day: Mapping[date, Mapping[str, float] | None], day: date,
                  at_least: int) -> tuple[date, date] | None:
    """The run of consecutive days around `day` on which the unit's non-zero values were the
    same as that day's, if it lasts `at_least` days or more: (first day, last day)."""
    values = values_by_day.get(day)
    if not values or not any(values.values()):
        return None
    first = last = day
    while values_by_day.get(first - timedelta(days=1)) == values:
        first -= timedelta(days=1)
    while values_by_day.get(last + timedelta(days=1)) == values:
        last += timedelta(days=1)
    return (first, last) if (last - first).days + 1 >= at_least else None


def key(kind: str, unit: str, day: date) -> str:
    """One flag per unit and day for a zero report with a case, one per run (named by its
    first day) for identical values: a run that goes on raises no second flag."""
    return f"{kind}:{unit}:{day.isoformat()}"
