"""Unit types with their sector and default cutoff, from a data file a deployment can edit."""

import tomllib
from dataclasses import dataclass
from datetime import time
from functools import cache
from pathlib import Path

DEFAULT_PATH = Path(__file__).parent.parent / "data" / "unit_types.toml"


@dataclass(frozen=True, slots=True)
class UnitType:
    code: str
    name_zh: str
    name_en: str
    sector: str
    cutoff: time


@cache
def unit_types(path: Path = DEFAULT_PATH) -> dict[str, UnitType]:
    data = tomllib.loads(path.read_text(encoding="utf-8"))["types"]
    return {code: UnitType(code, t["name_zh"], t["name_en"], t["sector"],
                           time.fromisoformat(t["cutoff"]))
            for code, t in data.items()}


@dataclass(frozen=True, slots=True)
class Sector:
    code: str
    name_zh: str
    name_en: str


@cache
def sectors(path: Path = DEFAULT_PATH) -> dict[str, Sector]:
    """The sectors a unit may belong to; every type's sector among them."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    found = {code: Sector(code, s["name_zh"], s["name_en"])
             for code, s in data.get("sectors", {}).items()}
    for code, t in data["types"].items():
        if t["sector"] not in found:
            raise ValueError(f"{path}: type {code} names unknown sector {t['sector']!r}")
    return found
