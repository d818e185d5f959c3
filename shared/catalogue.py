"""The metric catalogue (like DHIS2 data elements) and the validation rules it carries."""

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from shared.aggregation import KINDS
from shared.errors import FieldError

DEFAULT_PATH = Path(__file__).parent / "data" / "catalogue.toml"

Aggregation = Literal["sum", "max", "min"]


@dataclass(frozen=True, slots=True)
class Metric:
    code: str
    name_zh: str
    name_en: str
    value_type: Literal["count", "decimal"]
    aggregation: Aggregation
    min_value: float | None = None
    max_value: float | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """lhs <= rhs, e.g. nucleic-acid positives <= tests."""

    code: str
    lhs: str
    rhs: str
    message_zh: str
    message_en: str
    # Checked only when the report carries both metrics (a school's sick absences against its
    # enrolment); otherwise a missing rhs counts as zero, as tests do for positives.
    both_given: bool = False


@dataclass(frozen=True, slots=True)
class Ratio:
    code: str
    numerator: str
    denominator: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Catalogue:
    metrics: dict[str, Metric]
    rules: tuple[Rule, ...] = ()
    ratios: tuple[Ratio, ...] = ()
    by_aggregation: dict[str, tuple[str, ...]] = field(init=False)

    def __post_init__(self) -> None:
        groups = {agg: tuple(m.code for m in self.metrics.values() if m.aggregation == agg)
                  for agg in KINDS}
        object.__setattr__(self, "by_aggregation", groups)

    @classmethod
    def from_toml(cls, path: Path = DEFAULT_PATH) -> "Catalogue":
        """The catalogue in a TOML file; CatalogueError lists everything wrong with it."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise CatalogueError([f"{path}: {exc}"]) from exc
        problems = check_catalogue(data)
        if problems:
            raise CatalogueError([f"{path}: {p}" for p in problems])
        metrics = {m["code"]: Metric(**m) for m in data.get("metrics", [])}
        rules = tuple(Rule(**r) for r in data.get("rules", []))
        ratios = tuple(Ratio(**r) for r in data.get("ratios", []))
        return cls(metrics, rules, ratios)

    def validate(self, values: Mapping[str, object], prefix: str = "values") -> list[FieldError]:
        """Every reason the values cannot be accepted; empty when they can."""
        errors: list[FieldError] = []
        for code, value in values.items():
            where = f"{prefix}.{code}"
            metric = self.metrics.get(code)
            if metric is None:
                errors.append(FieldError(where, "unknown_metric", f"未知指标 {code}",
                                         f"unknown metric {code}"))
                continue
            if (isinstance(value, bool) or not isinstance(value, int | float)
                    or not math.isfinite(value)):
                errors.append(FieldError(where, "not_a_number", "必须是数字", "must be a number"))
                continue
            if metric.value_type == "count":
                if value != int(value):
                    errors.append(FieldError(where, "not_integer", "必须是整数",
                                             "must be a whole number"))
                    continue
                if value < 0:
                    errors.append(FieldError(where, "negative", "不能为负数",
                                             "cannot be negative"))
                    continue
            low, high = metric.min_value, metric.max_value
            if (low is not None and value < low) or (high is not None and value > high):
                errors.append(FieldError(where, "out_of_range",
                                         f"超出范围 {low}–{high}", f"outside {low}–{high}"))
        for rule in self.rules:
            if rule.both_given and (rule.lhs not in values or rule.rhs not in values):
                continue
            lhs, rhs = values.get(rule.lhs, 0), values.get(rule.rhs, 0)
            if isinstance(lhs, int | float) and isinstance(rhs, int | float) and lhs > rhs:
                errors.append(FieldError(f"{prefix}.{rule.lhs}", rule.code,
                                         rule.message_zh, rule.message_en))
        return errors

    def ratios_of(self, totals: Mapping[str, float]) -> dict[str, float | None]:
        """Ratios from summed parts; None where the denominator is zero."""
        out: dict[str, float | None] = {}
        for ratio in self.ratios:
            den = totals.get(ratio.denominator, 0)
            out[ratio.code] = (totals.get(ratio.numerator, 0) / den) if den else None
        return out


class CatalogueError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")
SECTIONS = {
    "metrics": ({"code", "name_zh", "name_en", "value_type", "aggregation"},
                {"min_value", "max_value"}),
    "rules": ({"code", "lhs", "rhs", "message_zh", "message_en"}, {"both_given"}),
    "ratios": ({"code", "numerator", "denominator", "name_zh", "name_en"}, set()),
}


def check_catalogue(data: Mapping) -> list[str]:
    """Everything wrong with a catalogue file's content: unknown or missing keys, duplicate or
    malformed codes, value types and aggregations that do not exist, rules and ratios naming
    unknown metrics, and ratios of parts that are not summed (a ratio is computed from summed
    parts at each level, never averaged)."""
    problems = [f"unknown section [{key}] (known: metrics, rules, ratios)"
                for key in data if key not in SECTIONS]
    codes: dict[str, str] = {}
    for section, (required, optional) in SECTIONS.items():
        entries = data.get(section, [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            problems.append(f"[[{section}]] must be a list of tables")
            continue
        for i, entry in enumerate(entries, 1):
            where = f"{section} #{i} ({entry.get('code', '?')})"
            problems += [f"{where}: missing {key}" for key in sorted(required - entry.keys())]
            problems += [f"{where}: unknown key {key}"
                         for key in sorted(entry.keys() - required - optional)]
            code = entry.get("code")
            if not isinstance(code, str) or not CODE.fullmatch(code):
                problems.append(f"{where}: code must be lower-case letters, digits and _")
            elif code in codes:
                problems.append(f"{where}: code {code} already used by {codes[code]}")
            else:
                codes[code] = section
            for key in ("name_zh", "name_en", "message_zh", "message_en"):
                if key in entry and not (isinstance(entry[key], str) and entry[key].strip()):
                    problems.append(f"{where}: {key} must be a non-empty string")
    metrics = {m.get("code"): m for m in data.get("metrics", []) if isinstance(m, dict)}
    for i, m in enumerate(data.get("metrics", []), 1):
        where = f"metrics #{i} ({m.get('code', '?')})"
        if m.get("value_type", "count") not in ("count", "decimal"):
            problems.append(f"{where}: value_type must be count or decimal")
        if m.get("aggregation", "sum") not in KINDS:
            *others, last = KINDS
            problems.append(f"{where}: aggregation must be {', '.join(others)} or {last}")
        low, high = m.get("min_value"), m.get("max_value")
        for key, bound in (("min_value", low), ("max_value", high)):
            if bound is not None and (isinstance(bound, bool)
                                      or not isinstance(bound, int | float)):
                problems.append(f"{where}: {key} must be a number")
        if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
            problems.append(f"{where}: min_value is above max_value")
    for i, r in enumerate(data.get("rules", []), 1):
        where = f"rules #{i} ({r.get('code', '?')})"
        for key in ("lhs", "rhs"):
            if key in r and r[key] not in metrics:
                problems.append(f"{where}: {key} names unknown metric {r[key]}")
        if r.get("lhs") is not None and r.get("lhs") == r.get("rhs"):
            problems.append(f"{where}: lhs and rhs are the same metric")
        if not isinstance(r.get("both_given", False), bool):
            problems.append(f"{where}: both_given must be true or false")
    for i, q in enumerate(data.get("ratios", []), 1):
        where = f"ratios #{i} ({q.get('code', '?')})"
        for key in ("numerator", "denominator"):
            if key not in q:
                continue
            if q[key] not in metrics:
                problems.append(f"{where}: {key} names unknown metric {q[key]}")
            elif metrics[q[key]].get("aggregation") != "sum":
                problems.append(f"{where}: {key} {q[key]} is not summed; ratios are "
                                "computed from summed parts")
    return problems


@cache
def default_catalogue() -> Catalogue:
    return Catalogue.from_toml()
