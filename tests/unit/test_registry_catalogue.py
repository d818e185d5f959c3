"""The catalogue file is checked as a whole: a deployment that edits it hears about every
mistake at once, before any service runs on it."""

from pathlib import Path

import pytest

from shared.catalogue import DEFAULT_PATH, Catalogue, CatalogueError, default_catalogue

GOOD = '''
[[metrics]]
code = "tests"
name_zh = "检测"
name_en = "Tests"
value_type = "count"
aggregation = "sum"

[[metrics]]
code = "positives"
name_zh = "阳性"
name_en = "Positives"
value_type = "count"
aggregation = "sum"
'''


def load(tmp_path: Path, text: str) -> Catalogue:
    path = tmp_path / "catalogue.toml"
    path.write_text(text, encoding="utf-8")
    return Catalogue.from_toml(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(CatalogueError) as refused:
        load(tmp_path, text)
    return refused.value.problems


def test_the_shipped_catalogue_is_valid_and_covers_daily_reports() -> None:
    catalogue = Catalogue.from_toml(DEFAULT_PATH)
    assert {"fever", "ili", "sick_absence", "nat_tests", "nat_positive", "suspected",
            "confirmed", "asymptomatic", "close_contacts", "secondary_contacts",
            "max_temperature", "supply_days"} <= set(catalogue.metrics)
    for ratio in catalogue.ratios:
        assert catalogue.metrics[ratio.numerator].aggregation == "sum"
        assert catalogue.metrics[ratio.denominator].aggregation == "sum"


def test_every_mistake_is_listed(tmp_path: Path) -> None:
    found = problems(tmp_path, GOOD + '''
[[metrics]]
code = "tests"
name_zh = "重复"
name_en = "Again"
value_type = "text"
aggregation = "avg"
unit = "people"

[[metrics]]
code = "Temp"
name_zh = ""
name_en = "Temperature"
value_type = "decimal"
aggregation = "max"
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

[extras]
x = 1
''')
    text = "\n".join(found)
    for expected in ("unknown section [extras]", "code tests already used",
                     "value_type must be count or decimal", "aggregation must be sum, max or min",
                     "unknown key unit", "code must be lower-case", "name_zh must be a non-empty",
                     "min_value is above max_value", "rhs names unknown metric tsts",
                     "numerator Temp is not summed"):
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
