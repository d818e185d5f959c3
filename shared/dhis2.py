"""DHIS2 data value sets: the mapping from Rollcall's codes to a DHIS2 instance's identifiers,
and the wire format both ways (docs/architecture.md, "Each rule has one home").

The format follows DHIS2's own classes and documentation, not memory: a data value set is
`{"dataValues": [{"dataElement", "period", "orgUnit", "categoryOptionCombo",
"attributeOptionCombo", "value", "storedBy", "created", "lastUpdated", "comment", "followup"}]}`
with every value a string (dhis2-core `dxf2/datavalue/DataValue.java`, written by
`datavalue/DataExportOutput.java`); a daily period is `yyyyMMdd` (DHIS2's DailyPeriodType);
`created` and `lastUpdated` are `yyyy-MM-dd'T'HH:mm:ss.SSSZ` in UTC (`DateUtils.toLongGmtDate`);
the CSV has DHIS2's export header (`DataExportOutput.CSV_HEADER_ROW`). An import answers a
WebMessage carrying an ImportSummary (`WebMessageUtils.importSummary`, `ImportSummary`,
`ImportCount`, `ImportConflict`, `DataEntrySummary.toImportSummary`): status SUCCESS, WARNING
(some values refused) or ERROR (none written), HTTP 409 for ERROR.

The mapping file (TOML; the example is shared/data/dhis2/mapping.example.toml, a deployment
names its own with ROLLCALL_DHIS2_MAPPING):

    org_unit_id_scheme = "uid"        # or "code": Rollcall's codes are the org units' codes
    category_option_combo = "…"       # optional: the default for every data element
    attribute_option_combo = "…"      # optional: written on every value
    [data_elements]
    fever = "FTRrcoaog83"             # or {uid = "…", category_option_combo = "…"}
    [org_units]
    "430621" = "ImspTQPwCqd"          # a node or a reporting unit → its org unit

What has no mapping is never guessed: an export refuses it, naming every code, unless asked to
leave it out (then it is listed beside the payload); an import sends it on to ingest's door as
it came, which refuses it (unknown unit or metric) and keeps the refusal.
"""

import csv
import io
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from shared.errors import FieldError

DEFAULT_MAPPING = Path(__file__).parent / "data" / "dhis2" / "mapping.example.toml"
# dhis2-core common/CodeGenerator.java UID_REGEXP.
UID = re.compile(r"^[a-zA-Z][a-zA-Z0-9]{10}$")
# dhis2-core DataExportOutput.CSV_HEADER_ROW: the columns DHIS2 writes and reads.
CSV_HEADER = ("dataelement", "period", "orgunit", "categoryoptioncombo", "attributeoptioncombo",
              "value", "storedby", "lastupdated", "comment", "followup", "deleted")
DAILY = re.compile(r"^(\d{4})(\d{2})(\d{2})$")


class MappingError(ValueError):
    """A mapping file that cannot be used, with every problem in it."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Element:
    uid: str
    category_option_combo: str | None = None


@dataclass(frozen=True)
class IdMapping:
    """Rollcall's metric codes and node/unit codes → a DHIS2 instance's identifiers, and back."""

    elements: Mapping[str, Element]
    org_units: Mapping[str, str]
    org_unit_id_scheme: Literal["uid", "code"] = "uid"
    category_option_combo: str | None = None
    attribute_option_combo: str | None = None
    source: str = ""
    _metric_of: dict[tuple[str, str | None], str] = field(default_factory=dict, repr=False)
    _code_of: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for metric, element in self.elements.items():
            self._metric_of[(element.uid, self.coc_of(metric))] = metric
            self._metric_of.setdefault((element.uid, None), metric)
        self._code_of.update({ou: code for code, ou in self.org_units.items()})

    # -- out -----------------------------------------------------------------------------
    def coc_of(self, metric: str) -> str | None:
        element = self.elements.get(metric)
        return (element.category_option_combo if element else None) or self.category_option_combo

    def element_of(self, metric: str) -> str | None:
        element = self.elements.get(metric)
        return element.uid if element else None

    def org_unit_of(self, code: str) -> str | None:
        found = self.org_units.get(code)
        if found is None and self.org_unit_id_scheme == "code":
            return code
        return found

    # -- in ------------------------------------------------------------------------------
    def metric_of(self, data_element: str, coc: str | None) -> str | None:
        """The metric a data value is for: by its data element and category option combo, or
        by its data element alone when that names one metric (the default combo)."""
        found = self._metric_of.get((data_element, coc)) if coc else None
        return found or self._metric_of.get((data_element, None))

    def code_of(self, org_unit: str) -> str | None:
        found = self._code_of.get(org_unit)
        if found is None and self.org_unit_id_scheme == "code":
            return org_unit
        return found


def load_mapping(path: Path | None = None, metrics: Iterable[str] | None = None) -> IdMapping:
    """The mapping file at `path` (the shipped example by default), checked: UIDs of DHIS2's
    form, a scheme DHIS2 knows, and (given the catalogue's `metrics`) only known metric codes.
    Every problem is named at once."""
    path = path or DEFAULT_MAPPING
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MappingError([f"{path}: {exc}"]) from None
    problems: list[str] = []
    known = {"org_unit_id_scheme", "category_option_combo", "attribute_option_combo",
             "data_elements", "org_units"}
    problems += [f"{path}: unknown setting {k!r}" for k in data if k not in known]
    scheme = data.get("org_unit_id_scheme", "uid")
    if scheme not in ("uid", "code"):
        problems.append(f"{path}: org_unit_id_scheme is 'uid' or 'code', not {scheme!r}")

    def uid(where: str, value: object) -> str:
        if not isinstance(value, str) or not UID.match(value):
            problems.append(f"{path}: {where}: {value!r} is not a DHIS2 UID "
                            "(a letter, then 10 letters or digits)")
        return str(value)

    coc = data.get("category_option_combo")
    aoc = data.get("attribute_option_combo")
    if coc is not None:
        uid("category_option_combo", coc)
    if aoc is not None:
        uid("attribute_option_combo", aoc)
    elements: dict[str, Element] = {}
    wanted = set(metrics) if metrics is not None else None
    for metric, spec in (data.get("data_elements") or {}).items():
        if wanted is not None and metric not in wanted:
            problems.append(f"{path}: data_elements.{metric}: not a metric of the catalogue")
        if isinstance(spec, dict):
            extra = set(spec) - {"uid", "category_option_combo"}
            if extra:
                problems.append(f"{path}: data_elements.{metric}: unknown keys {sorted(extra)}")
            combo = spec.get("category_option_combo")
            elements[metric] = Element(
                uid(f"data_elements.{metric}.uid", spec.get("uid")),
                uid(f"data_elements.{metric}.category_option_combo", combo) if combo else None)
        else:
            elements[metric] = Element(uid(f"data_elements.{metric}", spec))
    seen: dict[tuple[str, str | None], str] = {}
    for metric, element in elements.items():
        key = (element.uid, element.category_option_combo or coc)
        if key in seen:
            problems.append(f"{path}: data_elements.{metric}: the same data element and "
                            f"category option combo as {seen[key]}")
        seen[key] = metric
    org_units: dict[str, str] = {}
    owners: dict[str, str] = {}
    for code, ou in (data.get("org_units") or {}).items():
        if scheme == "uid":
            uid(f"org_units.{code}", ou)
        elif not isinstance(ou, str) or not ou:
            problems.append(f"{path}: org_units.{code}: not an org unit code")
        if ou in owners:
            problems.append(f"{path}: org_units.{code}: {ou} is already {owners[ou]}'s")
        owners[str(ou)] = code
        org_units[code] = str(ou)
    if problems:
        raise MappingError(problems)
    return IdMapping(elements, org_units, scheme, coc, aoc, str(path))


# -- values and periods --------------------------------------------------------------------


def period_of(day: date) -> str:
    """DHIS2's daily period: yyyyMMdd."""
    return day.strftime("%Y%m%d")


def day_of(period: object) -> str | None:
    """The ISO day of a daily period (yyyyMMdd); None if it is not one (a week, a month…)."""
    if not isinstance(period, str) or not (m := DAILY.match(period)):
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3])).isoformat()
    except ValueError:
        return None


def timestamp(instant: datetime | None) -> str | None:
    """DHIS2's created / lastUpdated: yyyy-MM-dd'T'HH:mm:ss.SSS+0000 (UTC)."""
    if instant is None:
        return None
    t = instant.astimezone(UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+0000"


def value_text(value: float | int) -> str:
    """A figure as DHIS2 carries every value: a string ("12", "37.5")."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def number_of(value: object) -> object:
    """A DHIS2 value ("12") as the number Rollcall takes; anything else is left as it came, for
    the door to refuse and keep (a text is not a figure)."""
    if isinstance(value, str) and NUMBER.match(value.strip()):
        text = value.strip()
        if re.match(r"^[+-]?\d{1,300}$", text):
            return int(text)  # exactly: a count never passes through a float
        number = float(text)
        if math.isfinite(number):
            return number
    return value


# -- export --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    """One figure to export: a node's or a unit's value of a metric on a day."""

    code: str  # the node or unit
    day: date
    metric: str
    value: float | int
    stored_by: str | None = None
    created: datetime | None = None
    last_updated: datetime | None = None
    comment: str | None = None


@dataclass
class Unmapped:
    """The codes an export found no DHIS2 identifier for."""

    metrics: set[str] = field(default_factory=set)
    org_units: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.metrics or self.org_units)

    def listed(self) -> list[str]:
        return ([f"metric:{m}" for m in sorted(self.metrics)]
                + [f"org_unit:{c}" for c in sorted(self.org_units)])


def data_values(figures: Iterable[Figure], mapping: IdMapping) -> tuple[list[dict], Unmapped]:
    """The data values of `figures` in DHIS2's JSON shape, and what could not be mapped (left
    out). Optional fields are absent rather than null."""
    out: list[dict] = []
    unmapped = Unmapped()
    for f in figures:
        element, org_unit = mapping.element_of(f.metric), mapping.org_unit_of(f.code)
        if element is None:
            unmapped.metrics.add(f.metric)
        if org_unit is None:
            unmapped.org_units.add(f.code)
        if element is None or org_unit is None:
            continue
        dv: dict = {"dataElement": element, "period": period_of(f.day), "orgUnit": org_unit}
        if coc := mapping.coc_of(f.metric):
            dv["categoryOptionCombo"] = coc
        if mapping.attribute_option_combo:
            dv["attributeOptionCombo"] = mapping.attribute_option_combo
        dv["value"] = value_text(f.value)
        for key, val in (("storedBy", f.stored_by), ("created", timestamp(f.created)),
                         ("lastUpdated", timestamp(f.last_updated)), ("comment", f.comment)):
            if val:
                dv[key] = val
        dv["followup"] = False
        out.append(dv)
    return out, unmapped


def data_value_set(values: list[dict], mapping: IdMapping) -> dict:
    """The payload: the values, and the org unit scheme when it is not DHIS2's default."""
    head = {"orgUnitIdScheme": "CODE"} if mapping.org_unit_id_scheme == "code" else {}
    return {**head, "dataValues": values}


def to_csv(values: Sequence[dict]) -> str:
    """The values as DHIS2's CSV (its export header; empty cells for absent fields)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for dv in values:
        writer.writerow([dv.get("dataElement", ""), dv.get("period", ""), dv.get("orgUnit", ""),
                         dv.get("categoryOptionCombo", ""), dv.get("attributeOptionCombo", ""),
                         dv.get("value", ""), dv.get("storedBy", ""), dv.get("lastUpdated", ""),
                         dv.get("comment", ""), "true" if dv.get("followup") else "false",
                         "true" if dv.get("deleted") else "false"])
    return buffer.getvalue()


Format = Literal["json", "csv"]
WhenUnmapped = Literal["refuse", "skip"]


def unmapped_errors(unmapped: Unmapped, mapping: IdMapping) -> list[FieldError]:
    """Why an export is refused: every code the mapping lacks, named."""
    where = mapping.source or "the DHIS2 mapping"
    errors = [FieldError(f"data_elements.{m}", "unmapped_code",
                         f"映射文件 {where} 中没有指标 {m} 对应的 DHIS2 数据元",
                         f"no DHIS2 data element for metric {m} in {where}")
              for m in sorted(unmapped.metrics)]
    errors += [FieldError(f"org_units.{c}", "unmapped_code",
                          f"映射文件 {where} 中没有 {c} 对应的 DHIS2 组织机构",
                          f"no DHIS2 org unit for {c} in {where}")
               for c in sorted(unmapped.org_units)]
    return errors


def rendered(figures: Iterable[Figure], mapping: IdMapping, fmt: Format, unmapped: WhenUnmapped,
             name: str) -> tuple[str | None, str, dict[str, str], list[FieldError]]:
    """An export's body, media type and headers; or, with `unmapped="refuse"` and codes the
    mapping lacks, no body and the errors naming them. Skipped codes are listed in the
    `Rollcall-Unmapped` header (the payload itself stays DHIS2's)."""
    values, missing = data_values(figures, mapping)
    if missing and unmapped == "refuse":
        return None, "", {}, unmapped_errors(missing, mapping)
    headers = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    if missing:
        listed = ", ".join(missing.listed())
        headers["Rollcall-Unmapped"] = listed if len(listed) <= 4000 else listed[:3990] + ", …"
    if fmt == "csv":
        return to_csv(values), "application/csv; charset=utf-8", headers, []
    return (json.dumps(data_value_set(values, mapping), ensure_ascii=False),
            "application/json", headers, [])


# -- import --------------------------------------------------------------------------------

# DHIS2's CSV column names as its reader takes them (the export header and the documented
# short forms), → the JSON field.
_CSV_COLUMNS = {"dataelement": "dataElement", "de": "dataElement", "period": "period",
                "pe": "period", "orgunit": "orgUnit", "ou": "orgUnit",
                "categoryoptioncombo": "categoryOptionCombo", "catoptcombo": "categoryOptionCombo",
                "co": "categoryOptionCombo", "attributeoptioncombo": "attributeOptionCombo",
                "attroptcombo": "attributeOptionCombo", "ao": "attributeOptionCombo",
                "value": "value", "storedby": "storedBy", "strby": "storedBy",
                "lastupdated": "lastUpdated", "lstupd": "lastUpdated", "timestamp": "lastUpdated",
                "comment": "comment", "cmt": "comment", "followup": "followup",
                "flwup": "followup", "deleted": "deleted", "created": "created"}


class NotDhis2Csv(ValueError):
    """A CSV without DHIS2's header row (DHIS2 itself no longer reads one without it)."""

    error = FieldError("body", "not_dhis2_csv",
                       "须为带表头的 DHIS2 CSV(dataelement, period, orgunit, value …)",
                       "not a DHIS2 CSV: its header names dataelement, period, orgunit, "
                       "value…")


def from_csv(text: str) -> dict:
    """A DHIS2 CSV (with its header row, as DHIS2 requires) as a data value set; NotDhis2Csv
    when the header does not name DHIS2's columns."""
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error:
        raise NotDhis2Csv() from None
    names = [_CSV_COLUMNS.get(h.strip().lower().replace("_", ""), h) for h in
             (rows[0] if rows else [])]
    if not {"dataElement", "period", "orgUnit"} <= set(names):
        raise NotDhis2Csv()
    values = []
    for row in rows[1:]:
        if not any(cell.strip() for cell in row):
            continue
        dv = {name: cell for name, cell in zip(names, row, strict=False) if cell != ""}
        for flag in ("followup", "deleted"):
            if flag in dv:
                dv[flag] = dv[flag].strip().lower() == "true"
        values.append(dv)
    return {"dataValues": values}


# ImportConflict.errorCode for Rollcall's refusals, where DHIS2 has one (feedback/ErrorCode.java).
E_PERIOD = "E8100"  # Value #{0} period not defined in group or value
E_ELEMENT_MISSING = "E8102"  # Value #{0} data element not defined in group or value
E_PERIOD_INVALID = "E7611"  # Period not valid
E_ELEMENT_NOT_FOUND = "E8103"  # Value #{0} data element not found
E_ORG_UNIT_MISSING = "E8105"  # Value #{0} org unit not defined in group or value
E_ORG_UNIT_NOT_FOUND = "E8107"  # Value #{0} org unit not found
E_VALUE_INVALID = "E8122"  # Value #{0} value is no valid {type}: {reason}
E_COMMENT_TOO_LONG = "E8125"  # Value #{0} comment too long
E_SAME_VALUE = "E8128"  # Value #{indexes} all affect the same data value
E_NO_ACCESS = "E8011"  # Current user cannot enter data for org unit(s)
E_UNTIMELY = "E8031"  # Untimely data entry for org unit and period(s)


@dataclass
class Summary:
    """An import's outcome, counted per data value as DHIS2 counts them."""

    imported: int = 0
    updated: int = 0
    ignored: int = 0
    deleted: int = 0
    conflicts: list[dict] = field(default_factory=list)
    rejected: list[int] = field(default_factory=list)
    description: str | None = None
    unchanged: int = 0  # of the ignored: values already stored as sent (written, in effect)
    reference: str | None = None  # where the import is kept (ImportSummary.reference)

    def same(self, n: int) -> None:
        """`n` values already stored as they came: ignored, as nothing changes."""
        self.unchanged += n
        self.ignored += n

    def conflict(self, indexes: Sequence[int], error: FieldError, error_code: str | None = None,
                 obj: str | None = None, value: str | None = None,
                 **more: str) -> None:
        """Values `indexes` were not written, for `error` (an ImportConflict: `value` says it as
        DHIS2 would, `errorCode` is DHIS2's where it has one; `objects` carries the refusal as
        Rollcall says it everywhere: field, code, Chinese and English)."""
        c: dict = {}
        if obj is not None:
            c["object"] = obj
        c["objects"] = {"field": error.field, "code": error.code,
                        "message_zh": error.message_zh, "message_en": error.message_en, **more}
        c["value"] = value or error.message_en
        if error_code:
            c["errorCode"] = error_code
        c["property"] = error.field
        c["indexes"] = sorted(indexes)
        self.conflicts.append(c)
        fresh = set(indexes) - set(self.rejected)  # a value refused for two reasons counts once
        self.rejected += sorted(fresh)
        self.ignored += len(fresh)

    @property
    def status(self) -> Literal["SUCCESS", "WARNING", "ERROR"]:
        if not self.conflicts:
            return "SUCCESS"
        # DHIS2: ERROR when nothing was written; a value already stored as sent counts as
        # written (DataEntrySummary counts it among the values that succeeded).
        written = self.imported + self.updated + self.deleted + self.unchanged
        return "WARNING" if written else "ERROR"

    def web_message(self) -> tuple[int, dict]:
        """The HTTP status and body DHIS2 answers a data value set import with."""
        return self.answer(self.import_summary())

    def import_summary(self) -> dict:
        """The ImportSummary itself."""
        summary: dict = {"responseType": "ImportSummary", "status": self.status}
        if self.description:
            summary["description"] = self.description
        summary["importCount"] = {"imported": self.imported, "updated": self.updated,
                                  "ignored": self.ignored, "deleted": self.deleted}
        summary["conflicts"] = self.conflicts
        summary["rejectedIndexes"] = sorted(set(self.rejected))
        summary["dataSetComplete"] = "false"
        if self.reference:
            summary["reference"] = self.reference
        return summary

    @staticmethod
    def answer(summary: dict) -> tuple[int, dict]:
        """An ImportSummary wrapped in DHIS2's WebMessage, with its HTTP status."""
        status = summary["status"]
        if status == "ERROR":
            head = {"httpStatus": "Conflict", "httpStatusCode": 409, "status": "ERROR",
                    "message": "An error occurred, please check import summary."}
        elif status == "WARNING":
            head = {"httpStatus": "OK", "httpStatusCode": 200, "status": "WARNING",
                    "message": "Import completed with warnings, please check import summary."}
        else:
            head = {"httpStatus": "OK", "httpStatusCode": 200, "status": "OK",
                    "message": "Import was successful."}
        return head["httpStatusCode"], {**head, "response": summary}
