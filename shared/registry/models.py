"""Registry tables (schema `registry`): reference data, written by the CLI, read by all."""

from datetime import date, time

from sqlalchemy import Date, ForeignKey, Index, SmallInteger, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base

SCHEMA = "registry"


class Node(Base):
    __tablename__ = "nodes"
    __table_args__ = {"schema": SCHEMA}

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[int] = mapped_column(SmallInteger)
    parent_code: Mapped[str | None] = mapped_column(
        String(12), ForeignKey(f"{SCHEMA}.nodes.code"), index=True)


class Unit(Base):
    __tablename__ = "units"
    __table_args__ = {"schema": SCHEMA}

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    unit_type: Mapped[str] = mapped_column(String(40))
    sector: Mapped[str] = mapped_column(String(40))
    active_from: Mapped[date | None] = mapped_column(Date)
    active_to: Mapped[date | None] = mapped_column(Date)
    # None: the default cutoff of the unit's type.
    cutoff: Mapped[time | None] = mapped_column(Time)


class Placement(Base):
    """Which node a unit belongs to from a day on: a move keeps earlier days where they were."""

    __tablename__ = "placements"
    __table_args__ = (
        Index("ix_placements_node", "node_code", "valid_from"),
        {"schema": SCHEMA},
    )

    unit_code: Mapped[str] = mapped_column(
        String(32), ForeignKey(f"{SCHEMA}.units.code", ondelete="CASCADE"), primary_key=True)
    valid_from: Mapped[date] = mapped_column(Date, primary_key=True)
    node_code: Mapped[str] = mapped_column(String(12), ForeignKey(f"{SCHEMA}.nodes.code"))
