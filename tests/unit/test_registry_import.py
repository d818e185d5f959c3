"""The import rules, without a database: files are read into rows or refused with the file, the
line, the column and a stable code; the whole import is checked before anything is written."""

from datetime import date
from pathlib import Path

import pytest

from shared.registry.importer import (
    BEGINNING,
    Batch,
    Known,
    check,
    kind_of,
    plan_placements,
    read,
    sources,
)

DIVISIONS = Path(__file__).resolve().parents[3] / "shared" / "data" / "divisions"
TODAY = date(2024, 3, 15)
HEADERS = {
    "provinces.csv": "code,name",
    "cities.csv": "code,name,provinceCode",
    "areas.csv": "code,name,cityCode,provinceCode",
    "streets.csv": "code,name,areaCode,provinceCode,cityCode",
}
BASE = {
    "provinces.csv": ["43,湖南省"],
    "cities.csv": ["4306,岳阳市,43"],
    "areas.csv": ["430621,岳阳县,4306,43"],
    "streets.csv": ["430621108,公田镇,430621,43,4306", "430621104,黄沙街镇,430621,43,4306"],
}


def write(directory: Path, files: dict[str, list[str] | str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, rows in files.items():
        if isinstance(rows, str):
            (directory / name).write_text(rows, encoding="utf-8")
        else:
            header = HEADERS.get(name, "")
            (directory / name).write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return directory


def problems_of(batch: Batch, known: Known = Known()) -> set[tuple[str, int, str, str]]:
    plan, problems = check(batch, known, TODAY)
    assert (plan is None) == bool(problems)
    return {(Path(p.file).name, p.line, p.field, p.code) for p in problems}


def test_the_real_hunan_divisions_read_without_a_problem() -> None:
    batch = read([DIVISIONS], within="43")
    assert batch.problems == []
    levels = [n.level for n in batch.nodes]
    assert [levels.count(level) for level in sorted(set(levels))] == [1, 14, 134, 2008]
    assert batch.skipped > 39_000  # the other provinces
    plan, problems = check(batch, Known(), TODAY)
    assert problems == [] and plan is not None and len(plan.nodes) == 2157


def test_a_good_import_reads_parents_before_children(tmp_path: Path) -> None:
    write(tmp_path, {**BASE, "villages.csv": "code,name,town\n430621108001,东山村,430621108\n",
                     "units.csv": "code,name,type,node\n430621108001-CL,东山村卫生室,"
                                  "village_clinic,430621108001\n"})
    batch = read([tmp_path])
    assert batch.problems == []
    assert [n.code for n in batch.nodes] == ["43", "4306", "430621", "430621108", "430621104",
                                             "430621108001"]
    (unit,) = batch.units
    assert (unit.sector, unit.cutoff, unit.active_from) == ("health", None, None)
    plan, problems = check(batch, Known(), TODAY)
    assert problems == [] and plan is not None
    assert plan.placements == [("430621108001-CL", BEGINNING, "430621108001")]


@pytest.mark.parametrize("file, row, field, code", [
    ("areas.csv", "430621108,公田镇,4306,43", "code", "wrong_level"),
    ("streets.csv", "4306211,公田镇,430621,43,4306", "code", "invalid_code"),
    ("streets.csv", "43062110x,公田镇,430621,43,4306", "code", "invalid_code"),
    ("streets.csv", "430622108,公田镇,430621,43,4306", "code", "code_not_under_parent"),
    ("streets.csv", "430621108,公田镇,430621,44,4306", "code", "code_not_under_parent"),
    ("streets.csv", "430621108,,430621,43,4306", "name", "required"),
    ("streets.csv", "430621108,公田镇,430621,43", "", "wrong_column_count"),
    ("cities.csv", "4306,岳阳市,", "provinceCode", "required"),
])
def test_bad_division_rows_are_refused_with_their_line(tmp_path: Path, file: str, row: str,
                                                       field: str, code: str) -> None:
    files = {**BASE, file: [*BASE[file], row]}
    batch = read([write(tmp_path, files)])
    line = len(files[file]) + 1  # the header is line 1
    assert (file, line, field, code) in problems_of(batch)


def test_an_unknown_parent_is_named(tmp_path: Path) -> None:
    write(tmp_path, {"streets.csv": ["430621108,公田镇,430621,43,4306"],
                     "villages.csv": "code,name\n430621108001,东山村\n430621109001,西山村\n"})
    batch = read([tmp_path])
    assert problems_of(batch) == {("streets.csv", 2, "code", "unknown_parent"),
                                  ("villages.csv", 3, "code", "unknown_parent")}
    # Parents the registry holds already will do.
    assert problems_of(batch, Known({"430621", "430621109"})) == set()


def test_duplicate_codes_name_the_first_occurrence(tmp_path: Path) -> None:
    write(tmp_path, {**BASE, "villages.csv": "code,name\n430621108001,东山村\n430621108002,西湖村\n"
                                             "430621108001,南岭村\n",
                     "units.csv": "code,name,type,node\nX-1,a,pharmacy,430621108001\n"
                                  "X-1,b,pharmacy,430621108002\n"})
    batch = read([tmp_path])
    _, problems = check(batch, Known(), TODAY)
    assert {(Path(p.file).name, p.line, p.code) for p in problems} == {
        ("villages.csv", 4, "duplicate_code"), ("units.csv", 3, "duplicate_code")}
    assert any("line 2" in p.message_en for p in problems)


def test_a_village_code_must_extend_its_town(tmp_path: Path) -> None:
    write(tmp_path, {**BASE, "villages.csv": "code,name,town\n430621108001,东山村,430621104\n"
                                             "430621105,西湖村,\n"})
    assert problems_of(read([tmp_path])) == {
        ("villages.csv", 2, "code", "code_not_under_parent"),
        ("villages.csv", 3, "code", "wrong_level")}


@pytest.mark.parametrize("row, field, code", [
    ("U-1,诊所,spaceship,430621108", "type", "unknown_type"),
    ("U-1,诊所,pharmacy,430621109", "node", "unknown_node"),
    ("U-1,诊所,pharmacy,4306", "node", "wrong_level"),
    ("U-1,诊所,pharmacy,43062", "node", "invalid_code"),
    ("U.1,诊所,pharmacy,430621108", "code", "invalid_unit_code"),
    ("U-1,,pharmacy,430621108", "name", "required"),
    ("U-1,诊所,pharmacy,430621108,tourism", "sector", "unknown_sector"),
    ("U-1,诊所,pharmacy,430621108,,2024-13-01", "active_from", "invalid_date"),
    ("U-1,诊所,pharmacy,430621108,,2024-02-01,2024-01-01", "active_to", "ends_before_start"),
    ("U-1,诊所,pharmacy,430621108,,,,25:00", "cutoff", "invalid_time"),
    ("U-1,诊所,pharmacy,430621108,,,,,yesterday", "placed_from", "invalid_date"),
])
def test_bad_unit_rows_are_refused_with_their_line(tmp_path: Path, row: str, field: str,
                                                   code: str) -> None:
    header = "code,name,type,node,sector,active_from,active_to,cutoff,placed_from"
    pad = "," * (header.count(",") - row.count(","))
    write(tmp_path, {**BASE, "units.csv": f"{header}\nOK-1,药店,pharmacy,430621108{',' * 5}\n"
                                          f"{row}{pad}\n"})
    assert problems_of(read([tmp_path])) == {("units.csv", 3, field, code)}


def test_unit_options_are_read(tmp_path: Path) -> None:
    write(tmp_path, {**BASE, "units.csv": "code,name,type,node,sector,active_from,active_to,"
                                          "cutoff,placed_from\n"
                                          "U-1,卫生院,township_health_centre,430621108,education,"
                                          "2024-01-01,2024-12-31,09:30,2024-02-01\n"})
    (unit,) = read([tmp_path]).units
    assert (unit.sector, unit.active_from, unit.active_to, unit.cutoff.isoformat(),
            unit.placed_from) == ("education", date(2024, 1, 1), date(2024, 12, 31), "09:30:00",
                                  date(2024, 2, 1))


def test_headers_are_checked(tmp_path: Path) -> None:
    write(tmp_path, {"units.csv": "code,name,type,nod\nU-1,a,pharmacy,430621108\n"})
    assert problems_of(read([tmp_path])) == {("units.csv", 1, "node", "missing_column"),
                                             ("units.csv", 1, "nod", "unknown_column")}


def test_json_rows_keep_their_line(tmp_path: Path) -> None:
    (tmp_path / "units.json").write_text(
        '[\n  {"code": "U-1", "name": "药店", "type": "pharmacy", "node": "430621108"},\n'
        '  {"code": "U-2", "name": "诊所",\n   "type": "clinic", "node": 430621108},\n'
        '  {"code": "U-3", "name": "x", "type": "pharmacy", "node": "430621108", "colour": 1}\n'
        ']\n', encoding="utf-8")
    batch = read([write(tmp_path / "base", BASE), tmp_path / "units.json"])
    assert problems_of(batch) == {("units.json", 3, "type", "unknown_type"),
                                  ("units.json", 5, "colour", "unknown_column")}
    assert [u.code for u in batch.units] == ["U-1"]


def test_broken_json_and_foreign_encodings_are_named(tmp_path: Path) -> None:
    (tmp_path / "villages.json").write_text('[\n{"code": "430621108001", "name": "东山村"},\n'
                                            '{"code": "430621108002" "name": "西湖村"}\n]')
    (tmp_path / "units.csv").write_bytes("code,name,type,node\nU-1,药店,pharmacy,430621108\n"
                                         "U-2,诊所,pharmacy,430621108\n".encode("gbk"))
    found = problems_of(read([tmp_path]))
    assert ("villages.json", 3, "", "bad_json") in found
    assert ("units.csv", 2, "", "not_utf8") in found


def test_file_kinds_come_from_names(tmp_path: Path) -> None:
    assert kind_of(Path("streets.csv")).name == "streets"
    assert kind_of(Path("units-2024.json")).name == "units"
    assert kind_of(Path("streets.json")) is None
    assert kind_of(Path("people.csv")) is None
    (tmp_path / "people.csv").write_text("code,name\n")
    found, problems = sources([tmp_path / "people.csv", tmp_path / "missing.csv"])
    assert found == [] and [p.code for p in problems] == ["unknown_kind", "not_found"]
    found, problems = sources([tmp_path / "people.csv"], kind="villages")
    assert problems == [] and found[0][1].name == "villages"


def test_within_keeps_the_way_down_and_what_lies_below(tmp_path: Path) -> None:
    write(tmp_path, {**BASE, "provinces.csv": ["43,湖南省", "44,广东省"],
                     "units.csv": "code,name,type,node\nU-1,a,pharmacy,430621108\n"
                                  "U-2,b,pharmacy,430621104\n"})
    batch = read([tmp_path], within="430621108")
    assert [n.code for n in batch.nodes] == ["43", "4306", "430621", "430621108"]
    assert [u.code for u in batch.units] == ["U-1"]
    assert batch.skipped == 3


def test_problems_print_file_line_and_both_languages(tmp_path: Path) -> None:
    write(tmp_path, {"areas.csv": ["430621108,公田镇,4306,43"]})
    (problem,) = read([tmp_path]).problems
    text = str(problem)
    assert text.startswith(f"{tmp_path / 'areas.csv'}:2: code:")
    assert "township" in text and "乡镇" in text and "[wrong_level]" in text


# ---------------------------------------------------------------- moves


D = date(2024, 3, 1)


def test_a_new_unit_is_placed_from_the_start_or_its_date() -> None:
    assert plan_placements("U", (), "V1", None, None, TODAY) == ([("U", BEGINNING, "V1")], [])
    assert plan_placements("U", (), "V1", D, None, TODAY) == ([("U", D, "V1")], [])
    early = date(1999, 5, 1)
    assert plan_placements("U", (), "V1", None, early, TODAY) == ([("U", early, "V1")], [])


def test_a_move_keeps_earlier_days_where_they_were() -> None:
    before = ((BEGINNING, "V1"),)
    sets, deletes = plan_placements("U", before, "V2", D, None, TODAY)
    assert (sets, deletes) == ([("U", D, "V2")], [])
    after = ((BEGINNING, "V1"), (D, "V2"))
    # The same file again, or a file that names where the unit already is: nothing to do.
    assert plan_placements("U", after, "V2", D, None, TODAY) == ([], [])
    assert plan_placements("U", after, "V2", None, None, TODAY) == ([], [])
    assert plan_placements("U", before, "V1", D, None, TODAY) == ([], [])


def test_a_move_without_a_date_takes_effect_today() -> None:
    assert plan_placements("U", ((BEGINNING, "V1"),), "V2", None, None, TODAY) == (
        [("U", TODAY, "V2")], [])


def test_a_move_replaces_later_placements_it_contradicts() -> None:
    later = date(2024, 5, 1)
    history = ((BEGINNING, "V1"), (later, "V3"))
    assert plan_placements("U", history, "V2", D, None, TODAY) == ([("U", D, "V2")],
                                                                   [("U", later)])
    # Moving back to where it was before the date drops the later placements only.
    assert plan_placements("U", history, "V1", D, None, TODAY) == ([], [("U", later)])
    # Rewriting the whole history from the start.
    assert plan_placements("U", history, "V2", BEGINNING, None, TODAY) == (
        [("U", BEGINNING, "V2")], [("U", later)])
