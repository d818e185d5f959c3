"""The `rollcall bench` command."""

from pathlib import Path

import typer

from rollcall.bench.run import Options


def bench(
    quick: bool = typer.Option(False, "--quick", help="a run of seconds: one county of the "
                               "shipped extract, small phases (what the test suite runs)"),
    within: str | None = typer.Option(None, "--within", "--province",
                                      help="the division to load (default 43: Hunan)"),
    divisions: Path | None = typer.Option(None, help="the divisions directory (default: "
                                          "../shared/data/divisions beside the repository)"),
    reports: int | None = typer.Option(None, help="reports per flat-out phase (at most one "
                                       "per unit; default 200,000)"),
    rate: float | None = typer.Option(None, help="reports/s of the latency phases (1,000)"),
    rate_seconds: float | None = typer.Option(None, help="length of a latency phase (30 s)"),
    backlog: int | None = typer.Option(None, help="reports submitted while aggregate is down "
                                       "(1,000,000)"),
    concurrency: int | None = typer.Option(None, help="bulk requests in flight (2)"),
    aggregate_batch: int | None = typer.Option(None, help="ROLLCALL_AGGREGATE_BATCH for the "
                                               "aggregate service"),
    json_path: Path | None = typer.Option(None, "--json", help="write the figures here"),
    keep: Path | None = typer.Option(None, help="keep servers' data and logs in this directory"),
    statements: bool = typer.Option(False, "--statements", help="PostgreSQL's time per "
                                    "statement in each flat-out phase (pg_stat_statements on "
                                    "the embedded server; it costs a little)"),
) -> None:
    """Measure Rollcall end to end (a province's registry, the bulk HTTP and bus paths flat out
    and at a fixed rate, fever case → alert, peak memory, a backlog after aggregate was down)
    against raw JetStream and COPY on the same machine, in the same run."""
    from rollcall.bench.run import main

    given = {k: v for k, v in {
        "within": within, "divisions": divisions, "reports": reports, "rate": rate,
        "rate_seconds": rate_seconds, "backlog": backlog, "concurrency": concurrency,
        "aggregate_batch": aggregate_batch, "keep": keep,
        "statements": statements or None}.items() if v is not None}
    options = Options.quick(**given) if quick else Options(**given)
    main(options, json_path)
