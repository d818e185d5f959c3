"""The JSON Schemas of DHIS2's data value set and import summary, derived from DHIS2's own
classes and documentation (each file's $comment names its sources), and what Rollcall's
export adds on top: daily periods and, with the uid scheme, UIDs of DHIS2's form."""

import json
from functools import cache
from pathlib import Path

from jsonschema import Draft202012Validator

HERE = Path(__file__).parent


@cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((HERE / f"{name}.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


# Rollcall's export, within DHIS2's format: a daily period (DHIS2's DailyPeriodType, yyyyMMdd);
# UIDs (CodeGenerator.UID_REGEXP) unless the payload says the org units go by code.
DAILY = {
    "type": "object",
    "properties": {"dataValues": {"type": "array", "items": {
        "type": "object",
        "properties": {"period": {"pattern": r"^\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])$"},
                       "dataElement": {"pattern": r"^[a-zA-Z][a-zA-Z0-9]{10}$"},
                       "categoryOptionCombo": {"pattern": r"^[a-zA-Z][a-zA-Z0-9]{10}$"},
                       "attributeOptionCombo": {"pattern": r"^[a-zA-Z][a-zA-Z0-9]{10}$"}},
        "required": ["dataElement", "period", "orgUnit", "value"]}}},
    "if": {"not": {"required": ["orgUnitIdScheme"]}},
    "then": {"properties": {"dataValues": {"items": {
        "properties": {"orgUnit": {"pattern": r"^[a-zA-Z][a-zA-Z0-9]{10}$"}}}}}},
}


def errors_of_export(payload: dict) -> list[str]:
    """Every way `payload` is not a DHIS2 data value set as Rollcall exports it."""
    found = list(validator("dataValueSet").iter_errors(payload))
    found += list(Draft202012Validator(DAILY).iter_errors(payload))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in found]


def errors_of_summary(body: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator("importSummary").iter_errors(body)]
