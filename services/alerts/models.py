"""Alerts' tables (schema `alerts`); the migrations alerts_0002, alerts_0004, alerts_0005,
alerts_0007, alerts_0008 and alerts_0009 create them."""

from datetime import date, datetime, time
from uuid import UUID

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base
from shared.outbox import Outbox

SCHEMA = "alerts"
TZ = DateTime(timezone=True)


class AlertRow(Base):
    """An alert and its durable clock: `stage` is how far along its schedule it is, `next_at`
    when the clock must next act (None once acknowledged, closed, or at the end)."""

    __tablename__ = "alerts"
    __table_args__ = {"schema": SCHEMA}

    alert_id: Mapped[UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    node: Mapped[str] = mapped_column(String(12))
    unit: Mapped[str | None] = mapped_column(String(32))
    unit_type: Mapped[str | None] = mapped_column(String(40))
    case_id: Mapped[UUID | None]
    case_kind: Mapped[str | None] = mapped_column(String(10))
    recipients: Mapped[list[str]] = mapped_column(ARRAY(String(40)))
    status: Mapped[str] = mapped_column(String(12))
    responsible: Mapped[str] = mapped_column(String(12))
    day: Mapped[date] = mapped_column(Date)
    started_at: Mapped[datetime] = mapped_column(TZ)
    deadline: Mapped[datetime] = mapped_column(TZ)
    stage: Mapped[int] = mapped_column(SmallInteger)
    next_at: Mapped[datetime | None] = mapped_column(TZ)
    late: Mapped[bool]
    seq: Mapped[int] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(TZ)
    acknowledged_at: Mapped[datetime | None] = mapped_column(TZ)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100))
    closed_at: Mapped[datetime | None] = mapped_column(TZ)
    closed_by: Mapped[str | None] = mapped_column(String(100))
    outcome: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSONB)


class TransitionRow(Base):
    """An alert's history: every change with who, when and why; never updated."""

    __tablename__ = "transitions"
    __table_args__ = {"schema": SCHEMA}

    alert_id: Mapped[UUID] = mapped_column(ForeignKey(f"{SCHEMA}.alerts.alert_id"),
                                           primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    change: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(TZ)
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict] = mapped_column(JSONB)


class ToldRow(Base):
    """Who was told of an alert, how, when and whether it arrived: one row per DeliveryOutcome
    event notify published (msg_id: a redelivery adds nothing). Beside the alert's history, it
    never changes the alert's state or clock; append-only (alerts_0005)."""

    __tablename__ = "deliveries"
    __table_args__ = {"schema": SCHEMA}

    msg_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    alert_id: Mapped[UUID] = mapped_column(ForeignKey(f"{SCHEMA}.alerts.alert_id"))
    delivery_id: Mapped[int] = mapped_column(BigInteger)
    step: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(10))
    outcome: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column(TZ)
    person: Mapped[str] = mapped_column(String(20))
    role: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(TZ)


class AlertOutboxRow(Outbox, Base):
    __table_args__ = {"schema": SCHEMA}


class UnitDayRow(Base):
    """Whether a unit reported on a day, and its flu-like counts from the report and from cases."""

    __tablename__ = "unit_days"
    __table_args__ = {"schema": SCHEMA}

    unit: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    report_revision: Mapped[int | None] = mapped_column(Integer)
    report_ili: Mapped[float | None] = mapped_column(Float)
    case_ili: Mapped[int] = mapped_column(Integer, default=0)
    # For the 疑似瞒报 flags: the latest report's zero flag and values, the day's cases.
    report_zero: Mapped[bool | None]
    report_values: Mapped[dict | None] = mapped_column(JSONB)
    cases: Mapped[int] = mapped_column(Integer, default=0)


class MissingUnitRow(Base):
    """A unit listed by a missing-report alert; `reported_at` set once its report arrives,
    `exempted_by` (the calendar) once a calendar declared after the cutoff exempts it."""

    __tablename__ = "missing_units"
    __table_args__ = {"schema": SCHEMA}

    alert_id: Mapped[UUID] = mapped_column(ForeignKey(f"{SCHEMA}.alerts.alert_id"),
                                           primary_key=True)
    unit: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    reported_at: Mapped[datetime | None] = mapped_column(TZ)
    exempted_by: Mapped[int | None] = mapped_column(BigInteger)
    exempted_at: Mapped[datetime | None] = mapped_column(TZ)


class CutoffRunRow(Base):
    """A cutoff already checked for missing reports: its row makes the check happen once."""

    __tablename__ = "cutoff_runs"
    __table_args__ = {"schema": SCHEMA}

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    cutoff: Mapped[time] = mapped_column(Time, primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(TZ)
    alerts_opened: Mapped[int] = mapped_column(Integer)


class StockUnitRow(Base):
    """A unit's latest figure on a supply alert: `below` while it is under the stock level."""

    __tablename__ = "stock_units"
    __table_args__ = {"schema": SCHEMA}

    alert_id: Mapped[UUID] = mapped_column(ForeignKey(f"{SCHEMA}.alerts.alert_id"),
                                           primary_key=True)
    unit: Mapped[str] = mapped_column(String(32), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(Float)
    below: Mapped[bool]


class FlagRow(Base):
    """A suspicion of concealment (疑似瞒报) raised on a unit's report: shown, listed and
    counted beside the figures, never changing them; dismissed once, with who, when and why."""

    __tablename__ = "flags"
    __table_args__ = {"schema": SCHEMA}

    flag_id: Mapped[UUID] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    unit: Mapped[str] = mapped_column(String(32))
    node: Mapped[str] = mapped_column(String(12))
    unit_type: Mapped[str] = mapped_column(String(40))
    sector: Mapped[str] = mapped_column(String(40))
    day: Mapped[date] = mapped_column(Date)
    details: Mapped[dict] = mapped_column(JSONB)
    raised_at: Mapped[datetime] = mapped_column(TZ)
    status: Mapped[str] = mapped_column(String(12), default="open")
    dismissed_at: Mapped[datetime | None] = mapped_column(TZ)
    dismissed_by: Mapped[str | None] = mapped_column(String(100))
    dismissal_reason: Mapped[str | None] = mapped_column(Text)


class CountdownRow(Base):
    """A countdown of the ledger of people under control, waiting for its deadline: `pending`
    until `due_at` passes (then `alerted`: its group's alert is open) or it is settled (`done`,
    `withdrawn`)."""

    __tablename__ = "countdowns"
    __table_args__ = {"schema": SCHEMA}

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    grp: Mapped[str] = mapped_column(String(120))
    node: Mapped[str] = mapped_column(String(12))
    pseudonym: Mapped[str] = mapped_column(String(20))
    category: Mapped[str] = mapped_column(String(40))
    day: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime | None] = mapped_column(TZ)
    seq: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(10))
    details: Mapped[dict] = mapped_column(JSONB)
