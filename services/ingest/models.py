"""Ingest's tables (schema `ingest`)."""

from datetime import date, datetime
from uuid import UUID

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    Float,
    Integer,
    String,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base
from shared.outbox import Outbox

SCHEMA = "ingest"


class ReportRow(Base):
    """The ledger: every revision of every report, never updated, never deleted."""

    __tablename__ = "reports"
    __table_args__ = {"schema": SCHEMA}

    report_id: Mapped[UUID] = mapped_column(primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date)
    revision: Mapped[int] = mapped_column(Integer)
    node_code: Mapped[str] = mapped_column(String(12))
    values: Mapped[dict] = mapped_column(JSON().with_variant(JSONB, "postgresql"))
    zero: Mapped[bool]
    late: Mapped[bool]
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    reporter: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    # Who sent it: the credential used (null for rows older than credentials).
    credential_id: Mapped[UUID | None]
    actor: Mapped[str | None] = mapped_column(String(120))
    note: Mapped[str | None] = mapped_column(Text)  # free text, never aggregated


class OutboxRow(Outbox, Base):
    __table_args__ = {"schema": SCHEMA}


class RejectionRow(Base):
    __tablename__ = "rejections"
    __table_args__ = {"schema": SCHEMA}

    rejection_id: Mapped[UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    unit_code: Mapped[str | None] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    errors: Mapped[list] = mapped_column(JSONB)
    payload: Mapped[dict] = mapped_column(JSONB)
    credential_id: Mapped[UUID | None]
    actor: Mapped[str | None] = mapped_column(String(120))
    source: Mapped[str | None] = mapped_column(String(10))  # http | bus


class CaseRow(Base):
    """Fever and flu-like cases as received; the alerts service keeps their clocks."""

    __tablename__ = "cases"
    __table_args__ = {"schema": SCHEMA}

    case_id: Mapped[UUID] = mapped_column(primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(32))
    node_code: Mapped[str] = mapped_column(String(12))
    kind: Mapped[str] = mapped_column(String(10))
    found_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    temperature: Mapped[float | None] = mapped_column(Float)
    symptoms: Mapped[list] = mapped_column(JSONB)
    person_ref: Mapped[str] = mapped_column(String(64))
    late: Mapped[bool]
    credential_id: Mapped[UUID | None]
    actor: Mapped[str | None] = mapped_column(String(120))
    # The seeds' extra fields of a case (second reading, rash, travel, action), when given.
    details: Mapped[dict | None] = mapped_column(JSONB)
