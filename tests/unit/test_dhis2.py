"""The DHIS2 format and mapping (shared/dhis2.py) against the schemas derived from DHIS2's own
classes and documentation (tests/dhis2/*.schema.json)."""

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from shared import dhis2
from shared.catalogue import default_catalogue
from shared.errors import FieldError
from tests.dhis2 import errors_of_export, errors_of_summary

MAPPING = """
attribute_option_combo = "bRowv6yZOF2"
[data_elements]
fever = "FTRrcoaog83"
ili = {uid = "Ix2HsbDMLea", category_option_combo = "Prlt0C1RF0s"}
max_temperature = "eY5ehpbEsB7"
[org_units]
"430621" = "ImspTQPwCqd"
"430621108001-CL" = "DiszpKrYNg8"
"""


def mapping(tmp_path: Path, text: str = MAPPING) -> dhis2.IdMapping:
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return dhis2.load_mapping(path, default_catalogue().metrics)


def test_the_shipped_example_maps_every_metric_of_the_catalogue() -> None:
    example = dhis2.load_mapping(None, default_catalogue().metrics)
    assert set(example.elements) == set(default_catalogue().metrics)
    assert example.org_unit_of("430621") and example.org_unit_of("430621108001-CL")


def test_a_bad_mapping_names_every_problem(tmp_path: Path) -> None:
    with pytest.raises(dhis2.MappingError) as caught:
        mapping(tmp_path, """
            org_unit_id_scheme = "name"
            colour = "blue"
            [data_elements]
            fever = "not-a-uid"
            no_such_metric = "FTRrcoaog83"
            ili = "FTRrcoaog83"
            [org_units]
            "430621" = "ImspTQPwCqd"
            "430622" = "ImspTQPwCqd"
        """)
    text = "\n".join(caught.value.problems)
    for expected in ("org_unit_id_scheme", "'colour'", "data_elements.fever",
                     "no_such_metric: not a metric", "the same data element",
                     "already 430621's"):
        assert expected in text, text


def test_periods_values_and_timestamps_are_dhis2s() -> None:
    assert dhis2.period_of(date(2026, 3, 2)) == "20260302"
    assert dhis2.day_of("20260302") == "2026-03-02"
    assert [dhis2.day_of(p) for p in ("2026W10", "202603", "20260230", 20260302)] == [None] * 4
    assert dhis2.timestamp(datetime(2026, 3, 2, 1, 2, 3, 456789, tzinfo=UTC)) == (
        "2026-03-02T01:02:03.456+0000")
    assert [dhis2.value_text(v) for v in (2, 2.0, 37.5)] == ["2", "2", "37.5"]
    assert [dhis2.number_of(v) for v in ("12", " 7 ", "37.5", "-1", "1e2")] == [
        12, 7, 37.5, -1, 100.0]
    assert [dhis2.number_of(v) for v in ("abc", "", None, "nan", "inf", True, "1" * 400)] == [
        "abc", "", None, "nan", "inf", True, "1" * 400]
    assert dhis2.number_of("12345678901234567891") == 12345678901234567891


def figures() -> list[dhis2.Figure]:
    at = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
    return [dhis2.Figure("430621108001-CL", date(2026, 3, 2), "fever", 2, "王医生", at, at,
                         "今日门诊量大"),
            dhis2.Figure("430621108001-CL", date(2026, 3, 2), "ili", 1, "王医生", at, at),
            dhis2.Figure("430621108001-CL", date(2026, 3, 2), "max_temperature", 38.5),
            dhis2.Figure("430621108002-CL", date(2026, 3, 2), "fever", 1),
            dhis2.Figure("430621108001-CL", date(2026, 3, 2), "nat_tests", 9)]


def test_an_export_is_a_valid_dhis2_data_value_set(tmp_path: Path) -> None:
    values, unmapped = dhis2.data_values(figures(), mapping(tmp_path))
    assert unmapped.listed() == ["metric:nat_tests", "org_unit:430621108002-CL"]
    payload = dhis2.data_value_set(values, mapping(tmp_path))
    assert errors_of_export(payload) == []
    assert payload["dataValues"][0] == {
        "dataElement": "FTRrcoaog83", "period": "20260302", "orgUnit": "DiszpKrYNg8",
        "attributeOptionCombo": "bRowv6yZOF2", "value": "2", "storedBy": "王医生",
        "created": "2026-03-02T01:30:00.000+0000", "lastUpdated": "2026-03-02T01:30:00.000+0000",
        "comment": "今日门诊量大", "followup": False}
    assert payload["dataValues"][1]["categoryOptionCombo"] == "Prlt0C1RF0s"
    assert payload["dataValues"][2]["value"] == "38.5"


def test_the_schema_catches_what_dhis2_would_not_take(tmp_path: Path) -> None:
    """The schema can fail: a number where DHIS2 has a string, an unknown field, a monthly
    period, a made-up UID, a timestamp in another format."""
    good = {"dataElement": "FTRrcoaog83", "period": "20260302", "orgUnit": "DiszpKrYNg8",
            "value": "2"}
    assert errors_of_export({"dataValues": [good]}) == []
    for bad in ({**good, "value": 2}, {**good, "unit": "x"}, {**good, "period": "202603"},
                {**good, "orgUnit": "430621"}, {**good, "created": "2026-03-02 01:30"},
                {k: v for k, v in good.items() if k != "dataElement"}):
        assert errors_of_export({"dataValues": [bad]}), bad
    assert errors_of_export({"values": []})
    # By code, the org unit is a code, said once for the payload.
    assert errors_of_export({"orgUnitIdScheme": "CODE",
                             "dataValues": [{**good, "orgUnit": "430621"}]}) == []


def test_unmapped_codes_refuse_the_export_or_are_skipped_and_listed(tmp_path: Path) -> None:
    m = mapping(tmp_path)
    body, _, _, errors = dhis2.rendered(figures(), m, "json", "refuse", "x")
    assert body is None
    assert [(e.field, e.code) for e in errors] == [
        ("data_elements.nat_tests", "unmapped_code"),
        ("org_units.430621108002-CL", "unmapped_code")]
    body, media, headers, errors = dhis2.rendered(figures(), m, "csv", "skip", "x")
    assert errors == [] and media.startswith("application/csv")
    assert headers["Rollcall-Unmapped"] == "metric:nat_tests, org_unit:430621108002-CL"
    lines = body.splitlines()
    assert lines[0] == ("dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,"
                        "value,storedby,lastupdated,comment,followup,deleted")
    assert lines[1] == ("FTRrcoaog83,20260302,DiszpKrYNg8,,bRowv6yZOF2,2,王医生,"
                        "2026-03-02T01:30:00.000+0000,今日门诊量大,false,false")
    assert len(lines) == 4
    # DHIS2's CSV reads back to the same values.
    back = dhis2.from_csv(body)["dataValues"]
    assert [(v["dataElement"], v["orgUnit"], v["value"]) for v in back] == [
        ("FTRrcoaog83", "DiszpKrYNg8", "2"), ("Ix2HsbDMLea", "DiszpKrYNg8", "1"),
        ("eY5ehpbEsB7", "DiszpKrYNg8", "38.5")]


def test_by_code_an_org_unit_is_its_own_code(tmp_path: Path) -> None:
    m = mapping(tmp_path, 'org_unit_id_scheme = "code"\n[data_elements]\nfever = "FTRrcoaog83"'
                          '\n[org_units]\n"430621" = "YUEYANG"\n')
    assert m.org_unit_of("430621108") == "430621108" and m.org_unit_of("430621") == "YUEYANG"
    assert m.code_of("YUEYANG") == "430621" and m.code_of("430621108") == "430621108"
    assert dhis2.data_value_set([], m) == {"orgUnitIdScheme": "CODE", "dataValues": []}


def test_reading_back_takes_the_combo_into_account(tmp_path: Path) -> None:
    m = mapping(tmp_path)
    assert m.metric_of("Ix2HsbDMLea", "Prlt0C1RF0s") == "ili"
    assert m.metric_of("Ix2HsbDMLea", None) == "ili"
    assert m.metric_of("FTRrcoaog83", "HllvX50cXC0") == "fever"
    assert m.metric_of("nosuchthing", None) is None
    assert m.code_of("DiszpKrYNg8") == "430621108001-CL" and m.code_of("zzz") is None


def test_the_import_summary_has_dhis2s_shape_and_status() -> None:
    ok = dhis2.Summary(imported=3)
    assert ok.web_message()[0] == 200 and ok.web_message()[1]["status"] == "OK"
    some = dhis2.Summary(imported=2)
    some.conflict([4], FieldError("values.x", "unknown_metric", "未知指标", "unknown metric"),
                  "E8103", obj="FTRrcoaog83", value="Value #4 data element not found")
    some.conflict([4], FieldError("values.x", "negative", "不能为负数", "cannot be negative"))
    status, body = some.web_message()
    assert status == 200 and body["response"]["status"] == "WARNING"
    assert body["response"]["importCount"] == {"imported": 2, "updated": 0, "ignored": 1,
                                               "deleted": 0}
    assert body["response"]["rejectedIndexes"] == [4]
    first = body["response"]["conflicts"][0]
    assert (first["value"], first["errorCode"], first["objects"]["message_zh"]) == (
        "Value #4 data element not found", "E8103", "未知指标")
    none = dhis2.Summary()
    none.conflict([0, 1], FieldError("unit", "unknown_unit", "未知报告单位", "unknown unit"))
    status, body = none.web_message()
    assert (status, body["httpStatus"], body["status"], body["response"]["status"]) == (
        409, "Conflict", "ERROR", "ERROR")
    for summary in (ok, some, none):
        assert errors_of_summary(summary.web_message()[1]) == []
    assert errors_of_summary({**body, "response": {**body["response"], "importCount": {}}})
