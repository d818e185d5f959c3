"""The ledger's tables as SQLAlchemy sees them (migrations/ledger_0001.py and ledger_0002.py
create them)."""

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Uuid,
)

from shared.db import Base
from shared.outbox import Outbox

metadata = MetaData(schema="ledger")
TZ = DateTime(timezone=True)

people = Table(
    "people", metadata,
    Column("person_id", Uuid, primary_key=True), Column("pseudonym", String(20)),
    Column("village", String(12)), Column("category", String(40)), Column("regime", String(40)),
    Column("site", String(100)), Column("start_day", Date), Column("outcome", String(20)),
    Column("registered_at", TZ), Column("registered_by", String(100)),
)
identities = Table(
    "identities", metadata,
    Column("person_id", Uuid, primary_key=True), Column("name", String(100)),
    Column("contact", String(100)),
)
phase_ends = Table(
    "phase_ends", metadata,
    Column("person_id", Uuid, primary_key=True), Column("phase", SmallInteger, primary_key=True),
    Column("day", Date), Column("recorded_at", TZ), Column("recorded_by", String(100)),
)
tests = Table(
    "tests", metadata,
    Column("person_id", Uuid, primary_key=True), Column("day", Date, primary_key=True),
    Column("result", String(10)), Column("recorded_at", TZ), Column("recorded_by", String(100)),
)
team = Table(
    "team", metadata,
    Column("person_id", Uuid, primary_key=True), Column("seat", SmallInteger, primary_key=True),
    Column("role", String(20)), Column("staff", String(100)),
)
signoffs = Table(
    "signoffs", metadata,
    Column("person_id", Uuid, primary_key=True), Column("day", Date, primary_key=True),
    Column("seat", SmallInteger, primary_key=True), Column("signed_at", TZ),
    Column("recorded_by", String(100)),
)
countdowns = Table(
    "countdowns", metadata,
    Column("key", String(120), primary_key=True), Column("person_id", Uuid),
    Column("kind", String(10)), Column("day", Date), Column("state", String(10)),
    Column("seq", Integer),
)
corrections = Table(
    "corrections", metadata,
    Column("id", BigInteger, primary_key=True), Column("person_id", Uuid),
    Column("corrected_at", TZ), Column("corrected_by", String(100)),
    Column("reason", String(500)), Column("changes", JSON),
)
stock_sent = Table(
    "stock_sent", metadata,
    Column("village", String(12), primary_key=True), Column("day", Date, primary_key=True),
    Column("figures", JSON), Column("revision", Integer), Column("sent_at", TZ),
)

stock_dirty = Table(
    "stock_dirty", metadata,
    Column("village", String(12), primary_key=True), Column("since", Date),
)


class LedgerOutboxRow(Outbox, Base):
    __table_args__ = {"schema": "ledger"}
