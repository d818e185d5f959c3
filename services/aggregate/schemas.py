"""Aggregate's wire schemas that are not rollup views: the calendars (免报) operators declare."""

from datetime import date

from pydantic import BaseModel, Field

# No control characters (NUL cannot even be stored): a reason is text people read.
PRINTABLE = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


class DeclareExemption(BaseModel):
    """Units not expected to report for a period: one unit (`unit_code`), or every unit at or
    below a node (`node_code`), optionally of one type (`unit_type`); `weekday` (1 Monday …
    7 Sunday) makes it a weekly rest day. From today at the earliest."""

    node_code: str | None = Field(None, max_length=12, pattern=r"^[0-9]+$",
                                  description="every unit at or below this node")
    unit_code: str | None = Field(None, max_length=32, pattern=PRINTABLE,
                                  description="this unit only")
    unit_type: str | None = Field(None, max_length=40, pattern=PRINTABLE,
                                  description="only units of this type, e.g. kindergarten")
    weekday: int | None = Field(None, ge=1, le=7, description="a weekly rest day (ISO weekday)")
    valid_from: date | None = Field(None, description="first day (default today)")
    valid_to: date | None = Field(None, description="last day, inclusive (default: open)")
    reason: str = Field(min_length=1, max_length=200, pattern=PRINTABLE,
                        description="why, e.g. 寒假, 休市")


class EndExemption(BaseModel):
    reason: str = Field(min_length=1, max_length=200, pattern=PRINTABLE,
                        description="why it ends")
