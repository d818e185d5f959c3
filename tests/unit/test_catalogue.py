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
    assert catalogue.ratios_of({"nat_tests": 200, "nat_positive": 3, "enrolled": 400,
                                "sick_absence": 8}) == {"nat_positivity": 0.015,
                                                        "sick_absence_rate": 0.02}
    assert catalogue.ratios_of({}) == {"nat_positivity": None, "sick_absence_rate": None}


def test_stocks_take_their_last_day_and_flows_sum_over_days() -> None:
    for stock in ("home_observation", "home_health_monitoring", "central_isolation",
                  "left_pupils", "left_workers", "supply_masks", "supply_days"):
        assert catalogue.metrics[stock].over_days == "last", stock
    for flow in ("fever", "ili", "closed_loop_transfers", "fever_clinic_visits",
                 "vaccinations", "returnees_risk", "returnees_abroad"):
        assert catalogue.metrics[flow].over_days == "sum", flow


def test_every_metric_says_its_unit_of_measure_in_both_languages() -> None:
    for m in catalogue.metrics.values():
        assert m.measure_zh and m.measure_en, m.code


def test_a_metric_off_the_units_form_is_refused_naming_the_form() -> None:
    (error,) = catalogue.validate({"fever_medicine_sales": 3, "sick_absence": 1},
                                  unit_type="pharmacy")
    assert (error.field, error.code) == ("values.sick_absence", "not_on_form")
    assert "pharmacy" in error.message_en and "药店日报" in error.message_zh
    assert catalogue.validate({"sick_absence": 1}, unit_type="primary_school") == []
    assert catalogue.validate({"sick_absence": 1}) == []  # no unit type: no form applies


def test_values_are_typed_as_declared() -> None:
    """A count is an integer (2, not 2.0); a decimal keeps its declared precision, whatever
    binary fractions a sum left in it; an average of counts keeps two places."""
    typed = catalogue.typed({"fever": 2.0, "max_temperature": 38.25000000001,
                             "supply_disinfectant_tonnes": 0.1 + 0.2, "ili": 7 / 3})
    assert typed == {"fever": 2, "max_temperature": 38.3, "supply_disinfectant_tonnes": 0.3,
                     "ili": 2.33}
    assert type(typed["fever"]) is int


def test_a_node_below_a_minimum_reserve_is_flagged_at_its_level_only() -> None:
    """003:49: a town's reserve covers 15 days; a figure not reported is not below anything."""
    assert [s["code"] for s in catalogue.below_minimum("town", {"supply_days": 9})] == [
        "town_reserve_15_days"]
    assert catalogue.below_minimum("town", {"supply_days": 15}) == []
    assert catalogue.below_minimum("village", {"supply_days": 9}) == []
    assert catalogue.below_minimum("town", {"fever": 2}) == []


def test_a_decimal_more_precise_than_declared_is_refused() -> None:
    assert codes({"max_temperature": 38.25}) == {("values.max_temperature", "too_precise")}
    assert codes({"max_temperature": 38.2}) == set()
