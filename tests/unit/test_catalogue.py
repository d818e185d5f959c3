from hypothesis import given
from hypothesis import strategies as st

from shared.catalogue import default_catalogue

catalogue = default_catalogue()


def codes(values: dict) -> set[tuple[str, str]]:
    return {(e.field, e.code) for e in catalogue.validate(values)}


def test_default_catalogue_covers_daily_epidemic_reports() -> None:
    for code in ("fever", "ili", "sick_absence", "returnees_risk", "home_observation",
                 "central_isolation", "nat_tests", "nat_positive", "suspected", "confirmed",
                 "close_contacts", "max_temperature", "supply_days"):
        assert code in catalogue.metrics
    assert catalogue.metrics["max_temperature"].aggregation == "max"
    assert catalogue.metrics["supply_days"].aggregation == "min"
    assert catalogue.metrics["fever"].aggregation == "sum"


def test_each_kind_of_bad_value_is_named() -> None:
    assert codes({"fever": -1}) == {("values.fever", "negative")}
    assert codes({"fever": 1.5}) == {("values.fever", "not_integer")}
    assert codes({"bogus": 1}) == {("values.bogus", "unknown_metric")}
    assert codes({"nat_tests": 2, "nat_positive": 3}) == {("values.nat_positive",
                                                           "positives_le_tests")}
    assert codes({"max_temperature": 50}) == {("values.max_temperature", "out_of_range")}
    assert codes({"fever": float("nan")}) == {("values.fever", "not_a_number")}


def test_messages_are_bilingual() -> None:
    (error,) = catalogue.validate({"fever": -1})
    assert error.message_zh and error.message_en and error.message_zh != error.message_en


@given(st.dictionaries(st.sampled_from(["fever", "ili", "nat_tests", "close_contacts"]),
                       st.integers(min_value=0, max_value=10**6)))
def test_non_negative_counts_pass(values: dict) -> None:
    assert catalogue.validate(values) == []


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6))
def test_positives_never_exceed_tests(tests: int, positives: int) -> None:
    ok = catalogue.validate({"nat_tests": tests, "nat_positive": positives}) == []
    assert ok == (positives <= tests)


def test_ratios_come_from_summed_parts() -> None:
    assert catalogue.ratios_of({"nat_tests": 200, "nat_positive": 3}) == {"nat_positivity": 0.015}
    assert catalogue.ratios_of({}) == {"nat_positivity": None}
