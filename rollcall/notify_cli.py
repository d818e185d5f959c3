"""`rollcall notify ...`: notify's staff records from the command line. `import` takes the same
CSV and JSON files as `POST /v1/staff/{kind}` and goes through the same importer (all or
nothing, every problem named by file, line and field); `list` shows what a subtree holds,
without an address (which channels reach each person, not where)."""

import asyncio
import enum
from datetime import UTC, date, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from shared.settings import Settings

app = typer.Typer(help="Notify's staff records: people, their roles at units and nodes "
                       "(contacts) and duty rosters.", no_args_is_help=True)
console = Console()
MAX_SHOWN = 100


class Kind(enum.StrEnum):
    people = "people"
    contacts = "contacts"
    rosters = "rosters"


def _database_url(settings: Settings) -> str:
    if not settings.database_url:
        console.print("[red]ROLLCALL_DATABASE_URL is not set[/] (the staff records live there)")
        raise typer.Exit(2)
    return settings.database_url


async def _import(settings: Settings, kind: str, data: bytes, file: str, json_format: bool,
                  within: str) -> tuple[int, list]:
    from services.notify import staffing
    from services.notify.hosts import AllowedHosts
    from shared.db import make_engine, make_sessionmaker
    from shared.deadlines import local_day

    engine = make_engine(_database_url(settings), pool_size=1)
    engine.sync_engine.hide_parameters = True  # an error never prints a phone number
    now = datetime.now(UTC)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            # Checked whole before anything is written: a problem leaves nothing behind.
            return await staffing.import_staff(
                session, kind, data, file, json_format, within, now,
                local_day(now, settings.zone),
                hosts=AllowedHosts.parse(settings.notify_allowed_hosts))
    finally:
        await engine.dispose()


@app.command("import")
def import_(
    kind: Kind = typer.Argument(..., help="what the file holds: people, contacts or rosters"),
    path: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="a CSV file (UTF-8, a header row) or a JSON array"),
    within: str = typer.Option("", "--within", help="refuse any row outside this node's "
                               "subtree (default: the whole registry)"),
    json_format: bool | None = typer.Option(None, "--json/--csv", help="the file's format "
                                            "(default: from its suffix)"),
) -> None:
    """Import staff records through the importer the HTTP API uses: the whole file in one
    transaction, or nothing when any row is refused (each problem named). Robots' webhooks must
    be on ROLLCALL_NOTIFY_ALLOWED_HOSTS. The rosters of the days a file names are replaced."""
    settings = Settings()
    as_json = json_format if json_format is not None else path.suffix.lower() == ".json"
    written, problems = asyncio.run(_import(settings, kind.value, path.read_bytes(), path.name,
                                            as_json, within))
    if problems:
        for problem in problems[:MAX_SHOWN]:
            console.print(str(problem), markup=False, highlight=False)
        if len(problems) > MAX_SHOWN:
            console.print(f"… and {len(problems) - MAX_SHOWN} more")
        console.print(f"[red]{len(problems)} problems: nothing imported[/]")
        raise typer.Exit(1)
    console.print(f"{kind.value}: {written} rows imported from {path.name}")


async def _listing(settings: Settings, node: str, day: date) -> tuple[list, list, list]:
    from services.notify import store
    from shared.db import make_engine, make_sessionmaker

    engine = make_engine(_database_url(settings), pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            return (await store.people_within(session, node),
                    await store.contacts_within(session, node),
                    await store.roster(session, node, day) if node else [])
    finally:
        await engine.dispose()


@app.command("list")
def list_(node: str = typer.Option("", help="a node's subtree (default: everyone)"),
          day: str = typer.Option(None, help="the day of the node's roster (YYYY-MM-DD, "
                                  "default today)")) -> None:
    """The people of a subtree with the channels that reach them (never the addresses), who is
    in charge of and reports for each unit and node, and the node's roster for the day."""
    from shared.deadlines import local_day

    settings = Settings()
    when = date.fromisoformat(day) if day else local_day(datetime.now(UTC), settings.zone)
    people, contacts, shifts = asyncio.run(_listing(settings, node, when))
    table = Table("code", "name", "node", "channels", title="people")
    for person in people:
        reach = [c for c in ("sms", "email", "wecom", "dingtalk") if person.address(c)]
        table.add_row(person.code, person.name, person.node, ", ".join(reach) or "-")
    console.print(table)
    table = Table("unit or node", "role", "person", title="contacts")
    for scope, role, _, person in contacts:
        table.add_row(scope, role, person)
    console.print(table)
    if node:
        table = Table("person", "role", "from", "to", title=f"roster of {node} on {when}")
        for shift in shifts:
            table.add_row(shift.person, shift.role, f"{shift.starts:%H:%M}",
                          f"{shift.ends:%H:%M}" if shift.ends else "24:00")
        console.print(table if shifts else f"no roster for {node} on {when}")
