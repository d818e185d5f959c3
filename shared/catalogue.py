"""The metric catalogue (like DHIS2 data elements), the validation rules it carries, and the
form of each unit type (the metrics it reports). docs/architecture.md, "Each rule has one home".
"""

import math
import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from shared.aggregation import DAY_KINDS, KINDS
from shared.errors import FieldError
from shared.registry.unit_types import unit_types

DEFAULT_PATH = Path(__file__).parent / "data" / "catalogue.toml"

Aggregation = Literal["sum", "max", "min"]
OverDays = Literal["sum", "last", "max", "min", "average"]


@dataclass(frozen=True, slots=True)
class Metric:
    """`aggregation` says how the metric combines across units, `over_days` over a range of
    days (shared/aggregation.py); `measure_*` is its unit of measure; `item` groups the
    metrics of one supply counted in different units of measure, which never add up."""

    code: str
    name_zh: str
    name_en: str
    value_type: Literal["count", "decimal"]
    aggregation: Aggregation
    over_days: OverDays
    measure_zh: str
    measure_en: str
    min_value: float | None = None
    max_value: float | None = None
    item: str | None = None
    decimals: int = 2  # the precision of a decimal (and of an average of counts)

    def problem(self, value: object) -> tuple[str, str, str] | None:
        """Why `value` cannot be a figure of this metric (code, Chinese, English), or None."""
        if type(value) not in (int, float) or not math.isfinite(value):  # type: ignore[arg-type]
            return "not_a_number", "必须是数字", "must be a number"  # bool is not a number here
        assert isinstance(value, int | float)
        if self.value_type == "count":
            if value != int(value):
                return "not_integer", "必须是整数", "must be a whole number"
            if value < 0:
                return "negative", "不能为负数", "cannot be negative"
        elif round(value, self.decimals) != value:
            return ("too_precise", f"最多 {self.decimals} 位小数",
                    f"at most {self.decimals} decimal places")
        low, high = self.min_value, self.max_value
        if (low is not None and value < low) or (high is not None and value > high):
            return "out_of_range", f"超出范围 {low}–{high}", f"outside {low}–{high}"
        return None


@dataclass(frozen=True, slots=True)
class Form:
    """The metrics a unit type reports (DHIS2's data set): `required` ones are asked of every
    unit of these types (a zero report gives them zero), `optional` ones may be added; a metric
    on neither is refused at the door."""

    code: str
    name_zh: str
    name_en: str
    unit_types: tuple[str, ...]
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()

    @property
    def metrics(self) -> tuple[str, ...]:
        return self.required + self.optional


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


LEVELS = ("province", "city", "county", "town", "village")


@dataclass(frozen=True, slots=True)
class StockLevel:
    """A minimum reserve: a node of `level` whose figure of `metric` (e.g. its days of supplies
    left, the lowest of its units') is below `minimum` is flagged in its figures and the daily
    summary."""

    code: str
    metric: str
    level: str
    minimum: float
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Catalogue:
    metrics: dict[str, Metric]
    rules: tuple[Rule, ...] = ()
    ratios: tuple[Ratio, ...] = ()
    # Without forms (a catalogue file that declares none) every unit may report every metric.
    forms: tuple[Form, ...] = ()
    stock_levels: tuple[StockLevel, ...] = ()
    by_aggregation: dict[str, tuple[str, ...]] = field(init=False)
    form_of_type: dict[str, Form] = field(init=False)

    def __post_init__(self) -> None:
        groups = {agg: tuple(m.code for m in self.metrics.values() if m.aggregation == agg)
                  for agg in KINDS}
        object.__setattr__(self, "by_aggregation", groups)
        object.__setattr__(self, "form_of_type",
                           {t: form for form in self.forms for t in form.unit_types})

    @classmethod
    def from_toml(cls, path: Path = DEFAULT_PATH,
                  known_unit_types: Collection[str] | None = None) -> "Catalogue":
        """The catalogue in a TOML file; CatalogueError lists everything wrong with it.
        `known_unit_types`: the registry's unit types, which the forms must cover exactly."""
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise CatalogueError([f"{path}: {exc}"]) from exc
        problems = check_catalogue(data, known_unit_types)
        if problems:
            raise CatalogueError([f"{path}: {p}" for p in problems])
        metrics = {m["code"]: Metric(**m) for m in data.get("metrics", [])}
        rules = tuple(Rule(**r) for r in data.get("rules", []))
        ratios = tuple(Ratio(**r) for r in data.get("ratios", []))
        forms = tuple(Form(**{k: tuple(v) if isinstance(v, list) else v for k, v in f.items()})
                      for f in data.get("forms", []))
        stock_levels = tuple(StockLevel(**s) for s in data.get("stock_levels", []))
        return cls(metrics, rules, ratios, forms, stock_levels)

    def form_for(self, unit_type: str) -> Form | None:
        """The form a unit of this type fills in; None: no form restricts it."""
        return self.form_of_type.get(unit_type)

    def validate(self, values: Mapping[str, object], prefix: str = "values",
                 unit_type: str | None = None) -> list[FieldError]:
        """Every reason the values cannot be accepted; empty when they can. With `unit_type`,
        a metric that is not on the type's form is refused, naming the form."""
        errors: list[FieldError] = []
        form = self.form_for(unit_type) if unit_type is not None else None
        for code, value in values.items():
            metric = self.metrics.get(code)
            if metric is None:
                errors.append(FieldError(f"{prefix}.{code}", "unknown_metric",
                                         f"未知指标 {code}", f"unknown metric {code}"))
            elif form is not None and code not in form.metrics:
                errors.append(FieldError(
                    f"{prefix}.{code}", "not_on_form",
                    f"指标 {code}({metric.name_zh})不在{form.name_zh}({form.code})上",
                    f"metric {code} ({metric.name_en}) is not on the form {form.code} "
                    f"({form.name_en}) that a {unit_type} reports"))
            elif (problem := metric.problem(value)) is not None:
                errors.append(FieldError(f"{prefix}.{code}", *problem))
        for rule in self.rules:
            if rule.both_given and (rule.lhs not in values or rule.rhs not in values):
                continue
            lhs, rhs = values.get(rule.lhs, 0), values.get(rule.rhs, 0)
            if isinstance(lhs, int | float) and isinstance(rhs, int | float) and lhs > rhs:
                errors.append(FieldError(f"{prefix}.{rule.lhs}", rule.code,
                                         rule.message_zh, rule.message_en))
        return errors

    def typed(self, values: Mapping[str, float]) -> dict[str, int | float]:
        """Values as their metric's type says, in every answer and event: a whole count is an
        integer (2, not 2.0); a decimal, or an average of counts, keeps its declared precision
        (a sum of decimals loses none to binary fractions). Unknown metrics pass unchanged."""
        out: dict[str, int | float] = {}
        for code, value in values.items():
            metric = self.metrics.get(code)
            if metric is None or isinstance(value, bool):
                out[code] = value
            elif metric.value_type == "count" and float(value).is_integer():
                out[code] = int(value)
            else:
                out[code] = round(float(value), metric.decimals)
        return out

    def below_minimum(self, level: str, values: Mapping[str, float]) -> list[dict]:
        """The stock levels a node of `level` falls below with these figures (a figure not
        reported is not below anything: nothing is known of it)."""
        return [{"code": s.code, "metric": s.metric, "minimum": s.minimum,
                 "value": values[s.metric], "name_zh": s.name_zh, "name_en": s.name_en}
                for s in self.stock_levels
                if s.level == level and s.metric in values and values[s.metric] < s.minimum]

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
    "metrics": ({"code", "name_zh", "name_en", "value_type", "aggregation", "over_days",
                 "measure_zh", "measure_en"}, {"min_value", "max_value", "item", "decimals"}),
    "rules": ({"code", "lhs", "rhs", "message_zh", "message_en"}, {"both_given"}),
    "ratios": ({"code", "numerator", "denominator", "name_zh", "name_en"}, set()),
    "forms": ({"code", "name_zh", "name_en", "unit_types", "required"}, {"optional"}),
    "stock_levels": ({"code", "metric", "level", "minimum", "name_zh", "name_en"}, set()),
}


def _one_of(names: Collection[str]) -> str:
    *others, last = names
    return f"{', '.join(others)} or {last}"


def check_catalogue(data: Mapping, known_unit_types: Collection[str] | None = None
                    ) -> list[str]:
    """Everything wrong with a catalogue file's content: unknown or missing keys, duplicate or
    malformed codes, value types and aggregations (across units, over days) that do not exist,
    rules, ratios, forms and stock levels naming unknown metrics, ratios of parts that are not
    summed (a ratio is computed from summed parts at each level and over days, never
    averaged), two metrics of one item in the same unit of measure, and forms that do not give
    each known unit type exactly one form."""
    problems = [f"unknown section [{key}] (known: {', '.join(SECTIONS)})"
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
            for key in ("name_zh", "name_en", "message_zh", "message_en", "measure_zh",
                        "measure_en"):
                if key in entry and not (isinstance(entry[key], str) and entry[key].strip()):
                    problems.append(f"{where}: {key} must be a non-empty string")
    metrics = {m.get("code"): m for m in data.get("metrics", []) if isinstance(m, dict)}
    for i, m in enumerate(data.get("metrics", []), 1):
        where = f"metrics #{i} ({m.get('code', '?')})"
        if m.get("value_type", "count") not in ("count", "decimal"):
            problems.append(f"{where}: value_type must be count or decimal")
        if m.get("aggregation", "sum") not in KINDS:
            problems.append(f"{where}: aggregation must be {_one_of(KINDS)}")
        if m.get("over_days", "sum") not in DAY_KINDS:
            problems.append(f"{where}: over_days must be {_one_of(DAY_KINDS)}")
        decimals = m.get("decimals", 2)
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
            problems.append(f"{where}: decimals must be a whole number from 0 to 6")
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
            elif (metrics[q[key]].get("aggregation"), metrics[q[key]].get("over_days")) \
                    != ("sum", "sum"):
                problems.append(f"{where}: {key} {q[key]} is not summed across units and "
                                "over days; ratios are computed from summed parts")
    measures: dict[tuple, str] = {}
    for m in data.get("metrics", []):
        if isinstance(m, dict) and m.get("item") is not None:
            key = (m["item"], m.get("measure_en"))
            if key in measures:
                problems.append(f"metrics ({m.get('code')}): item {m['item']} is already "
                                f"counted in {m.get('measure_en')} by {measures[key]}")
            measures.setdefault(key, str(m.get("code")))
    for i, s in enumerate(data.get("stock_levels", []), 1):
        where = f"stock_levels #{i} ({s.get('code', '?')})"
        if "metric" in s and s["metric"] not in metrics:
            problems.append(f"{where}: metric names unknown metric {s['metric']}")
        if "level" in s and s["level"] not in LEVELS:
            problems.append(f"{where}: level must be {_one_of(LEVELS)}")
        minimum = s.get("minimum", 0)
        if isinstance(minimum, bool) or not isinstance(minimum, int | float):
            problems.append(f"{where}: minimum must be a number")
    problems += _check_forms(data.get("forms", []), metrics, known_unit_types)
    return problems


def _check_forms(forms: object, metrics: Mapping, known_unit_types: Collection[str] | None
                 ) -> list[str]:
    if not isinstance(forms, list) or not forms:
        return []
    problems: list[str] = []
    form_of: dict[str, str] = {}
    for i, f in enumerate(forms, 1):
        if not isinstance(f, dict):
            continue
        where = f"forms #{i} ({f.get('code', '?')})"
        for key in ("unit_types", "required", "optional"):
            names = f.get(key, [])
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                problems.append(f"{where}: {key} must be a list of codes")
                f = {**f, key: []}
        on_form = list(f.get("required", [])) + list(f.get("optional", []))
        problems += [f"{where}: names unknown metric {code}"
                     for code in on_form if code not in metrics]
        problems += [f"{where}: metric {code} is listed twice"
                     for code in sorted({c for c in on_form if on_form.count(c) > 1})]
        for unit_type in f.get("unit_types", []):
            if known_unit_types is not None and unit_type not in known_unit_types:
                problems.append(f"{where}: names unknown unit type {unit_type}")
            elif unit_type in form_of:
                problems.append(f"{where}: unit type {unit_type} already reports on form "
                                f"{form_of[unit_type]}")
            else:
                form_of[unit_type] = str(f.get("code"))
    if known_unit_types is not None:
        problems += [f"forms: unit type {t} has no form"
                     for t in sorted(set(known_unit_types) - form_of.keys())]
    return problems


@cache
def default_catalogue() -> Catalogue:
    """The deployment's catalogue, its forms checked against the registry's unit types."""
    return Catalogue.from_toml(known_unit_types=unit_types().keys())
