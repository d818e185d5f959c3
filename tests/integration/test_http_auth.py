"""The shared bearer authenticator on the real credential table: a checked token is trusted for
`ttl_s` (one look-up per bulk request or bus batch), an unknown one never, and a revocation
shows once the TTL has passed."""

import asyncio

from sqlalchemy import select

from shared.auth import Credential, hash_token, revoke
from shared.clock import utc_now
from shared.db import make_engine, make_sessionmaker
from shared.http_auth import Authenticator
from tests.conftest import issue_token


def test_a_checked_token_is_trusted_for_a_while(servers) -> None:
    token = issue_token(servers, "unit", "430621100002-CL", "王")
    now = [100.0]

    async def run() -> None:
        engine = make_engine(servers.database_url, pool_size=1)
        sessions = make_sessionmaker(engine)
        auth = Authenticator(sessions, ttl_s=5.0, monotonic=lambda: now[0])
        try:
            principal = await auth.principal(token)
            assert principal is not None and principal.scope == "430621100002-CL"
            assert await auth.principal("rc_unknown") is None
            assert await auth.principal("x" * 1000) is None
            async with sessions() as session, session.begin():
                credential_id = await session.scalar(select(Credential.credential_id).where(
                    Credential.token_hash == hash_token(token)))
                assert await revoke(session, credential_id, utc_now())
            assert await auth.principal(token) == principal  # still within the TTL
            now[0] += 6
            assert await auth.principal(token) is None  # the revocation shows
        finally:
            await engine.dispose()

    asyncio.run(run())
