"""The 疑似瞒报 rules, pure: a zero report with a case that day; non-zero values identical for
N days in a row."""

from datetime import date, timedelta

from services.alerts.suspicion import identical_run, key, zero_with_case

D = date(2026, 11, 20)


def days(*values):
    return {D + timedelta(days=i): v for i, v in enumerate(values)}


def test_a_zero_report_with_a_case_that_day() -> None:
    assert zero_with_case(True, 1)
    assert not zero_with_case(True, 0) and not zero_with_case(False, 3)
    assert not zero_with_case(None, 2)  # no report yet


def test_identical_values_for_n_days() -> None:
    same = {"fever": 2}
    run = days(same, same, same, same, same)
    assert identical_run(run, D + timedelta(days=2), 5) == (D, D + timedelta(days=4))
    assert identical_run(run, D, 6) is None
    broken = days(same, same, {"fever": 3}, same, same)
    assert identical_run(broken, D, 3) is None
    gap = {**days(same, same), D + timedelta(days=3): same}
    assert identical_run(gap, D, 3) is None  # a day without a report breaks the run
    zeros = days({"fever": 0}, {"fever": 0}, {"fever": 0})
    assert identical_run(zeros, D, 2) is None  # zero reports are not figures copied forward
    assert key("identical_values", "U", D) == "identical_values:U:2026-11-20"
