"""The rules at the door, as properties (hypothesis): whatever a unit sends, the refusals are
exactly those the rules call for, each naming its field with a stable code in both languages."""

import csv
import io
import math
import re
import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.ingest import intake
from services.ingest.csvfile import read_reports
from services.ingest.schemas import SubmitReport
from shared.auth import Principal
from shared.catalogue import default_catalogue
from shared.errors import FieldError
from shared.problems import from_pydantic
from shared.registry.reference import Reference, UnitInfo

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 10, 9, 30, tzinfo=ZONE)
TODAY = NOW.date()
LOCK_DAYS = 7
catalogue = default_catalogue()


def unit(code: str, node: str, active_from: date | None = None) -> UnitInfo:
    return UnitInfo(code, code, "village_clinic", "health", active_from, None, time(12, 0),
                    ((date(2020, 1, 1), node),))


REFERENCE = Reference(nodes={}, units={
    "430621108001-CL": unit("430621108001-CL", "430621108001"),
    "430621104002-VC": unit("430621104002-VC", "430621104002"),
    "430621-HOSP": unit("430621-HOSP", "430621"),
    "430621108001-NEW": unit("430621108001-NEW", "430621108001", active_from=date(2027, 1, 1)),
})
CODE = re.compile(r"[a-z][a-z0-9_]*")


def assert_well_formed(errors: list[FieldError]) -> None:
    for e in errors:
        assert e.field and CODE.fullmatch(e.code), e
        assert e.message_zh and e.message_en and e.message_zh != e.message_en, e


numbers = st.one_of(st.integers(-5, 60), st.floats(-5, 60, allow_nan=False),
                    st.sampled_from([float("nan"), float("inf"), 2.0, 37.5, 0.0]))
# The clinics' form, metrics that are on another form only, and metrics that do not exist.
HEALTH_FORM = catalogue.form_for("village_clinic")
values_st = st.dictionaries(st.sampled_from(
    [*HEALTH_FORM.metrics, "sick_absence", "enrolled", "fever_medicine_sales", "bogus", "fevers"]),
    numbers, max_size=6)


def expected_errors(unit_code: str, day: date, values: dict, unlocked: bool) -> set:
    """The rules, written out independently of the code under test."""
    out = set()
    info = REFERENCE.units.get(unit_code)
    if info is None:
        out.add(("unit", "unknown_unit"))
    elif info.active_from and day < info.active_from:
        out.add(("unit", "unit_inactive"))
    if day > TODAY:
        out.add(("day", "future_day"))
    elif (TODAY - day).days > LOCK_DAYS and not unlocked:
        out.add(("day", "day_locked"))
    for code, value in values.items():
        metric = catalogue.metrics.get(code)
        field = f"values.{code}"
        if metric is None:
            out.add((field, "unknown_metric"))
        elif info is not None and code not in HEALTH_FORM.metrics:
            out.add((field, "not_on_form"))
        elif not math.isfinite(value):
            out.add((field, "not_a_number"))
        elif metric.value_type == "count" and value != int(value):
            out.add((field, "not_integer"))
        elif metric.value_type == "count" and value < 0:
            out.add((field, "negative"))
        elif metric.value_type == "decimal" and round(value, metric.decimals) != value:
            out.add((field, "too_precise"))
        elif ((metric.min_value is not None and value < metric.min_value)
              or (metric.max_value is not None and value > metric.max_value)):
            out.add((field, "out_of_range"))
    if values.get("nat_positive", 0) > values.get("nat_tests", 0):
        out.add(("values.nat_positive", "positives_le_tests"))
    # Sick absences against enrolment only when the report carries both.
    if "sick_absence" in values and "enrolled" in values \
            and values["sick_absence"] > values["enrolled"]:
        out.add(("values.sick_absence", "absences_le_enrolled"))
    return out


@settings(max_examples=250)
@example(unit_code="430621108001-CL", offset=0, values={"sick_absence": 5, "enrolled": 3},
         unlocked=False)
@example(unit_code="430621108001-CL", offset=0, values={"sick_absence": 5}, unlocked=False)
@example(unit_code="430621108001-CL", offset=0, values={"sick_absence": 0, "enrolled": -1},
         unlocked=False)
@given(unit_code=st.sampled_from([*REFERENCE.units, "430621999001-XX"]),
       offset=st.integers(-12, 3), values=values_st, unlocked=st.booleans())
def test_a_report_is_refused_for_exactly_the_reasons_the_rules_give(
        unit_code: str, offset: int, values: dict, unlocked: bool) -> None:
    day = TODAY + timedelta(days=offset)
    info, errors = intake.check_report(unit_code, day, values, reference=REFERENCE,
                                       catalogue=catalogue, now=NOW, zone=ZONE,
                                       lock_days=LOCK_DAYS, unlocked=unlocked)
    assert {(e.field, e.code) for e in errors} == expected_errors(unit_code, day, values,
                                                                  unlocked)
    assert_well_formed(errors)
    assert (info is None) == (unit_code not in REFERENCE.units)


@given(values=st.dictionaries(st.sampled_from(list(catalogue.metrics)),
                              st.integers(0, 10**6).map(float)))
def test_counts_are_stored_as_integers(values: dict) -> None:
    normal = catalogue.typed(values)
    assert normal == values
    for code, value in normal.items():
        assert isinstance(value, int) == (catalogue.metrics[code].value_type == "count")
    assert intake.is_zero(normal) == all(v == 0 for v in values.values())


units_st = st.sampled_from(list(REFERENCE.units))


@given(unit_code=units_st, scope=st.sampled_from(
    ["430621", "430621108", "430621108001", "430621104", "43", "430622"]))
def test_an_operator_reaches_exactly_its_subtree(unit_code: str, scope: str) -> None:
    principal = Principal(uuid.uuid4(), "operator", scope, "值班")
    info = REFERENCE.units[unit_code]
    denied = intake.check_access(principal, unit_code, info, TODAY)
    assert (denied is None) == info.node_on(TODAY).startswith(scope)
    if denied:
        assert (denied.field, denied.code) == ("unit", "outside_area")
        assert_well_formed([denied])


@given(unit_code=st.sampled_from([*REFERENCE.units, "nowhere"]), own=units_st)
def test_a_unit_acts_only_for_itself(unit_code: str, own: str) -> None:
    principal = Principal(uuid.uuid4(), "unit", own, "报送员")
    denied = intake.check_access(principal, unit_code, REFERENCE.units.get(unit_code), TODAY)
    assert (denied is None) == (unit_code == own)


def case_errors(**change) -> set:
    body = {"unit_code": "430621108001-CL", "kind": "fever", "found_at": NOW,
            "temperature": 38.0, "person_ref": "P-1", "symptoms": [], **change}
    _, errors = intake.check_case(
        body["unit_code"], body["kind"], body["found_at"], body["temperature"],
        body["person_ref"], body["symptoms"], reference=REFERENCE, now=NOW, zone=ZONE,
        lock_days=LOCK_DAYS, unlocked=False, fever_threshold=37.3,
        clock_skew=timedelta(minutes=5))
    assert_well_formed(errors)
    return {(e.field, e.code) for e in errors}


@given(temperature=st.floats(allow_nan=True, allow_infinity=True),
       kind=st.sampled_from(["fever", "ili"]))
def test_a_temperature_must_be_a_living_persons(temperature: float, kind: str) -> None:
    errors = case_errors(temperature=temperature, kind=kind, symptoms=["cough"])
    physical = 30.0 <= temperature <= 45.0
    fever = temperature >= 37.3
    if not physical:
        assert errors == {("temperature", "temperature_out_of_range")}
    elif kind == "fever" and not fever:
        assert errors == {("temperature", "not_a_fever")}
    else:
        assert errors == set()


@given(name=st.text(min_size=1, max_size=12).filter(lambda s: any(ord(c) > 127 for c in s)))
def test_no_names_in_a_person_reference(name: str) -> None:
    assert ("person_ref", "not_pseudonymous") in case_errors(person_ref=name)


@settings(max_examples=50)
@given(ref=st.from_regex(r"[A-Za-z][A-Za-z0-9_.:-]{0,40}", fullmatch=True))
def test_pseudonyms_pass(ref: str) -> None:
    assert case_errors(person_ref=ref) == set()


@given(digits=st.from_regex(r"\d{17}[\dX]|1[3-9]\d{9}", fullmatch=True))
def test_id_cards_and_phone_numbers_are_not_pseudonyms(digits: str) -> None:
    assert case_errors(person_ref=digits) == {("person_ref", "not_pseudonymous")}


@given(minutes=st.integers(-60 * 24 * 12, 60))
def test_a_case_in_the_future_or_past_the_lock_is_refused(minutes: int) -> None:
    found = NOW + timedelta(minutes=minutes)
    errors = case_errors(found_at=found)
    if minutes > 5:
        assert errors == {("found_at", "future_time")}
    elif (TODAY - found.date()).days > LOCK_DAYS:
        assert errors == {("found_at", "day_locked")}
    else:
        assert errors == set()


# -- reading what is sent -----------------------------------------------------------------

reporters = st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zl", "Zp"]),
                    min_size=1, max_size=20).filter(lambda s: s.strip() == s and s)
report_rows = st.lists(st.tuples(
    st.sampled_from(list(REFERENCE.units)), st.dates(date(2026, 1, 1), date(2026, 12, 31)),
    reporters, st.dictionaries(st.sampled_from(["fever", "ili", "nat_tests"]),
                               st.integers(0, 999))), max_size=30)


@settings(max_examples=50)
@given(rows=report_rows, encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
def test_a_csv_file_reads_back_as_the_reports_written(rows: list, encoding: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["unit", "day", "reporter", "fever", "ili", "nat_tests"])
    for unit_code, day, reporter, values in rows:
        writer.writerow([unit_code, day.isoformat(), reporter,
                         *(values.get(m, "") for m in ("fever", "ili", "nat_tests"))])
    try:
        data = buffer.getvalue().encode(encoding)
    except UnicodeEncodeError:
        return  # a character GB 18030 cannot write: not a file anyone could send
    read = read_reports(data, max_rows=10_000)
    assert [(p["unit"], p["day"], p["reporter"], p["values"]) for p, errors in read] == [
        (u, d.isoformat(), r, v) for u, d, r, v in rows]
    assert all(not errors for _, errors in read)
    for payload, _ in read:
        SubmitReport.model_validate(payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3), max_leaves=8)


@given(body=st.dictionaries(st.sampled_from(
    ["unit", "day", "values", "reporter", "report_id", "extra"]), json_values))
def test_malformed_bodies_name_their_fields(body: dict) -> None:
    from pydantic import ValidationError

    try:
        SubmitReport.model_validate(body)
    except ValidationError as exc:
        errors = from_pydantic(exc.errors(), skip=())
        assert errors
        assert_well_formed(errors)
        for e in errors:
            assert e.field.split(".")[0] in {"unit", "day", "values", "reporter", "report_id",
                                             "extra"}, e


def test_a_case_found_in_an_implausible_year_is_refused_not_a_crash() -> None:
    """Found by the schema fuzzer: year 1 at +01:00 cannot be moved into local time (a 500)."""
    from pydantic import ValidationError

    from services.ingest.schemas import SubmitCase
    from shared.problems import from_pydantic

    body = {"found_at": "0001-01-01T00:01:01+01:00", "kind": "ili", "person_ref": "P-1",
            "unit": "430621108001-CL", "symptoms": ["cough"]}
    try:
        SubmitCase.model_validate(body)
    except ValidationError as exc:
        [error] = from_pydantic(exc.errors(), skip=())
    else:
        raise AssertionError("accepted a case found in year 1")
    assert (error.field, error.code) == ("found_at", "out_of_range")
    assert error.message_zh and error.message_en


@given(before=st.text(alphabet="今日发热病人已转诊,体温38.5度 ", max_size=20),
       after=st.text(alphabet="今日发热病人已转诊,体温38.5度 ", max_size=20),
       number=st.sampled_from(["13807315678", "138 0731 5678", "+8613807315678",
                               "43062119800101123X", "430621198001011234", "0730-7654321"]))
def test_a_note_carrying_an_id_card_or_phone_number_is_refused(before: str, after: str,
                                                               number: str) -> None:
    [error] = intake.check_note(f"{before},{number},{after}")
    assert (error.field, error.code) == ("note", "personal_data")
    assert_well_formed([error])


def test_an_ordinary_note_passes() -> None:
    for note in (None, "今日学校停课", "发热 3 人,最高体温 38.5 °C,已转诊", "库存口罩 20000 只",
                 "2026-03-01 起停课 7 天"):
        assert intake.check_note(note) == [], note
