"""Periods: a week runs Monday to Sunday, a month is the calendar month, and neither runs past
today; the running totals keep flows only."""

from datetime import date

import pytest
from pydantic import TypeAdapter, ValidationError

from shared.aggregation import running_totals
from shared.catalogue import default_catalogue
from shared.periods import IsoDate, describe_zh, ending, period_span


@pytest.mark.parametrize(("period", "day", "today", "span"), [
    ("day", date(2026, 3, 4), None, (date(2026, 3, 4), date(2026, 3, 4))),
    ("week", date(2026, 3, 4), None, (date(2026, 3, 2), date(2026, 3, 8))),
    ("week", date(2026, 3, 8), None, (date(2026, 3, 2), date(2026, 3, 8))),
    ("week", date(2026, 3, 4), date(2026, 3, 5), (date(2026, 3, 2), date(2026, 3, 5))),
    ("month", date(2024, 2, 10), None, (date(2024, 2, 1), date(2024, 2, 29))),
    ("month", date(2026, 12, 31), date(2026, 12, 1), (date(2026, 12, 1), date(2026, 12, 1))),
])
def test_a_period_around_a_day(period, day, today, span) -> None:
    assert period_span(period, day, today) == span


def test_an_unknown_period_is_refused() -> None:
    with pytest.raises(ValueError, match="fortnight"):
        period_span("fortnight", date(2026, 3, 4))  # type: ignore[arg-type]


def test_a_title_names_the_span() -> None:
    assert describe_zh(date(2026, 3, 2), date(2026, 3, 2)) == "2026年3月2日"
    assert describe_zh(date(2026, 3, 2), date(2026, 3, 8)) == "2026年3月2日至3月8日"
    assert describe_zh(date(2025, 12, 29), date(2026, 1, 4)) == "2025年12月29日至2026年1月4日"


def test_running_totals_add_the_flows_and_leave_stocks_out() -> None:
    days = [{"fever": 2, "home_observation": 10}, {}, {"fever": 1, "home_observation": 6}]
    assert running_totals(days, default_catalogue()) == [{"fever": 2}, {"fever": 2},
                                                          {"fever": 3}]


def test_the_last_week_of_the_calendar_ends_with_it() -> None:
    assert period_span("week", date.max) == (date(9999, 12, 27), date.max)


def test_a_default_range_ends_where_asked_and_never_starts_before_the_calendar() -> None:
    assert ending(date(2026, 3, 8), 7) == date(2026, 3, 2)
    assert ending(date(2026, 3, 8), 1) == date(2026, 3, 8)
    assert ending(date(1, 1, 3), 7) == date.min  # was an OverflowError, answered 500


@pytest.mark.parametrize("value", ["0.0", "0", "86400", "1e5", "2023-02-01T00:00:00", "20230201",
                                   "2023-2-1", ""])
def test_a_day_from_a_query_is_yyyy_mm_dd_only(value) -> None:
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(IsoDate).validate_python(value)
    assert refused.value.errors()[0]["type"] == "bad_date"


def test_a_day_from_a_query() -> None:
    assert TypeAdapter(IsoDate).validate_python("2023-02-01") == date(2023, 2, 1)
