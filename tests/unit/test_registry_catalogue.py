"""The catalogue file is checked as a whole: a deployment that edits it hears about every
mistake at once, before any service runs on it."""

from pathlib import Path

import pytest

from shared.catalogue import DEFAULT_PATH, Catalogue, CatalogueError, default_catalogue
from shared.registry.unit_types import unit_types

GOOD = '''
[[metrics]]
code = "tests"
name_zh = "检测"
name_en = "Tests"
value_type = "count"
aggregation = "sum"
over_days = "sum"
measure_zh = "人次"
measure_en = "tests"

[[metrics]]
code = "positives"
name_zh = "阳性"
name_en = "Positives"
value_type = "count"
aggregation = "sum"
over_days = "sum"
measure_zh = "人"
measure_en = "people"
'''


def load(tmp_path: Path, text: str, known_unit_types: list[str] | None = None) -> Catalogue:
    path = tmp_path / "catalogue.toml"
    path.write_text(text, encoding="utf-8")
    return Catalogue.from_toml(path, known_unit_types)


def problems(tmp_path: Path, text: str, known_unit_types: list[str] | None = None
             ) -> list[str]:
    with pytest.raises(CatalogueError) as refused:
        load(tmp_path, text, known_unit_types)
    return refused.value.problems


def test_the_shipped_catalogue_is_valid_and_covers_daily_reports() -> None:
    catalogue = Catalogue.from_toml(DEFAULT_PATH)
    assert {"fever", "ili", "sick_absence", "nat_tests", "nat_positive", "suspected",
            "confirmed", "asymptomatic", "close_contacts", "secondary_contacts",
            "max_temperature", "supply_days"} <= set(catalogue.metrics)
    for ratio in catalogue.ratios:
        for part in (ratio.numerator, ratio.denominator):
            assert catalogue.metrics[part].aggregation == "sum"
            assert catalogue.metrics[part].over_days == "sum"


def test_every_unit_type_has_one_form_and_the_catalogue_refuses_at_start_otherwise(
        tmp_path: Path) -> None:
    """The shipped forms cover the registry's unit types exactly; a type added to the registry
    without a form stops the services at start, naming it."""
    catalogue = default_catalogue()
    assert set(catalogue.form_of_type) == set(unit_types())
    shipped = DEFAULT_PATH.read_text(encoding="utf-8")
    found = problems(tmp_path, shipped, [*unit_types(), "ferry_terminal"])
    assert [p.split(": ", 1)[1] for p in found] == ["forms: unit type ferry_terminal has no form"]


def test_a_supply_is_never_counted_twice_in_one_unit_of_measure(tmp_path: Path) -> None:
    """Masks in pieces and disinfectant in bottles or tonnes are separate metrics: two metrics
    of one item in the same measure would be the same figure under two codes."""
    catalogue = default_catalogue()
    by_item: dict[str, set[str]] = {}
    for m in catalogue.metrics.values():
        if m.item is not None:
            assert m.measure_en not in by_item.setdefault(m.item, set()), m.code
            by_item[m.item].add(m.measure_en)
    assert by_item["disinfectant"] == {"bottles", "tonnes"}
    found = problems(tmp_path, GOOD.replace('measure_en = "people"', 'measure_en = "tests"')
                     .replace('aggregation = "sum"', 'aggregation = "sum"\nitem = "kits"'))
    assert any("item kits is already counted in tests by tests" in p for p in found)


def test_every_mistake_is_listed(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD + '''
[[metrics]]
code = "tests"
name_zh = "重复"
name_en = "Again"
value_type = "text"
aggregation = "avg"
over_days = "mean"
measure_zh = "人"
measure_en = "people"
unit = "people"

[[metrics]]
code = "Temp"
name_zh = ""
name_en = "Temperature"
value_type = "decimal"
aggregation = "max"
over_days = "max"
measure_zh = "度"
measure_en = "°C"
min_value = 45
max_value = 30

[[rules]]
code = "pos_le_tests"
lhs = "positives"
rhs = "tsts"
message_zh = "阳性不能大于检测"
message_en = "positives cannot exceed tests"

[[ratios]]
code = "mean_temp"
numerator = "Temp"
denominator = "tests"
name_zh = "平均"
name_en = "Mean"

[[forms]]
code = "clinic"
name_zh = "诊所日报"
name_en = "Clinic report"
unit_types = ["village_clinic", "spaceport"]
required = ["tests", "fevers"]
optional = ["positives", "positives"]

[[stock_levels]]
code = "low"
metric = "masks"
level = "township"
minimum = "ten"
name_zh = "不足"
name_en = "Low"

[[forms]]
code = "again"
name_zh = "再一张"
name_en = "Another"
unit_types = ["village_clinic"]
required = []

[extras]
x = 1
''', known_unit_types=["village_clinic", "pharmacy"])
    text = "\n".join(found)
    for expected in ("unknown section [extras]", "code tests already used",
                     "value_type must be count or decimal", "aggregation must be sum, max or min",
                     "unknown key unit", "code must be lower-case", "name_zh must be a non-empty",
                     "min_value is above max_value", "rhs names unknown metric tsts",
                     "numerator Temp is not summed", "over_days must be sum, last, max, min or "
                     "average", "forms #1 (clinic): names unknown metric fevers",
                     "forms #1 (clinic): metric positives is listed twice",
                     "forms #1 (clinic): names unknown unit type spaceport",
                     "unit type village_clinic already reports on form clinic",
                     "unit type pharmacy has no form",
                     "stock_levels #1 (low): metric names unknown metric masks",
                     "stock_levels #1 (low): level must be province, city, county, town or "
                     "village", "stock_levels #1 (low): minimum must be a number"):
        assert expected in text, expected
    assert all(p.startswith(str(tmp_path)) for p in found)


def test_a_broken_file_is_named(tmp_path: Path) -> None:
    (found,) = problems(tmp_path, "[[metrics]\ncode = ")
    assert "catalogue.toml" in found


def test_a_rule_on_both_given_is_checked_only_when_both_are(tmp_path: Path) -> None:
    catalogue = load(tmp_path, GOOD + '''
[[rules]]
code = "pos_le_tests"
lhs = "positives"
rhs = "tests"
message_zh = "阳性不能大于检测"
message_en = "positives cannot exceed tests"
both_given = true
''')
    assert catalogue.validate({"positives": 3}) == []
    assert [e.code for e in catalogue.validate({"positives": 3, "tests": 2})] == ["pos_le_tests"]


def test_sick_absences_are_checked_against_enrolment_only_when_given() -> None:
    catalogue = default_catalogue()
    assert catalogue.validate({"sick_absence": 4}) == []
    assert [e.code for e in catalogue.validate({"sick_absence": 4, "enrolled": 3})] == [
        "absences_le_enrolled"]
