"""Notify's deliveries table as SQLAlchemy sees it (the migrations,
services/notify/migrations/, create it): for the multi-row upsert that returns what it wrote;
and its outbox of DeliveryOutcome events (notify_0002)."""

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from shared.db import Base
from shared.outbox import Outbox

metadata = MetaData(schema="notify")
TZ = DateTime(timezone=True)

deliveries = Table(
    "deliveries", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("key", String(200)), Column("topic", String(20)), Column("alert_ids", ARRAY(Uuid)),
    Column("items", JSONB), Column("person", String(64)), Column("person_name", String(100)),
    Column("role", String(100)), Column("channel", String(10)), Column("title", Text),
    Column("body", Text), Column("status", String(10)), Column("attempts", Integer),
    Column("next_attempt_at", TZ), Column("created_at", TZ), Column("sent_at", TZ),
    Column("last_error", Text), Column("provider_id", String(200)),
    Column("delivered_at", TZ),
)


class NotifyOutboxRow(Outbox, Base):
    __table_args__ = {"schema": "notify"}
