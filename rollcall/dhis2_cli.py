"""`rollcall dhis2`: DHIS2 data value sets from the command line, through the running services'
APIs (an operator's token, as the console uses): export a node's or its units' figures, import
a payload, check a mapping file."""

import sys
from datetime import date
from pathlib import Path
from typing import Literal

import httpx
import typer

from shared.catalogue import default_catalogue
from shared.dhis2 import MappingError, load_mapping
from shared.settings import Settings

app = typer.Typer(help="DHIS2 data value sets: export, import, check a mapping.",
                  no_args_is_help=True)
TOKEN = typer.Option(..., envvar="ROLLCALL_TOKEN", help="an operator's token (rc_…)")


def _url(given: str | None, service: Literal["ingest", "aggregate"]) -> str:
    if given:
        return given.rstrip("/")
    settings = Settings()
    return f"http://127.0.0.1:{getattr(settings, f'{service}_port')}"


@app.command()
def export(
    node: str = typer.Option(..., help="the node (division code)"),
    start: str | None = typer.Option(None, help="first day, YYYY-MM-DD (default: today)"),
    end: str | None = typer.Option(None, help="last day, YYYY-MM-DD (default: today)"),
    units: bool = typer.Option(False, help="each unit's own reports (ingest) instead of the "
                                           "node's rollup (aggregate)"),
    children: bool = typer.Option(False, help="each child node's rollup"),
    csv: bool = typer.Option(False, "--csv", help="DHIS2's CSV instead of JSON"),
    skip_unmapped: bool = typer.Option(False, help="leave out what the mapping lacks "
                                                   "(listed on stderr) rather than refuse"),
    out: Path | None = typer.Option(None, help="write here (default: stdout)"),
    token: str = TOKEN,
    url: str | None = typer.Option(None, help="the service's address (default: local port)"),
) -> None:
    """A node's figures, or its units', as a DHIS2 data value set."""
    for given in (start, end):
        if given is not None:
            date.fromisoformat(given)
    service: Literal["ingest", "aggregate"] = "ingest" if units else "aggregate"
    params = {"node": node, "unmapped": "skip" if skip_unmapped else "refuse",
              **({"start": start} if start else {}), **({"end": end} if end else {}),
              **({"children": "true"} if children else {})}
    response = httpx.get(
        f"{_url(url, service)}/v1/export/dhis2/dataValueSets.{'csv' if csv else 'json'}",
        params=params, headers={"Authorization": f"Bearer {token}"}, timeout=300)
    if response.status_code != 200:
        typer.echo(response.text, err=True)
        raise typer.Exit(1)
    if skipped := response.headers.get("rollcall-unmapped"):
        typer.echo(f"unmapped, left out: {skipped}", err=True)
    if out is None:
        sys.stdout.write(response.text)
    else:
        out.write_text(response.text, encoding="utf-8")


@app.command(name="import")
def import_(
    file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="a DHIS2 data value set: .json, or DHIS2's .csv"),
    token: str = TOKEN,
    url: str | None = typer.Option(None, help="ingest's address (default: local port)"),
) -> None:
    """A DHIS2 data value set into Rollcall as reports (exit 1 if a value was refused).

    Prints DHIS2's import summary."""
    kind = "application/csv" if file.suffix.lower() == ".csv" else "application/json"
    response = httpx.post(f"{_url(url, 'ingest')}/v1/import/dhis2/dataValueSets",
                          content=file.read_bytes(), timeout=600,
                          headers={"Authorization": f"Bearer {token}", "content-type": kind})
    typer.echo(response.text)
    body = response.json() if response.headers.get("content-type", "").startswith(
        "application/json") else {}
    if response.status_code != 200 or body.get("status") != "OK":
        raise typer.Exit(1)


@app.command()
def check(file: Path | None = typer.Argument(
        None, help="a mapping file (default: ROLLCALL_DHIS2_MAPPING, else the shipped "
                   "example)")) -> None:
    """Check a mapping file as the services will at start: every problem named."""
    path = file or Settings().dhis2_mapping
    try:
        mapping = load_mapping(path, default_catalogue().metrics)
    except MappingError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        raise typer.Exit(1) from None
    missing = sorted(set(default_catalogue().metrics) - set(mapping.elements))
    typer.echo(f"{mapping.source}: {len(mapping.elements)} data elements, "
               f"{len(mapping.org_units)} org units, org units by {mapping.org_unit_id_scheme}")
    if missing:
        typer.echo(f"metrics without a data element (refused or skipped on export): "
                   f"{', '.join(missing)}")
