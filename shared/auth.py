"""Credentials: a unit's token lets it submit for itself; an operator's token is scoped to a node
and reaches every node and unit below it. An operator's token may also be scoped to a sector
(行业部门主管: the county's education bureau): it then reaches only the units of that sector below
its node, and every figure, list and alert it reads is that sector's (docs/architecture.md,
"The sector line"). Tokens are random and stored only as SHA-256 hashes
(high-entropy secrets need no slow hash); revoking one takes effect at once."""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import DateTime, String, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base

Kind = Literal["unit", "operator"]
PREFIX = "rc_"


class Credential(Base):
    __tablename__ = "credentials"
    __table_args__ = {"schema": "registry"}

    credential_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    scope: Mapped[str] = mapped_column(String(32))  # a unit code, or a node code
    holder: Mapped[str] = mapped_column(String(100))
    sector: Mapped[str | None] = mapped_column(String(40))  # a sector operator's line of work
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class Principal:
    credential_id: uuid.UUID
    kind: Kind
    scope: str
    holder: str
    sector: str | None = None  # a sector operator's (None: territorial, every sector)

    def may_submit_for(self, unit: str, unit_node: str | None,
                       unit_sector: str | None = None) -> bool:
        if self.kind == "unit":
            return unit == self.scope
        return (unit_node is not None and unit_node.startswith(self.scope)
                and self.covers(unit_sector))

    def covers(self, sector: str | None) -> bool:
        """Whether a unit of `sector` is on this credential's line: a territorial operator's
        covers every sector, a sector operator's only its own."""
        return self.sector is None or sector == self.sector

    def may_see(self, node: str) -> bool:
        """Operators see their node's subtree; a unit sees the node it belongs to."""
        return self.kind == "operator" and node.startswith(self.scope)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue(session: AsyncSession, kind: Kind, scope: str, holder: str,
                now: datetime, sector: str | None = None) -> tuple[str, uuid.UUID]:
    """A new token (shown once, never stored) and its credential id."""
    token = PREFIX + secrets.token_urlsafe(32)
    credential_id = uuid.uuid4()
    session.add(Credential(credential_id=credential_id, kind=kind, scope=scope, holder=holder,
                           sector=sector, token_hash=hash_token(token), created_at=now))
    await session.flush()
    return token, credential_id


async def revoke(session: AsyncSession, credential_id: uuid.UUID, now: datetime) -> bool:
    result = await session.execute(
        update(Credential).where(Credential.credential_id == credential_id,
                                 Credential.revoked_at.is_(None)).values(revoked_at=now))
    return result.rowcount == 1


async def authenticate(session: AsyncSession, token: str) -> Principal | None:
    row = (await session.execute(select(Credential).where(
        Credential.token_hash == hash_token(token), Credential.revoked_at.is_(None)))
    ).scalar_one_or_none()
    if row is None:
        return None
    return Principal(row.credential_id, row.kind, row.scope, row.holder,  # type: ignore[arg-type]
                     row.sector)
