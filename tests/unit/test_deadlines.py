"""One boundary for every deadline: at the deadline is on time, after it is late or overdue."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from shared import deadlines
from shared.rules import load_rules

ZONE = ZoneInfo("Asia/Shanghai")
RULES = load_rules()
FOUND = datetime(2031, 3, 8, 1, 0, tzinfo=UTC)


@given(day_offset=st.integers(-3, 1), minutes=st.integers(0, 48 * 60))
def test_a_report_is_late_only_after_the_cutoff_local_time(day_offset: int,
                                                            minutes: int) -> None:
    day = date(2031, 3, 8) + timedelta(days=day_offset)
    submitted = datetime.combine(day, time(0, 0), tzinfo=ZONE) + timedelta(minutes=minutes)
    late = deadlines.report_is_late(day, time(12, 0), submitted.astimezone(UTC), ZONE)
    assert late == (minutes > 12 * 60)


@given(seconds_after_found=st.integers(0, 4 * 3600))
def test_a_case_is_late_only_after_its_two_hours(seconds_after_found: int) -> None:
    deadline = deadlines.case_deadline(FOUND, "fever", "village_clinic", RULES)
    arrived = FOUND + timedelta(seconds=seconds_after_found)
    assert deadline == FOUND + timedelta(hours=2)
    assert deadlines.is_past(deadline, arrived) == (seconds_after_found > 2 * 3600)


def test_exactly_at_the_deadline_is_on_time_and_not_overdue() -> None:
    deadline = FOUND + timedelta(hours=2)
    assert not deadlines.is_past(deadline, deadline)
    assert deadlines.is_past(deadline, deadline + timedelta(microseconds=1))
    assert deadlines.seconds_left(deadline, deadline) == 0


def test_the_case_deadline_follows_the_rules_file_by_kind_and_unit_type() -> None:
    rules = RULES.__class__(**{**RULES.__dict__, "deadlines": {
        **RULES.deadlines, "ili.kindergarten": timedelta(minutes=60)}})
    assert deadlines.case_deadline(FOUND, "ili", "kindergarten", rules) == FOUND + timedelta(
        minutes=60)
    assert deadlines.case_deadline(FOUND, "ili", "pharmacy", rules) == FOUND + timedelta(hours=2)


def test_the_reporting_day_is_the_local_one() -> None:
    # 23:30 UTC is 07:30 the next morning in Shanghai.
    assert deadlines.local_day(datetime(2031, 3, 8, 23, 30, tzinfo=UTC), ZONE) == date(2031, 3, 9)
