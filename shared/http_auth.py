"""Bearer credentials for every HTTP service: `Authorization: Bearer <token>` becomes a Principal.

A missing, unknown or revoked token is 401; a valid one that does not reach what it asks for is
403 (the caller decides, with `forbidden`); a credential store that does not answer is 503.
Never a 500: a token is only ever hashed and looked up.

A composition root puts an `Authenticator` at `app.state.authenticator` and registers
`on_auth_error` for `AuthError`; routes then take `principal: Authenticated`.
"""

import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.auth import Principal, authenticate
from shared.errors import FieldError

BEARER = "bearer"
# Generous: tokens are "rc_" + 43 characters; anything far longer is not one of ours.
MAX_TOKEN_LENGTH = 200


class AuthError(Exception):
    """401 (who are you?) or 403 (not yours), with a field error in both languages."""

    def __init__(self, status: int, error: FieldError) -> None:
        super().__init__(error.message_en)
        self.status, self.error = status, error


def unauthenticated(reason: str = "missing") -> AuthError:
    if reason == "missing":
        return AuthError(401, FieldError(
            "authorization", "unauthenticated", "缺少凭证:请在 Authorization 头中提供 Bearer 令牌",
            "missing credentials: send Authorization: Bearer <token>"))
    return AuthError(401, FieldError(
        "authorization", "bad_token", "令牌无效或已吊销", "the token is unknown or revoked"))


def forbidden(what: str, field: str = "unit") -> AuthError:
    return AuthError(403, FieldError(
        field, "forbidden", f"此凭证无权操作 {what}", f"this credential may not act for {what}"))


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
    except AuthError:
        raise
    except Exception as exc:  # the credential store does not answer: say so, and retry later
        raise AuthError(503, FieldError(
            "authorization", "auth_unavailable", "暂时无法核验凭证,请稍后重试",
            "credentials cannot be checked right now; retry later")) from exc


Authenticated = Annotated[Principal, Depends(bearer_principal)]


async def on_auth_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AuthError)
    headers = ({"WWW-Authenticate": "Bearer"} if exc.status == 401
               else {"Retry-After": "5"} if exc.status == 503 else None)
    detail = {401: "unauthenticated", 403: "forbidden"}.get(exc.status, "unavailable")
    return JSONResponse({"detail": detail, "errors": [exc.error.as_dict()]},
                        status_code=exc.status, headers=headers)
