"""What the benchmark sends: one report per unit and day, as a unit's reporter would send it
(about one in five a zero report), serialised before any clock starts."""

import json
import zlib
from collections.abc import Mapping
from datetime import date

from shared.catalogue import default_catalogue

# Units with a cutoff later than the benchmark's days do not matter: every day is in the past.
ZERO_EVERY = 5


def report(unit: str, day: date, unit_type: str = "") -> dict:
    """Those of the figures below that are on the unit type's form (others would be refused)."""
    h = zlib.crc32(f"{unit}:{day}".encode())
    values: dict[str, float] = {}
    if h % ZERO_EVERY:
        tests = h % 7
        values = {"fever": h % 3, "ili": (h >> 3) % 2, "nat_tests": tests,
                  "nat_positive": min(tests, (h >> 5) % 2), "max_temperature": 36.5}
        form = default_catalogue().form_for(unit_type)
        if form is not None:
            values = {code: v for code, v in values.items() if code in form.metrics}
    return {"unit": unit, "day": day.isoformat(), "reporter": "基准测试", "values": values}


def reports(units: list[str], day: date, types: Mapping[str, str] | None = None) -> list[dict]:
    return [report(unit, day, (types or {}).get(unit, "")) for unit in units]


def bulk_bodies(items: list[dict], size: int) -> list[bytes]:
    """JSON arrays of at most `size` reports (POST /v1/reports/bulk)."""
    return [json.dumps(items[i:i + size], ensure_ascii=False).encode()
            for i in range(0, len(items), size)]


def messages(items: list[dict]) -> list[bytes]:
    """One message per report (the `report.submit` subject)."""
    return [json.dumps(item, ensure_ascii=False).encode() for item in items]


def copy_rows(items: list[dict], nodes: dict[str, str]) -> list[tuple]:
    """The same reports as the rows a projector writes (the COPY baseline)."""
    return [(item["unit"], date.fromisoformat(item["day"]), 1, nodes[item["unit"]],
             json.dumps(item["values"])) for item in items]
