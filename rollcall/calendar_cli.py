"""`rollcall calendar ...`: declare, end and list calendars (免报) as an administrator.

What an exemption covers, and why a past day is never changed, is shared/registry/calendar.py.
Running services are told (`calendar.declared` / `calendar.ended`, then `registry.changed`), and
aggregate recounts the expected units of today and the days after."""

import asyncio
from datetime import date, datetime

import typer
from rich.console import Console
from rich.table import Table

from rollcall.registry_cli import _database_url
from shared.clock import utc_now
from shared.contracts import CalendarChanged
from shared.db import make_engine, make_sessionmaker
from shared.registry import calendar
from shared.settings import Settings

app = typer.Typer(help="Calendars (免报): units not expected to report, with a reason.",
                  no_args_is_help=True)
console = Console()
ADMIN = ""  # an administrator's calendars may cover every node


def _day(value: str | None, name: str) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        raise typer.BadParameter(f"not a day: {value}", param_hint=name) from None


def _today() -> date:
    return datetime.now(Settings().zone).date()


async def _in_transaction(work):
    engine = make_engine(_database_url(), pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


def _tell_services(event: CalendarChanged | None) -> None:
    from rollcall.reference import announce

    if nats_url := Settings().nats_url:
        asyncio.run(announce(nats_url, ["calendars"], also=[event] if event else []))
    else:
        console.print("[yellow]ROLLCALL_NATS_URL is not set: running services were not told[/]")


def _show(exemptions: list[calendar.Exemption]) -> None:
    table = Table()
    for column in ("id", "covers", "weekday", "from", "to", "reason", "declared", "ended"):
        table.add_column(column)
    for x in exemptions:
        covers = " ".join(filter(None, [x.unit_code, x.node_code and f"≤{x.node_code}",
                                        x.unit_type]))
        ended = ("withdrawn " if x.withdrawn else "") + (
            f"{x.ended_by} {x.ended_at:%Y-%m-%d %H:%M} {x.end_reason}" if x.ended_at else "")
        table.add_row(str(x.exemption_id), covers, str(x.weekday or ""), str(x.valid_from),
                      str(x.valid_to or ""), x.reason,
                      f"{x.declared_by} {x.declared_at:%Y-%m-%d %H:%M}", ended)
    console.print(table)


def _refused(exc: calendar.CalendarRefused) -> typer.Exit:
    console.print(f"[red]{exc.field}: {exc.zh} ({exc.en})[/]")
    return typer.Exit(1)


@app.command()
def declare(
    reason: str = typer.Option(..., help="why, e.g. 寒假, 休市, 停业整顿"),
    node: str = typer.Option(None, help="every unit at or below this node"),
    unit: str = typer.Option(None, help="this unit only"),
    unit_type: str = typer.Option(None, "--type", help="only units of this type"),
    weekday: int = typer.Option(None, min=1, max=7, help="a weekly rest day, 1 Monday … 7 Sunday"),
    from_day: str = typer.Option(None, "--from", help="first day, YYYY-MM-DD (default today)"),
    to_day: str = typer.Option(None, "--to", help="last day, inclusive (default open)"),
    by: str = typer.Option("admin", help="who declares it (kept in the audit)"),
) -> None:
    """Declare units not expected to report for a period (免报), from today at the earliest."""
    declaration = calendar.Declaration(
        valid_from=_day(from_day, "--from") or _today(), reason=reason, node_code=node,
        unit_code=unit, unit_type=unit_type, weekday=weekday, valid_to=_day(to_day, "--to"))
    try:
        x = asyncio.run(_in_transaction(lambda s: calendar.declare(
            s, declaration, ADMIN, by, utc_now(), _today())))
    except calendar.CalendarRefused as exc:
        raise _refused(exc) from None
    _show([x])
    _tell_services(calendar.announcement(x, "declared", x.reason, by))


@app.command()
def end(exemption_id: int = typer.Argument(..., help="the calendar's id"),
        reason: str = typer.Option(..., help="why it ends"),
        by: str = typer.Option("admin", help="who ends it (kept in the audit)")) -> None:
    """End a calendar from today on; the days before keep it."""
    now = utc_now()
    try:
        x = asyncio.run(_in_transaction(lambda s: calendar.end(
            s, exemption_id, reason, ADMIN, by, now, _today())))
    except calendar.CalendarRefused as exc:
        raise _refused(exc) from None
    _show([x])
    # Over already: nothing ended now, nothing to announce but the reload.
    _tell_services(calendar.announcement(x, "ended", reason, by) if x.ended_at == now else None)


@app.command("list")
def list_(node: str = typer.Option("", help="those concerning this node (default all)"),
          every: bool = typer.Option(False, "--all", help="past ones too")) -> None:
    """The calendars with who declared or ended them, when and why."""
    _show(asyncio.run(_in_transaction(
        lambda s: calendar.listed(s, node, None if every else _today()))))
