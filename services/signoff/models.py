"""Signoff's outbox as SQLAlchemy sees it (services/signoff/migrations/signoff_0001.py creates
every table of the schema; the rest is read and written in SQL by `services.signoff.store`)."""

from shared.db import Base
from shared.outbox import Outbox


class SignoffOutboxRow(Outbox, Base):
    __table_args__ = {"schema": "signoff"}
