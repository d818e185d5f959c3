"""Notify's deliveries table as SQLAlchemy sees it (the migration,
services/notify/migrations/notify_0001.py, creates it): for the multi-row insert that returns
what it added."""

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table, Text, Uuid

metadata = MetaData(schema="notify")
TZ = DateTime(timezone=True)

deliveries = Table(
    "deliveries", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("msg_id", String(200)), Column("alert_id", Uuid), Column("change", String(20)),
    Column("person", String(64)), Column("person_name", String(100)), Column("role", String(100)),
    Column("channel", String(10)), Column("title", Text), Column("body", Text),
    Column("status", String(10)), Column("attempts", Integer), Column("next_attempt_at", TZ),
    Column("created_at", TZ), Column("sent_at", TZ), Column("last_error", Text),
)
