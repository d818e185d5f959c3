"""Pydantic's validation errors as FieldErrors: the field's dotted path, a stable code and the
reason in Chinese and English, like every other refusal."""

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic_core import PydanticCustomError

from shared.errors import FieldError

# pydantic error type -> (our code, Chinese, English); unlisted types keep pydantic's own code.
_KNOWN: dict[str, tuple[str, str, str]] = {
    "missing": ("missing", "缺少必填字段", "this field is required"),
    "extra_forbidden": ("unknown_field", "不认识的字段", "unknown field"),
    "float_type": ("not_a_number", "必须是数字", "must be a number"),
    "float_parsing": ("not_a_number", "必须是数字", "must be a number"),
    "int_type": ("not_a_number", "必须是整数", "must be a whole number"),
    "int_parsing": ("not_a_number", "必须是整数", "must be a whole number"),
    "finite_number": ("not_a_number", "必须是有限的数字", "must be a finite number"),
    "string_type": ("not_a_string", "必须是文本", "must be a string"),
    "string_too_short": ("too_short", "不能为空或太短", "empty or too short"),
    "string_too_long": ("too_long", "太长", "too long"),
    "date_type": ("bad_date", "日期格式应为 YYYY-MM-DD", "a date is YYYY-MM-DD"),
    "date_parsing": ("bad_date", "日期格式应为 YYYY-MM-DD", "a date is YYYY-MM-DD"),
    "date_from_datetime_parsing": ("bad_date", "日期格式应为 YYYY-MM-DD", "a date is YYYY-MM-DD"),
    "date_from_datetime_inexact": ("bad_date", "日期格式应为 YYYY-MM-DD", "a date is YYYY-MM-DD"),
    "datetime_type": ("bad_time", "时间格式应为 ISO 8601", "a time is ISO 8601"),
    "datetime_parsing": ("bad_time", "时间格式应为 ISO 8601", "a time is ISO 8601"),
    "datetime_from_date_parsing": ("bad_time", "时间格式应为 ISO 8601", "a time is ISO 8601"),
    "uuid_type": ("bad_uuid", "必须是 UUID", "must be a UUID"),
    "uuid_parsing": ("bad_uuid", "必须是 UUID", "must be a UUID"),
    "uuid_version": ("bad_uuid", "必须是 UUID", "must be a UUID"),
    "literal_error": ("not_allowed", "取值不在允许范围内", "not one of the allowed values"),
    "enum": ("not_allowed", "取值不在允许范围内", "not one of the allowed values"),
    "dict_type": ("not_an_object", "必须是对象", "must be an object"),
    "model_type": ("not_an_object", "必须是对象", "must be an object"),
    "model_attributes_type": ("not_an_object", "必须是对象", "must be an object"),
    "list_type": ("not_a_list", "必须是列表", "must be a list"),
    "too_long": ("too_many", "条目太多", "too many items"),
    "json_invalid": ("invalid_json", "不是有效的 JSON", "not valid JSON"),
    "json_type": ("invalid_json", "不是有效的 JSON", "not valid JSON"),
    "bool_type": ("not_a_boolean", "必须是 true 或 false", "must be true or false"),
    "greater_than_equal": ("out_of_range", "数值太小", "too small"),
    "less_than_equal": ("out_of_range", "数值太大", "too large"),
    "string_pattern_mismatch": ("bad_format", "格式不正确", "wrong format"),
}


def field_path(loc: Iterable[Any], skip: tuple[Any, ...] = ("body",)) -> str:
    """`values.fever` for ('body', 'values', 'fever'); `[3].day` for (3, 'day')."""
    out = ""
    for part in loc:
        if part in skip:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def custom_error(code: str, message_zh: str, message_en: str) -> PydanticCustomError:
    """Raise from a validator: keeps our code and both messages through pydantic."""
    return PydanticCustomError(code, message_en, {"zh": message_zh})


def from_pydantic(errors: Iterable[Mapping[str, Any]], skip: tuple[Any, ...] = ("body",)
                  ) -> list[FieldError]:
    out = []
    for err in errors:
        kind = str(err.get("type", "invalid"))
        msg = str(err.get("msg", "invalid"))
        ctx = err.get("ctx") or {}
        if kind in _KNOWN:
            code, zh, en = _KNOWN[kind]
        elif isinstance(ctx, Mapping) and "zh" in ctx:
            code, zh, en = kind, str(ctx["zh"]), msg
        else:
            code, zh, en = kind, f"取值无效:{msg}", msg
        out.append(FieldError(field_path(err.get("loc", ()), skip), code, zh, en))
    return out
