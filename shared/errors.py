"""A rejection names the field, a stable machine-readable code and the reason in both languages."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    code: str
    message_zh: str
    message_en: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "code": self.code,
                "message_zh": self.message_zh, "message_en": self.message_en}
