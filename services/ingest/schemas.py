"""Ingest's wire schemas: what units and gateways send, and what they get back."""

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field


class SubmitReport(BaseModel):
    """A unit's daily report. An empty or all-zero `values` is a zero report (零报告)."""

    unit: str = Field(min_length=1, max_length=32, examples=["430621108001-VC"])
    day: date = Field(description="the reporting day, in the deployment's time zone")
    values: dict[str, float] = Field(default_factory=dict, examples=[{"fever": 1, "ili": 2}])
    reporter: str = Field(min_length=1, max_length=100)
    report_id: UUID | None = Field(
        default=None, description="client-chosen id: a retry with the same id changes nothing")


class CorrectReport(BaseModel):
    """A new revision that replaces the latest one everywhere; the old one is kept."""

    values: dict[str, float] = Field(default_factory=dict)
    reporter: str = Field(min_length=1, max_length=100)
    reason: str = Field(min_length=1, max_length=1000)
    report_id: UUID | None = None


class Receipt(BaseModel):
    status: Literal["accepted", "duplicate"]
    report_id: UUID
    unit: str
    day: date
    revision: int
    zero: bool
    late: bool
    submitted_at: datetime


class Problem(BaseModel):
    """Why a submission was refused: every field at fault, with a stable code."""

    detail: str
    errors: list[dict[str, str]]
    rejection_id: UUID | None = None
