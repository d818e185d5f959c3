"""`rollcall token issue|list|revoke` against the session's database, and the demo token that
`rollcall dev` issues: each token works until it is revoked."""

import asyncio

from typer.testing import CliRunner

from rollcall.cli import app
from rollcall.token_cli import DEMO_HOLDER, issue_demo_token
from shared.auth import authenticate
from shared.db import make_engine, make_sessionmaker


def principal_of(servers, token: str):
    async def run():
        engine = make_engine(servers.database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session:
                return await authenticate(session, token)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_issue_list_and_revoke(servers, monkeypatch) -> None:
    for key, value in servers.env().items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    issued = runner.invoke(app, ["token", "issue", "--unit", "430621100001-CL"])
    assert issued.exit_code == 0, issued.output
    token = issued.output.strip().splitlines()[-1]
    principal = principal_of(servers, token)
    assert (principal.kind, principal.scope) == ("unit", "430621100001-CL")
    assert principal.holder == "荣家湾镇青洲社区卫生服务站"  # the unit's name when no holder

    listed = runner.invoke(app, ["token", "list"])
    assert str(principal.credential_id)[:8] in listed.output
    assert token not in listed.output  # a token is shown once, never again

    revoked = runner.invoke(app, ["token", "revoke", str(principal.credential_id)])
    assert revoked.exit_code == 0, revoked.output
    assert principal_of(servers, token) is None
    again = runner.invoke(app, ["token", "revoke", str(principal.credential_id)])
    assert again.exit_code == 1

    operator = runner.invoke(app, ["token", "issue", "--operator", "430621108",
                                   "--holder", "公田镇值班"])
    assert operator.exit_code == 0, operator.output
    op = principal_of(servers, operator.output.strip().splitlines()[-1])
    assert (op.kind, op.scope, op.holder) == ("operator", "430621108", "公田镇值班")

    for bad in (["--unit", "nowhere"], ["--operator", "4306219"], ["--operator", "999999"],
                [], ["--unit", "430621100001-CL", "--operator", "430621"]):
        refused = runner.invoke(app, ["token", "issue", *bad])
        assert refused.exit_code != 0, (bad, refused.output)


def test_the_demo_token_is_fresh_each_run(servers) -> None:
    first = asyncio.run(issue_demo_token(servers.database_url))
    second = asyncio.run(issue_demo_token(servers.database_url))
    assert principal_of(servers, first) is None  # the previous run's is revoked
    demo = principal_of(servers, second)
    assert (demo.kind, demo.scope, demo.holder) == ("operator", "430621", DEMO_HOLDER)


def test_a_sector_token(servers, monkeypatch) -> None:
    for key, value in servers.env().items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()
    issued = runner.invoke(app, ["token", "issue", "--operator", "430621", "--sector",
                                 "education"])
    assert issued.exit_code == 0, issued.output
    assert "education" in issued.output.split("token (shown once")[0]
    op = principal_of(servers, issued.output.strip().splitlines()[-1])
    assert (op.kind, op.scope, op.sector) == ("operator", "430621", "education")
    assert op.holder.endswith("教育")  # the node's name and the sector's when no holder
    assert "educa" in runner.invoke(app, ["token", "list"], terminal_width=300).output

    for bad in (["--operator", "430621", "--sector", "astrology"],
                ["--unit", "430621100001-CL", "--sector", "health"]):
        refused = runner.invoke(app, ["token", "issue", *bad])
        assert refused.exit_code == 1, (bad, refused.output)
