"""`rollcall registry ...`: import the hierarchy and units, generate them, list the catalogue."""

import asyncio
import time
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from shared.settings import Settings

app = typer.Typer(help="The registry: divisions, villages, reporting units and the catalogue.",
                  no_args_is_help=True)
console = Console()
MAX_SHOWN = 100


def _database_url() -> str:
    url = Settings().database_url
    if not url:
        console.print("[red]ROLLCALL_DATABASE_URL is not set[/] (the registry lives there)")
        raise typer.Exit(2)
    return url


def _print_problems(problems: list) -> None:
    for problem in problems[:MAX_SHOWN]:
        console.print(str(problem), markup=False, highlight=False)
    if len(problems) > MAX_SHOWN:
        console.print(f"… and {len(problems) - MAX_SHOWN} more")


@app.command("import")
def import_(
    paths: list[Path] = typer.Argument(..., help="files, or directories holding provinces.csv, "
                                       "cities.csv, areas.csv, streets.csv, villages.csv|json, "
                                       "units.csv|json"),
    kind: str | None = typer.Option(None, help="what a file holds when its name does not say: "
                                    "provinces, cities, areas, streets, villages or units"),
    within: str | None = typer.Option(None, "--within", "--province", "--county",
                                      help="import only the rows on the way to and below this "
                                      "division code (e.g. 43 for Hunan)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check and count, write nothing"),
    moves_from: str | None = typer.Option(None, help="the day moves without placed_from take "
                                          "effect (default: today)"),
) -> None:
    """Import division codes, villages and units: all of it in one transaction, or nothing when
    any row is refused. Importing the same files again changes nothing. Running services are
    told to reload."""
    from rollcall.reference import import_and_announce

    database_url = _database_url()
    nats_url = Settings().nats_url
    started = time.perf_counter()
    batch, result = asyncio.run(import_and_announce(
        database_url, nats_url, paths, kind=kind, within=within, dry_run=dry_run,
        day=date.fromisoformat(moves_from) if moves_from else None))
    elapsed = time.perf_counter() - started
    skipped = f" ({batch.skipped:,} rows outside {within} skipped)" if batch.skipped else ""
    console.print(f"read {len(batch.nodes):,} divisions and {len(batch.units):,} units from "
                  f"{len(batch.files)} files{skipped}")
    if result.counts is None:
        _print_problems(result.problems)
        console.print(f"[red]{len(result.problems):,} problems: nothing imported[/]")
        raise typer.Exit(1)
    c = result.counts
    console.print(f"divisions: {c.nodes_added:,} added, {c.nodes_changed:,} renamed; "
                  f"units: {c.units_added:,} added, {c.units_changed:,} changed; "
                  f"placements: {c.placements_set:,} set, {c.placements_removed:,} removed")
    if dry_run:
        console.print(f"dry run: nothing written ({elapsed:.1f} s)")
    elif not c.changed:
        console.print(f"nothing changed ({elapsed:.1f} s)")
    else:
        console.print(f"imported in {elapsed:.1f} s")
    if dry_run:
        return
    if result.announced:
        console.print("running services told to reload (registry.changed)")
    elif result.announce_error:
        console.print(f"[yellow]imported, but running services were not told: "
                      f"{result.announce_error}; they reload at the next import or restart[/]")
    else:
        console.print("[yellow]ROLLCALL_NATS_URL is not set: running services were not told[/]")


@app.command()
def move(unit: str = typer.Argument(..., help="the unit's code"),
         node: str = typer.Argument(..., help="the village, town or county it moves to"),
         from_day: str = typer.Option(None, "--from", help="the first day at the new node "
                                      "(YYYY-MM-DD, default today)")) -> None:
    """Move a unit to another node from a day on: the days before stay rolled up where they
    were. Running services are told."""
    from rollcall.reference import announce, move_unit, today

    day = date.fromisoformat(from_day) if from_day else today()
    result = asyncio.run(move_unit(_database_url(), unit, node, day))
    if result is None:
        console.print(f"[red]no unit {unit}[/]")
        raise typer.Exit(1)
    if result.counts is None:
        _print_problems(result.problems)
        raise typer.Exit(1)
    if not result.counts.changed:
        console.print(f"{unit} is at {node} from {day} already")
    else:
        console.print(f"{unit} is at {node} from {day}")
    if nats_url := Settings().nats_url:
        asyncio.run(announce(nats_url, ["units"]))


@app.command()
def generate(
    within: str = typer.Option(..., "--within", "--province", "--county",
                               help="division code to generate below (43: Hunan)"),
    divisions: Path = typer.Option(None, help="directory of provinces.csv, cities.csv, "
                                   "areas.csv, streets.csv (default: the shipped demo extract)"),
    out: Path = typer.Option(..., help="directory to write the files to"),
) -> None:
    """Generate villages and units under real townships, with the divisions extract, as files
    `rollcall registry import OUT` loads. Deterministic: the same input gives the same files."""
    from shared.registry.demo import DEMO_DIR
    from shared.registry.generate import generate_from

    files, problems = generate_from(divisions or DEMO_DIR, within)
    if problems:
        _print_problems(problems)
        raise typer.Exit(1)
    out.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (out / name).write_text(content, encoding="utf-8")
    counts = {name: content.count("\n") - 1 for name, content in files.items()}
    console.print(", ".join(f"{name} {n:,}" for name, n in counts.items()) + f" → {out}")


@app.command()
def catalogue(
    file: Path = typer.Option(None, help="a catalogue file to check and list (default: the "
                              "deployment's)"),
) -> None:
    """List the metric catalogue (metrics, validation rules, ratios), checking the file."""
    from shared.catalogue import DEFAULT_PATH, Catalogue, CatalogueError

    try:
        cat = Catalogue.from_toml(file or DEFAULT_PATH)
    except CatalogueError as exc:
        for problem in exc.problems:
            console.print(problem, markup=False)
        console.print(f"[red]{len(exc.problems)} problems in {file or DEFAULT_PATH}[/]")
        raise typer.Exit(1) from None
    metrics = Table("名称", "name", "type", "aggregation", "range", title="metrics")
    metrics.add_column("code", no_wrap=True)
    for m in cat.metrics.values():
        bounds = "" if m.min_value is None and m.max_value is None else \
            f"{m.min_value if m.min_value is not None else ''}–" \
            f"{m.max_value if m.max_value is not None else ''}"
        metrics.add_row(m.name_zh, m.name_en, m.value_type, m.aggregation, bounds, m.code)
    console.print(metrics)
    rules = Table("code", "rule", "message", title="validation rules")
    for r in cat.rules:
        rules.add_row(r.code, f"{r.lhs} ≤ {r.rhs}", f"{r.message_zh} / {r.message_en}")
    console.print(rules)
    ratios = Table("code", "名称", "name", "= sum of / sum of", title="ratios")
    for q in cat.ratios:
        ratios.add_row(q.code, q.name_zh, q.name_en, f"{q.numerator} / {q.denominator}")
    console.print(ratios)


@app.command()
def show(code: str = typer.Argument(None, help="a division code (default: every province)")
         ) -> None:
    """What the registry holds at and below a node: divisions by level, units by type."""
    from rollcall.reference import registry_summary

    summary = asyncio.run(registry_summary(_database_url(), code))
    if summary is None:
        console.print(f"[red]no division {code}[/]")
        raise typer.Exit(1)
    console.print(summary["title"])
    levels = Table("level", "divisions")
    for level, n in summary["levels"]:
        levels.add_row(level, f"{n:,}")
    console.print(levels)
    types = Table("unit type", "sector", "units")
    for unit_type, sector, n in summary["types"]:
        types.add_row(unit_type, sector, f"{n:,}")
    types.add_row("[b]all[/]", "", f"[b]{sum(n for *_, n in summary['types']):,}[/]")
    console.print(types)
