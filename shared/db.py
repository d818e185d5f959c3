"""Database plumbing: one engine per process, created by the composition root and disposed by it."""

from sqlalchemy import MetaData
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def make_engine(url: str, pool_size: int = 10, timeout_s: float | None = None) -> AsyncEngine:
    """`timeout_s` bounds connecting, every statement and the wait for a pooled connection, for
    a service that must answer even when PostgreSQL hangs: asyncpg's timeouts are the client's
    own, so they hold when the server does not answer at all."""
    bounded: dict = {}
    if timeout_s:
        bounded = {"pool_timeout": timeout_s,
                   "connect_args": {"timeout": timeout_s, "command_timeout": timeout_s}}
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size,
                               pool_pre_ping=True, **bounded)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
