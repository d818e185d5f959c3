"""The rules at the door: pure functions, no database and no broker."""

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.auth import Principal
from shared.catalogue import Catalogue
from shared.deadlines import local_day
from shared.errors import FieldError
from shared.refusals import refusal
from shared.registry.reference import Reference, UnitInfo

# Beyond these, whatever was measured was not a living person's body temperature.
PHYSICAL_TEMPERATURE_C = (30.0, 45.0)
# A pseudonym: letters, digits and a few separators. No names (no CJK), and not an ID card
# (18 characters, the last a digit or X) or a phone number, which identify a person outright.
# The same patterns find one inside a report's note (not part of a longer run of digits).
_PSEUDONYM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_ID_CARD = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
_MOBILE = re.compile(r"(?<![0-9])(\+?86[ -]?)?1[3-9][0-9][ -]?[0-9]{4}[ -]?[0-9]{4}(?![0-9])")
_LANDLINE = re.compile(r"(?<![0-9])0[0-9]{2,3}-[0-9]{7,8}(?![0-9])")


def is_zero(values: Mapping[str, float]) -> bool:
    """A zero report (零报告) says "nothing to report": no value, or every value zero."""
    # For numbers `not v` is `v == 0` (-0.0 included, NaN not), at C speed: a bulk hot path.
    return not any(values.values())


def check_access(principal: Principal, unit_code: str, unit: UnitInfo | None,
                 day: date) -> FieldError | None:
    """A unit submits only for itself; an operator for units at or below its node, a sector
    operator only for those of its sector."""
    if principal.kind == "unit":
        allowed = unit_code == principal.scope
    elif unit is None:
        return None  # an operator learns that the unit is unknown: a 422, not a 403
    else:
        node = unit.node_on(day)
        allowed = principal.may_submit_for(unit_code, node, unit.sector)
        if not allowed and node is not None and principal.may_see(node):
            return refusal("outside_sector", "unit", what=unit_code, sector=principal.sector)
    if allowed:
        return None
    return refusal("outside_area", "unit", what=unit_code)


def _check_unit(unit_code: str, unit: UnitInfo | None, day: date) -> list[FieldError]:
    if unit is None:
        return [FieldError("unit", "unknown_unit", f"未知报告单位 {unit_code}",
                           f"unknown reporting unit {unit_code}")]
    if not unit.active_on(day) or unit.node_on(day) is None:
        return [FieldError("unit", "unit_inactive", f"单位在 {day} 未启用",
                           f"unit is not active on {day}")]
    return []


def _check_day(day: date, today: date, lock_days: int, unlocked: bool,
               field: str = "day") -> list[FieldError]:
    if day > today:
        return [FieldError(field, "future_day", "不能报告未来的日期",
                           f"{day} is in the future (today is {today})")]
    if day < today - timedelta(days=lock_days) and not unlocked:
        return [FieldError(field, "day_locked",
                           f"超过 {lock_days} 天的报告已锁定,只有指挥部操作员可以更正",
                           f"days older than {lock_days} days are locked; only an operator "
                           "may write them")]
    return []


def check_note(note: str | None) -> list[FieldError]:
    """A note is free text for what the figures cannot say, never a way to name a person: one
    carrying an ID-card or phone number is refused (its length is the schema's)."""
    if note is None:
        return []
    found = [what for what, pattern in (("身份证号", _ID_CARD), ("电话号码", _MOBILE),
                                        ("电话号码", _LANDLINE)) if pattern.search(note)]
    if not found:
        return []
    return [FieldError("note", "personal_data",
                       f"备注不得包含{found[0]}等个人信息",
                       "a note may not carry an ID-card or phone number")]


def check_report(unit_code: str, day: date, values: Mapping[str, object], *,
                 reference: Reference, catalogue: Catalogue, now: datetime, zone: ZoneInfo,
                 lock_days: int, unlocked: bool = False, note: str | None = None
                 ) -> tuple[UnitInfo | None, list[FieldError]]:
    """The unit, and every reason the report cannot be accepted: values against the catalogue
    and the unit type's form. `unlocked`: the sender is an operator, who may still write days
    past the lock window."""
    unit = reference.units.get(unit_code)
    errors = _check_unit(unit_code, unit, day)
    errors += _check_day(day, local_day(now, zone), lock_days, unlocked)
    errors += catalogue.validate(values, unit_type=unit.unit_type if unit else None)
    errors += check_note(note)
    return unit, errors


def check_person_ref(ref: str) -> FieldError | None:
    if _PSEUDONYM.fullmatch(ref) and not _ID_CARD.fullmatch(ref) and not _MOBILE.fullmatch(ref):
        return None
    return FieldError("person_ref", "not_pseudonymous",
                      "人员编号须为化名编号(字母、数字、- _ . :),不得填写姓名、身份证号或手机号",
                      "a pseudonymous reference only (letters, digits, - _ . :): no name, "
                      "ID card or phone number")


def check_case(unit_code: str, kind: str, found_at: datetime, temperature: float | None,
               person_ref: str, symptoms: list[str], *, reference: Reference, now: datetime,
               zone: ZoneInfo, lock_days: int, unlocked: bool, fever_threshold: float,
               clock_skew: timedelta, second_temperature: float | None = None
               ) -> tuple[UnitInfo | None, list[FieldError]]:
    """The unit, and every reason the case cannot be accepted. A second reading is a body
    temperature too, and only follows a first one (the seeds' recheck)."""
    unit = reference.units.get(unit_code)
    found_day = local_day(found_at, zone)
    errors = _check_unit(unit_code, unit, found_day)
    if found_at > now + clock_skew:
        errors.append(FieldError("found_at", "future_time", "发现时间不能晚于当前时间",
                                 f"{found_at.isoformat()} is in the future"))
    else:
        errors += _check_day(found_day, local_day(now, zone), lock_days, unlocked, "found_at")
    low, high = PHYSICAL_TEMPERATURE_C
    if temperature is not None and not (low <= temperature <= high):
        errors.append(FieldError("temperature", "temperature_out_of_range",
                                 f"体温须在 {low}–{high} °C 之间",
                                 f"a body temperature is between {low} and {high} °C"))
    elif kind == "fever" and temperature is None:
        errors.append(FieldError("temperature", "missing", "发热病例须填写体温",
                                 "a fever case needs its temperature"))
    elif kind == "fever" and temperature is not None and temperature < fever_threshold:
        errors.append(FieldError("temperature", "not_a_fever",
                                 f"体温低于 {fever_threshold} °C,不是发热病例",
                                 f"below {fever_threshold} °C is not a fever"))
    if second_temperature is not None:
        if not (low <= second_temperature <= high):
            errors.append(FieldError("second_temperature", "temperature_out_of_range",
                                     f"体温须在 {low}–{high} °C 之间",
                                     f"a body temperature is between {low} and {high} °C"))
        elif temperature is None:
            errors.append(FieldError("second_temperature", "without_first",
                                     "复测体温须先填写首次体温",
                                     "a second reading needs the first one"))
    if kind == "ili" and not symptoms:
        errors.append(FieldError("symptoms", "missing", "流感样病例须填写症状(如咳嗽、咽痛)",
                                 "a flu-like case needs its symptoms (e.g. cough, sore throat)"))
    if (error := check_person_ref(person_ref)) is not None:
        errors.append(error)
    return unit, errors
