"""Bearer credentials for every HTTP service: `Authorization: Bearer <token>` becomes a Principal.

A missing, unknown or revoked token is 401; a valid one that does not reach what it asks for is
403 (the caller decides, with `forbidden`); a credential store that does not answer is 503.
Never a 500: a token is only ever hashed and looked up.

A composition root puts an `Authenticator` at `app.state.authenticator` (and installs the shared
refusal handler, `shared.http_problems.install_problems`); routes then take
`principal: Authenticated`. Every service authenticates here, through the one cache.
"""

import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.auth import Principal, authenticate
from shared.hierarchy import level_of
from shared.refusals import Refused, refuse
from shared.registry.unit_types import unit_types

BEARER = "bearer"
# Generous: tokens are "rc_" + 43 characters; anything far longer is not one of ours.
MAX_TOKEN_LENGTH = 200


def unauthenticated(reason: str = "missing") -> Refused:
    return refuse("unauthenticated" if reason == "missing" else "bad_token", "authorization")


def forbidden(what: str, field: str = "unit") -> Refused:
    return refuse("outside_area", field, what=what)


def token_from_header(value: str | None) -> str | None:
    """The token in an `Authorization: Bearer <token>` value (HTTP header or NATS header)."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != BEARER or not token:
        return None
    return token


class Authenticator:
    """Looks tokens up, remembering a verified one for `ttl_s` seconds so that a bulk request or
    a bus batch costs one lookup, not one per report. A revocation therefore takes effect within
    `ttl_s` (0 disables the cache). Unknown tokens are never cached."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_s: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic, max_entries: int = 10_000
                 ) -> None:
        self._sessions = sessions
        self._ttl_s = ttl_s
        self._monotonic = monotonic
        self._max_entries = max_entries
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def principal(self, token: str | None) -> Principal | None:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        now = self._monotonic()
        hit = self._cache.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with self._sessions() as session:
            principal = await authenticate(session, token)
        if principal is not None and self._ttl_s > 0:
            if len(self._cache) >= self._max_entries:
                self._cache = {t: e for t, e in self._cache.items() if e[0] > now}
                if len(self._cache) >= self._max_entries:
                    self._cache.clear()
            self._cache[token] = (now + self._ttl_s, principal)
        return principal

    async def require(self, header_value: str | None) -> Principal:
        token = token_from_header(header_value)
        if token is None:
            raise unauthenticated("missing" if not header_value else "bad")
        principal = await self.principal(token)
        if principal is None:
            raise unauthenticated("bad")
        return principal


# auto_error=False: the 401 is ours (bilingual, with a code); the scheme still shows in /docs.
_bearer = HTTPBearer(auto_error=False, description="a unit's or an operator's token (rc_…)")


async def bearer_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    authenticator: Authenticator = request.app.state.authenticator
    header = request.headers.get("authorization")
    if credentials is None:
        raise unauthenticated("missing" if not header else "bad")
    try:
        return await authenticator.require(f"Bearer {credentials.credentials}")
    except Refused:
        raise
    except Exception as exc:  # the credential store does not answer: say so, and retry later
        raise refuse("auth_unavailable", "authorization") from exc


Authenticated = Annotated[Principal, Depends(bearer_principal)]


async def operator_principal(who: Authenticated) -> Principal:
    """Operators only: a unit's token is refused."""
    if who.kind != "operator":
        raise refuse("not_operator", "authorization")
    return who


Operator = Annotated[Principal, Depends(operator_principal)]


def area(who: Principal, node: str | None) -> str:
    """The node asked for (the operator's own by default), if it is a division code inside the
    credential's area."""
    node = node or who.scope
    try:
        level_of(node)
    except ValueError:
        raise refuse("bad_node", "node", node=node) from None
    if not who.may_see(node):
        raise refuse("outside_area", "node", what=node)
    return node



def line(who: Principal, sector: str | None = None, unit_type: str | None = None) -> str | None:
    """The sector a read is limited to: a sector operator's own (asking for another sector, or a
    unit type of another sector, is `outside_sector`), else the sector asked for, if any."""
    if who.sector is None:
        return sector
    if sector is not None and sector != who.sector:
        raise refuse("outside_sector", "sector", what=sector, sector=who.sector)
    known = unit_types().get(unit_type) if unit_type is not None else None
    if known is not None and known.sector != who.sector:
        raise refuse("outside_sector", "unit_type", what=unit_type, sector=who.sector)
    return who.sector


def reaches_unit(who: Principal, unit: str, unit_sector: str | None) -> None:
    """A sector operator reaches only its sector's units (the node is checked apart)."""
    if not who.covers(unit_sector):
        raise refuse("outside_sector", "unit", what=unit, sector=who.sector)


def territorial(who: Principal) -> Principal:
    """What only a territorial operator (屬地) may do — keep a duty roster, confirm a node's
    day: a sector operator is refused by name."""
    if who.sector is not None:
        raise refuse("territorial_only", "authorization", sector=who.sector)
    return who


async def territorial_principal(who: Annotated[Principal, Depends(operator_principal)]
                                ) -> Principal:
    return territorial(who)


Territorial = Annotated[Principal, Depends(territorial_principal)]
