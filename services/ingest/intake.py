"""The rules at the door: pure functions, no database and no broker."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from shared.catalogue import Catalogue
from shared.errors import FieldError
from shared.registry.reference import Reference, UnitInfo


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def is_late(unit: UnitInfo, day: date, submitted_at: datetime, zone: ZoneInfo) -> bool:
    """迟报: submitted after the unit's cutoff on the reporting day, local time."""
    cutoff = datetime.combine(day, unit.cutoff, tzinfo=zone)
    return submitted_at > cutoff


def is_zero(values: dict[str, float]) -> bool:
    """A zero report (零报告) says "nothing to report": no value, or every value zero."""
    return all(v == 0 for v in values.values())


def check_report(unit_code: str, day: date, values: dict[str, float], *, reference: Reference,
                 catalogue: Catalogue, now: datetime, zone: ZoneInfo,
                 lock_days: int) -> tuple[UnitInfo | None, list[FieldError]]:
    """The unit, and every reason the report cannot be accepted."""
    errors: list[FieldError] = []
    unit = reference.units.get(unit_code)
    if unit is None:
        errors.append(FieldError("unit", "unknown_unit", f"未知报告单位 {unit_code}",
                                 f"unknown reporting unit {unit_code}"))
    elif not unit.active_on(day) or unit.node_on(day) is None:
        errors.append(FieldError("unit", "unit_inactive", f"单位在 {day} 未启用",
                                 f"unit is not active on {day}"))
    today = local_day(now, zone)
    if day > today:
        errors.append(FieldError("day", "future_day", "不能报告未来的日期",
                                 f"{day} is in the future (today is {today})"))
    elif day < today - timedelta(days=lock_days):
        errors.append(FieldError("day", "day_locked", f"超过 {lock_days} 天的报告已锁定",
                                 f"days older than {lock_days} days are locked"))
    errors.extend(catalogue.validate(values))
    return unit, errors
