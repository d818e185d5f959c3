"""Importing the registry from files, without a database: parsing and checking.

Divisions come in the format the National Bureau of Statistics codes are published in
(provinces.csv, cities.csv, areas.csv, streets.csv); villages and reporting units come as CSV or
JSON with the columns of `KINDS` (docs/registry.md). Reading gives rows and line-numbered
problems; `check` adds the rules that need every row and what the registry already holds, and
returns what to write. Writing it, in one transaction, is `store.import_batch`'s job.
"""

import csv
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path

from shared.hierarchy import CODE_LENGTHS, LEVEL_BY_LENGTH, Level, parent_of
from shared.registry.unit_types import UnitType, sectors, unit_types

# Units with no placement date are placed from here (or from their active_from, if earlier).
BEGINNING = date(2000, 1, 1)
NODE_NAME_MAX = 100
UNIT_NAME_MAX = 200
# A unit code travels in NATS subjects (report.rejected.<unit>): no dots, spaces or wildcards.
UNIT_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,31}")
DIGITS = re.compile(r"[0-9]+")


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    level: Level | None = None  # None: reporting units
    parent_column: str | None = None
    # Other ancestor columns a division file carries, each checked against the code.
    ancestor_columns: tuple[str, ...] = ()
    formats: tuple[str, ...] = (".csv",)


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("provinces", ("code", "name"), level=Level.PROVINCE),
    Kind("cities", ("code", "name", "provinceCode"), level=Level.CITY,
         parent_column="provinceCode"),
    Kind("areas", ("code", "name", "cityCode", "provinceCode"), level=Level.COUNTY,
         parent_column="cityCode", ancestor_columns=("provinceCode",)),
    Kind("streets", ("code", "name", "areaCode", "provinceCode", "cityCode"), level=Level.TOWN,
         parent_column="areaCode", ancestor_columns=("provinceCode", "cityCode")),
    Kind("villages", ("code", "name"), ("town",), level=Level.VILLAGE, parent_column="town",
         formats=(".csv", ".json")),
    Kind("units", ("code", "name", "type", "node"),
         ("sector", "active_from", "active_to", "cutoff", "placed_from"),
         formats=(".csv", ".json")),
)}
# The level each parent or ancestor column of a file names.
COLUMN_LEVELS = {"provinceCode": Level.PROVINCE, "cityCode": Level.CITY,
                 "areaCode": Level.COUNTY, "town": Level.TOWN}
LEVEL_NAMES = {Level.PROVINCE: ("省", "province"), Level.CITY: ("地市", "city"),
               Level.COUNTY: ("县区", "county"), Level.TOWN: ("乡镇街道", "township"),
               Level.VILLAGE: ("村社区", "village")}


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a row (or a file) cannot be imported: where, which field, a stable code, and why."""

    file: str
    line: int  # 0: the file as a whole
    field: str
    code: str
    message_zh: str
    message_en: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        column = f" {self.field}:" if self.field else ""
        return f"{where}:{column} {self.message_en} / {self.message_zh} [{self.code}]"


@dataclass(frozen=True, slots=True)
class Record:
    file: str
    line: int
    fields: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class NodeRow:
    code: str
    name: str
    file: str
    line: int

    @property
    def level(self) -> Level:
        return LEVEL_BY_LENGTH[len(self.code)]


@dataclass(frozen=True, slots=True)
class UnitRow:
    code: str
    name: str
    unit_type: str
    sector: str
    node: str
    active_from: date | None
    active_to: date | None
    cutoff: time | None
    placed_from: date | None
    file: str
    line: int


@dataclass
class Batch:
    """Everything read from the files of one import."""

    nodes: list[NodeRow] = field(default_factory=list)
    units: list[UnitRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: int = 0  # rows outside the --within filter
    files: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Known:
    """What the registry holds already, as far as checking an import needs it."""

    nodes: frozenset[str] | set[str] = frozenset()
    # unit code -> its placements (valid_from, node), sorted by valid_from
    placements: Mapping[str, tuple[tuple[date, str], ...]] = field(default_factory=dict)


@dataclass
class Plan:
    """What to write: every row of the import (unchanged ones are filtered by the upsert) and
    the placement changes moves need."""

    nodes: list[tuple[str, str, int, str | None]]
    units: list[tuple[str, str, str, str, date | None, date | None, time | None]]
    placements: list[tuple[str, date, str]]  # (unit, valid_from, node) to insert or update
    unplacements: list[tuple[str, date]]  # (unit, valid_from) to delete


# ---------------------------------------------------------------- reading files


def kind_of(path: Path) -> Kind | None:
    """The kind of a file from its name: `streets.csv`, `units-2024.json`, ..."""
    stem = path.name.split(".")[0].lower()
    for name, kind in KINDS.items():
        if (stem == name or stem.startswith(name + "-") or stem.startswith(name + "_")) \
                and path.suffix.lower() in kind.formats:
            return kind
    return None


def sources(paths: Iterable[Path], kind: str | None = None) -> tuple[list[tuple[Path, Kind]],
                                                                     list[Problem]]:
    """The files to read, in the order parents come before children. A directory holds files
    named after their kind (provinces.csv ... villages.csv, units.csv)."""
    found: list[tuple[Path, Kind]] = []
    problems: list[Problem] = []
    for path in paths:
        if path.is_dir():
            inside = sorted((p for p in path.iterdir() if p.is_file() and kind_of(p)),
                            key=lambda p: p.name)
            if not inside:
                problems.append(Problem(str(path), 0, "", "no_files",
                                        "目录中没有可导入的文件",
                                        "no importable file in this directory "
                                        f"(expected {', '.join(KINDS)} .csv/.json)"))
            found += [(p, kind_of(p)) for p in inside]  # type: ignore[misc]
        elif not path.exists():
            problems.append(Problem(str(path), 0, "", "not_found", "文件不存在",
                                    "no such file"))
        else:
            k = KINDS.get(kind) if kind else kind_of(path)
            if k is None:
                problems.append(Problem(str(path), 0, "", "unknown_kind", "无法判断文件类型",
                                        f"cannot tell what this file holds: name it after "
                                        f"its kind ({', '.join(KINDS)}) or pass --kind"))
            elif path.suffix.lower() not in k.formats:
                problems.append(Problem(str(path), 0, "", "unknown_format", "文件格式不支持",
                                        f"{k.name} come as {' or '.join(k.formats)}"))
            else:
                found.append((path, k))
    order = list(KINDS)
    found.sort(key=lambda pk: order.index(pk[1].name))
    return found, problems


def _decode(data: bytes, file: str) -> tuple[str | None, Problem | None]:
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, Problem(file, line, "", "not_utf8", "文件不是 UTF-8 编码(请另存为 UTF-8)",
                             "the file is not UTF-8 (save it as UTF-8)")


def _check_header(columns: list[str], kind: Kind, file: str) -> list[Problem]:
    problems = []
    missing = [c for c in kind.required if c not in columns]
    if missing:
        problems.append(Problem(file, 1, ",".join(missing), "missing_column",
                                f"缺少列 {', '.join(missing)}",
                                f"missing column {', '.join(missing)}"))
    unknown = [c for c in columns if c not in kind.required + kind.optional]
    if unknown:
        problems.append(Problem(file, 1, ",".join(unknown), "unknown_column",
                                f"未知的列 {', '.join(unknown)}",
                                f"unknown column {', '.join(unknown)} (known: "
                                f"{', '.join(kind.required + kind.optional)})"))
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        problems.append(Problem(file, 1, ",".join(duplicated), "duplicate_column",
                                f"列重复 {', '.join(duplicated)}",
                                f"column given twice: {', '.join(duplicated)}"))
    return problems


def read_csv(text: str, kind: Kind, file: str) -> tuple[list[Record], list[Problem]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [c.strip() for c in next(reader)]
    except StopIteration:
        return [], [Problem(file, 1, "", "empty_file", "文件为空", "the file is empty")]
    problems = _check_header(header, kind, file)
    if problems:
        return [], problems
    records = []
    start = reader.line_num + 1
    try:
        for values in reader:
            if any(v.strip() for v in values):
                if len(values) != len(header):
                    problems.append(Problem(file, start, "", "wrong_column_count",
                                            f"应有 {len(header)} 列,实有 {len(values)} 列",
                                            f"{len(values)} values for {len(header)} columns"))
                else:
                    records.append(Record(file, start, dict(zip(header, (v.strip() for v in values),
                                                            strict=True))))
            start = reader.line_num + 1
    except csv.Error as exc:
        problems.append(Problem(file, start, "", "bad_csv", "CSV 格式错误", str(exc)))
    return records, problems


def read_json(text: str, kind: Kind, file: str) -> tuple[list[Record], list[Problem]]:
    """A JSON array of objects; each record keeps the line its object starts on."""
    decoder = json.JSONDecoder()
    records: list[Record] = []
    problems: list[Problem] = []
    pos, line, counted = 0, 1, 0

    def skip(i: int) -> int:
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        return i

    def line_at(i: int) -> int:
        nonlocal line, counted
        line += text.count("\n", counted, i)
        counted = i
        return line

    pos = skip(pos)
    if not text[pos:pos + 1] == "[":
        return [], [Problem(file, line_at(pos), "", "bad_json", "应为对象数组",
                            "expected a JSON array of objects")]
    pos = skip(pos + 1)
    allowed = kind.required + kind.optional
    while pos < len(text) and text[pos] != "]":
        start = line_at(pos)
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            return records, [*problems, Problem(file, exc.lineno, "", "bad_json",
                                                "JSON 格式错误", exc.msg)]
        if not isinstance(obj, dict):
            problems.append(Problem(file, start, "", "bad_json", "应为对象",
                                    "expected an object"))
        else:
            before = len(problems)
            fields: dict[str, str] = {}
            for key, value in obj.items():
                if key not in allowed:
                    problems.append(Problem(file, start, key, "unknown_column",
                                            f"未知的字段 {key}",
                                            f"unknown field {key} (known: {', '.join(allowed)})"))
                elif value is None:
                    continue
                elif isinstance(value, bool) or not isinstance(value, str | int):
                    problems.append(Problem(file, start, key, "not_text", "应为文本",
                                            "must be a string"))
                else:
                    fields[key] = str(value).strip()
            missing = [c for c in kind.required if c not in obj]
            if missing:
                problems.append(Problem(file, start, ",".join(missing), "missing_column",
                                        f"缺少字段 {', '.join(missing)}",
                                        f"missing field {', '.join(missing)}"))
            if len(problems) == before:
                records.append(Record(file, start, fields))
        pos = skip(end)
        if text[pos:pos + 1] == ",":
            pos = skip(pos + 1)
        elif text[pos:pos + 1] != "]":
            return records, [*problems, Problem(file, line_at(pos), "", "bad_json",
                                                "JSON 格式错误", "expected ',' or ']'")]
    if text[pos:pos + 1] != "]" or skip(pos + 1) != len(text):
        problems.append(Problem(file, line_at(min(pos, len(text))), "", "bad_json",
                                "JSON 格式错误", "expected a single array"))
    return records, problems


def read_records(path: Path, kind: Kind, name: str | None = None
                 ) -> tuple[list[Record], list[Problem]]:
    file = name or str(path)
    text, problem = _decode(path.read_bytes(), file)
    if problem:
        return [], [problem]
    assert text is not None
    if path.suffix.lower() == ".json":
        return read_json(text, kind, file)
    return read_csv(text, kind, file)


# ---------------------------------------------------------------- rows


def _required(record: Record, column: str, problems: list[Problem]) -> str | None:
    value = record.fields.get(column, "")
    if not value:
        problems.append(Problem(record.file, record.line, column, "required", "不能为空",
                                "is required"))
        return None
    return value


def _division_code(record: Record, column: str, problems: list[Problem]) -> str | None:
    value = _required(record, column, problems)
    if value is not None and (not DIGITS.fullmatch(value) or len(value) not in LEVEL_BY_LENGTH):
        problems.append(Problem(record.file, record.line, column, "invalid_code",
                                f"不是区划代码: {value}(应为 2、4、6、9 或 12 位数字)",
                                f"not a division code: {value!r} (2, 4, 6, 9 or 12 digits)"))
        return None
    return value


def _wrong_level(record: Record, column: str, code: str, want: str, want_zh: str) -> Problem:
    got_zh, got = LEVEL_NAMES[LEVEL_BY_LENGTH[len(code)]]
    return Problem(record.file, record.line, column, "wrong_level",
                   f"{code} 是{got_zh}级代码,这里应为{want_zh}",
                   f"{code} is a {got} code; {want} expected here")


def node_row(record: Record, kind: Kind, problems: list[Problem]) -> NodeRow | None:
    assert kind.level is not None
    before = len(problems)
    code = _division_code(record, "code", problems)
    name = _required(record, "name", problems)
    if name and len(name) > NODE_NAME_MAX:
        problems.append(Problem(record.file, record.line, "name", "too_long",
                                f"名称超过 {NODE_NAME_MAX} 字", f"longer than {NODE_NAME_MAX}"))
    if code is not None:
        want_zh, want = LEVEL_NAMES[kind.level]
        if len(code) != CODE_LENGTHS[kind.level]:
            problems.append(_wrong_level(record, "code", code,
                                         f"a {want} code ({CODE_LENGTHS[kind.level]} digits)",
                                         want_zh))
        else:
            for column in filter(None, (kind.parent_column, *kind.ancestor_columns)):
                given = record.fields.get(column, "")
                if not given:
                    if column != "town":  # optional in villages files: the code says it
                        problems.append(Problem(record.file, record.line, column, "required",
                                                "不能为空", "is required"))
                elif given != code[: CODE_LENGTHS[COLUMN_LEVELS[column]]]:
                    problems.append(Problem(
                        record.file, record.line, "code", "code_not_under_parent",
                        f"代码 {code} 不以上级代码 {given}({column})开头",
                        f"code {code} does not extend its parent's {given} ({column})"))
    if len(problems) > before:
        return None
    assert code is not None and name is not None
    return NodeRow(code, name, record.file, record.line)


def _date(record: Record, column: str, problems: list[Problem]) -> date | None:
    value = record.fields.get(column, "")
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(Problem(record.file, record.line, column, "invalid_date",
                                f"日期格式应为 YYYY-MM-DD: {value}",
                                f"not a date (YYYY-MM-DD): {value!r}"))
        return None


def unit_row(record: Record, types: Mapping[str, UnitType], known_sectors: Iterable[str],
             problems: list[Problem]) -> UnitRow | None:
    before = len(problems)
    f, where = record.fields, (record.file, record.line)
    code = _required(record, "code", problems)
    if code is not None and not UNIT_CODE.fullmatch(code):
        problems.append(Problem(*where, "code", "invalid_unit_code",
                                "单位代码只能含字母、数字、- 和 _,最长 32 位",
                                f"unit codes are letters, digits, '-' and '_', at most 32 "
                                f"long: {code!r}"))
    name = _required(record, "name", problems)
    if name and len(name) > UNIT_NAME_MAX:
        problems.append(Problem(*where, "name", "too_long", f"名称超过 {UNIT_NAME_MAX} 字",
                                f"longer than {UNIT_NAME_MAX}"))
    unit_type = _required(record, "type", problems)
    if unit_type is not None and unit_type not in types:
        problems.append(Problem(*where, "type", "unknown_type", f"未知单位类型 {unit_type}",
                                f"unknown unit type {unit_type!r} (known: "
                                f"{', '.join(types)})"))
        unit_type = None
    sector = f.get("sector") or (types[unit_type].sector if unit_type else None)
    if f.get("sector") and sector not in known_sectors:
        problems.append(Problem(*where, "sector", "unknown_sector", f"未知行业 {sector}",
                                f"unknown sector {sector!r} (known: "
                                f"{', '.join(known_sectors)})"))
    node = _division_code(record, "node", problems)
    if node is not None and len(node) < CODE_LENGTHS[Level.COUNTY]:
        problems.append(_wrong_level(record, "node", node, "a village, town or county",
                                     "村、乡镇或县"))
    active_from = _date(record, "active_from", problems)
    active_to = _date(record, "active_to", problems)
    if active_from and active_to and active_to < active_from:
        problems.append(Problem(*where, "active_to", "ends_before_start",
                                "停用日期早于启用日期", "active_to is before active_from"))
    cutoff = None
    if f.get("cutoff"):
        try:
            cutoff = time.fromisoformat(f["cutoff"])
        except ValueError:
            problems.append(Problem(*where, "cutoff", "invalid_time",
                                    f"时间格式应为 HH:MM: {f['cutoff']}",
                                    f"not a time of day (HH:MM): {f['cutoff']!r}"))
    placed_from = _date(record, "placed_from", problems)
    if len(problems) > before:
        return None
    assert code and name and unit_type and sector and node
    return UnitRow(code, name, unit_type, sector, node, active_from, active_to, cutoff,
                   placed_from, record.file, record.line)


def _within(record: Record, kind: Kind, within: str) -> bool:
    """Rows on the way down to `within` or below it (a node), or placed below it (a unit)."""
    if kind.level is None:
        return record.fields.get("node", "").startswith(within)
    code = record.fields.get("code", "")
    return code.startswith(within) or within.startswith(code)


def read(paths: Iterable[Path], kind: str | None = None, within: str | None = None,
         types: Mapping[str, UnitType] | None = None) -> Batch:
    """Read every file of an import; problems are collected, not raised."""
    types = types if types is not None else unit_types()
    known_sectors = sectors()
    batch = Batch()
    found, batch.problems = sources(paths, kind)
    for path, k in found:
        batch.files.append(str(path))
        records, problems = read_records(path, k)
        batch.problems += problems
        for record in records:
            if within and not _within(record, k, within):
                batch.skipped += 1
            elif k.level is None:
                if (unit := unit_row(record, types, known_sectors, batch.problems)) is not None:
                    batch.units.append(unit)
            elif (node := node_row(record, k, batch.problems)) is not None:
                batch.nodes.append(node)
    return batch


# ---------------------------------------------------------------- checking the whole


def plan_placements(unit: str, existing: tuple[tuple[date, str], ...], node: str,
                    placed_from: date | None, active_from: date | None, today: date
                    ) -> tuple[list[tuple[str, date, str]], list[tuple[str, date]]]:
    """The placement rows to set and to delete so that the unit is at `node` from `placed_from`.

    A move takes effect from a day: days before it stay where they were, so reports already
    rolled up there stay there. A row without placed_from places a new unit from the start
    and moves an existing one from today, unless it is already there.
    """
    if not existing:
        start = placed_from or min(BEGINNING, active_from or BEGINNING)
        return [(unit, start, node)], []
    if placed_from is None:
        current = [n for start, n in existing if start <= today]
        if current and current[-1] == node:
            return [], []
        placed_from = today
    before = [(start, n) for start, n in existing if start < placed_from]
    desired = before if before and before[-1][1] == node else [*before, (placed_from, node)]
    have = dict(existing)
    want = dict(desired)
    sets = [(unit, start, n) for start, n in desired if have.get(start) != n]
    deletes = [(unit, start) for start in have if start not in want]
    return sets, deletes


def check(batch: Batch, known: Known, today: date) -> tuple[Plan | None, list[Problem]]:
    """The import's plan, or every problem in it: duplicates, unknown parents and nodes."""
    problems = list(batch.problems)
    seen: dict[str, NodeRow] = {}
    for row in batch.nodes:
        if (first := seen.get(row.code)) is not None:
            problems.append(Problem(row.file, row.line, "code", "duplicate_code",
                                    f"代码 {row.code} 重复(见 {first.file} 第 {first.line} 行)",
                                    f"duplicate code {row.code} (also {first.file} line "
                                    f"{first.line})"))
        else:
            seen[row.code] = row
    for row in seen.values():
        parent = parent_of(row.code)
        if parent is not None and parent not in seen and parent not in known.nodes:
            problems.append(Problem(row.file, row.line, "code", "unknown_parent",
                                    f"上级区划 {parent} 不存在", f"unknown parent {parent}: "
                                    "import it first or in the same run"))
    units: dict[str, UnitRow] = {}
    for unit in batch.units:
        if (first_unit := units.get(unit.code)) is not None:
            problems.append(Problem(unit.file, unit.line, "code", "duplicate_code",
                                    f"单位代码 {unit.code} 重复(见 {first_unit.file} 第 "
                                    f"{first_unit.line} 行)",
                                    f"duplicate unit code {unit.code} (also "
                                    f"{first_unit.file} line {first_unit.line})"))
            continue
        units[unit.code] = unit
        if unit.node not in seen and unit.node not in known.nodes:
            problems.append(Problem(unit.file, unit.line, "node", "unknown_node",
                                    f"所属区划 {unit.node} 不存在",
                                    f"unknown node {unit.node}: import it first or in the "
                                    "same run"))
    if problems:
        return None, sorted(problems, key=lambda p: (p.file, p.line))
    plan = Plan(
        nodes=[(r.code, r.name, int(r.level), parent_of(r.code)) for r in seen.values()],
        units=[(u.code, u.name, u.unit_type, u.sector, u.active_from, u.active_to, u.cutoff)
               for u in units.values()],
        placements=[], unplacements=[])
    for u in units.values():
        sets, deletes = plan_placements(u.code, known.placements.get(u.code, ()), u.node,
                                        u.placed_from, u.active_from, today)
        plan.placements += sets
        plan.unplacements += deletes
    return plan, []
