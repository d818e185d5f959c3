"""The metric catalogue (like DHIS2 data elements) and the validation rules it carries."""

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

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
                  for agg in ("sum", "max", "min")}
        object.__setattr__(self, "by_aggregation", groups)

    @classmethod
    def from_toml(cls, path: Path = DEFAULT_PATH) -> "Catalogue":
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        metrics = {m["code"]: Metric(**m) for m in data.get("metrics", [])}
        rules = tuple(Rule(**r) for r in data.get("rules", []))
        ratios = tuple(Ratio(**r) for r in data.get("ratios", []))
        for rule in rules:
            for code in (rule.lhs, rule.rhs):
                if code not in metrics:
                    raise ValueError(f"rule {rule.code} names unknown metric {code}")
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


@cache
def default_catalogue() -> Catalogue:
    return Catalogue.from_toml()
