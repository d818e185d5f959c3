"""Aggregate's wire schemas that are not rollup views: the calendars (免报) operators declare."""

from datetime import date

from pydantic import BaseModel, Field


class DeclareExemption(BaseModel):
    """Units not expected to report for a period: one unit (`unit_code`), or every unit at or
    below a node (`node_code`), optionally of one type (`unit_type`); `weekday` (1 Monday …
    7 Sunday) makes it a weekly rest day. From today at the earliest."""

    node_code: str | None = Field(None, description="every unit at or below this node")
    unit_code: str | None = Field(None, description="this unit only")
    unit_type: str | None = Field(None, description="only units of this type, e.g. kindergarten")
    weekday: int | None = Field(None, ge=1, le=7, description="a weekly rest day (ISO weekday)")
    valid_from: date | None = Field(None, description="first day (default today)")
    valid_to: date | None = Field(None, description="last day, inclusive (default: open)")
    reason: str = Field(min_length=1, max_length=200, description="why, e.g. 寒假, 休市")


class EndExemption(BaseModel):
    reason: str = Field(min_length=1, max_length=200, description="why it ends")
