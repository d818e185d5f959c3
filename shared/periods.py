"""Reporting periods: a day, a week (周, Monday to Sunday, as the weekly 通报 counts it) or a
calendar month (月) around a day. The one definition the rollup API, the console's summaries and
the chart read; a period that is not over yet ends today, never in the future."""

import calendar
import re
from datetime import date, timedelta
from typing import Annotated, Literal

from pydantic import BeforeValidator

from shared.problems import custom_error

Period = Literal["day", "week", "month"]
PERIODS: tuple[Period, ...] = ("day", "week", "month")
NAMES_ZH = {"day": "日", "week": "周", "month": "月"}
ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_day(value: object) -> object:
    """A day as a query or path gives it, YYYY-MM-DD only: pydantic alone also takes a number
    of seconds since 1970 (`day=0.0` read as 1970-01-01) or a midnight date-time."""
    if isinstance(value, date) or (isinstance(value, str) and ISO_DAY.fullmatch(value)):
        return value
    raise custom_error("bad_date", "日期格式应为 YYYY-MM-DD", "a date is YYYY-MM-DD")


# The type of every day an HTTP route reads from its query or path (422 `bad_date` naming it).
IsoDate = Annotated[date, BeforeValidator(_iso_day)]


def ending(end: date, days: int) -> date:
    """The first day of the `days` days ending on `end` (a default range's start), never before
    the calendar's first day: a range asked to end on 0001-01-01 starts there too."""
    return end - min(timedelta(days=days - 1), end - date.min)


def period_span(period: Period, day: date, today: date | None = None) -> tuple[date, date]:
    """The first and last day of the period that holds `day`; the last is at most `today`."""
    if period == "day":
        start = end = day
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=6) if start <= date.max - timedelta(days=6) else date.max
    elif period == "month":
        start = day.replace(day=1)
        end = day.replace(day=calendar.monthrange(day.year, day.month)[1])
    else:
        raise ValueError(f"unknown period {period!r}: one of {', '.join(PERIODS)}")
    if today is not None and end > today:
        end = max(today, start)
    return start, end


def describe_zh(start: date, end: date) -> str:
    """How a title names the span: 2026年3月2日, or 2026年3月2日至3月8日."""
    first = f"{start.year}年{start.month}月{start.day}日"
    if start == end:
        return first
    last = (f"{end.month}月{end.day}日" if end.year == start.year
            else f"{end.year}年{end.month}月{end.day}日")
    return f"{first}至{last}"
