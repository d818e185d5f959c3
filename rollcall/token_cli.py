"""`rollcall token`: issue, list and revoke credentials. A token is shown once, when issued;
only its hash is stored."""

import asyncio
import uuid
from datetime import datetime

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared import auth
from shared.clock import utc_now
from shared.db import make_engine, make_sessionmaker
from shared.hierarchy import level_of
from shared.registry.models import Node, Unit
from shared.registry.unit_types import sectors
from shared.settings import Settings

app = typer.Typer(help="Credentials: a unit's token submits for that unit; an operator's token "
                       "is scoped to a node and reaches every unit below it.",
                  no_args_is_help=True)
console = Console()
DEMO_HOLDER = "demo operator (rollcall dev)"
DEMO_NODE = "430621"


async def _in_session(database_url: str, work):
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


async def issue_for(session: AsyncSession, kind: auth.Kind, scope: str, holder: str | None,
                    now: datetime, sector: str | None = None) -> tuple[str, uuid.UUID]:
    """Issue a token for a unit or a node that the registry knows, an operator's optionally for
    one sector of unit_types.toml; ValueError otherwise."""
    if sector is not None:
        if kind != "operator":
            raise ValueError("only an operator's token may be scoped to a sector")
        if sector not in sectors():
            raise ValueError(f"unknown sector {sector} (known: {', '.join(sectors())})")
    if kind == "unit":
        name = await session.scalar(select(Unit.name).where(Unit.code == scope))
        if name is None:
            raise ValueError(f"unknown unit {scope}")
    else:
        level_of(scope)
        name = await session.scalar(select(Node.name).where(Node.code == scope))
        if name is None:
            raise ValueError(f"unknown node {scope}")
    if sector is not None and holder is None:
        name = f"{name} {sectors()[sector].name_zh}"
    return await auth.issue(session, kind, scope, (holder or name)[:100], now, sector)


async def issue_demo_token(database_url: str) -> str:
    """A fresh operator token for the demo county; earlier demo tokens are revoked."""
    async def work(session: AsyncSession) -> str:
        now = utc_now()
        await session.execute(update(auth.Credential).where(
            auth.Credential.holder == DEMO_HOLDER, auth.Credential.revoked_at.is_(None))
            .values(revoked_at=now))
        token, _ = await issue_for(session, "operator", DEMO_NODE, DEMO_HOLDER, now)
        return token

    return await _in_session(database_url, work)


@app.command("issue")
def issue_command(
    unit: str | None = typer.Option(None, "--unit", help="a unit's code: it submits for itself"),
    operator: str | None = typer.Option(None, "--operator",
                                        help="a node's code: the operator reaches units below"),
    holder: str | None = typer.Option(None, "--holder",
                                      help="who holds it (default: the unit's or node's name)"),
    sector: str | None = typer.Option(None, "--sector",
                                      help="with --operator: only this sector's units below the "
                                           "node (e.g. education), see unit_types.toml"),
) -> None:
    """Issue a token. It is printed once and never stored."""
    if (unit is None) == (operator is None):
        raise typer.BadParameter("give exactly one of --unit CODE or --operator NODE")
    kind: auth.Kind = "unit" if unit else "operator"
    scope = unit or operator
    assert scope is not None
    _, database_url = Settings().require_servers()
    try:
        token, credential_id = asyncio.run(_in_session(
            database_url, lambda s: issue_for(s, kind, scope, holder, utc_now(), sector)))
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"credential {credential_id} ({kind} {scope}"
                  f"{f', sector {sector}' if sector else ''})")
    console.print("token (shown once, keep it secret):")
    typer.echo(token)


@app.command("revoke")
def revoke_command(credential_id: uuid.UUID) -> None:
    """Revoke a credential by its id; services stop accepting it within seconds."""
    _, database_url = Settings().require_servers()
    done = asyncio.run(_in_session(
        database_url, lambda s: auth.revoke(s, credential_id, utc_now())))
    if not done:
        console.print(f"[red]no active credential {credential_id}[/]")
        raise typer.Exit(1)
    console.print(f"revoked {credential_id}")


@app.command("list")
def list_command(all_: bool = typer.Option(False, "--all", help="include revoked ones")) -> None:
    """Credentials (never their tokens)."""
    _, database_url = Settings().require_servers()

    async def work(session: AsyncSession) -> list[auth.Credential]:
        query = select(auth.Credential).order_by(auth.Credential.created_at)
        if not all_:
            query = query.where(auth.Credential.revoked_at.is_(None))
        return list((await session.execute(query)).scalars())

    table = Table("id", "kind", "scope", "sector", "holder", "created", "revoked")
    for c in asyncio.run(_in_session(database_url, work)):
        table.add_row(str(c.credential_id), c.kind, c.scope, c.sector or "", c.holder,
                      f"{c.created_at:%Y-%m-%d %H:%M}",
                      f"{c.revoked_at:%Y-%m-%d %H:%M}" if c.revoked_at else "")
    console.print(table)
