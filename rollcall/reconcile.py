"""`rollcall reconcile --day D [--node N] [--days N] [--repair]`: the rollup invariant, checked.

Recomputes a day's figures from scratch out of the ingest ledger (the latest revision of every
unit's report), the registry (the units expected, their cutoffs and calendars) and the clock
(which unreported units are pending and which missing, now), compares them with what aggregate
stores (unit records, rollups, completeness) for N and every node below it, prints the
differences and exits 1 if there are any. `--repair` rewrites the unit records that differ from
the ledger and recounts the day, under the day's exclusive lock (batches for that day wait
meanwhile).

With `--days N`, also the values over the N days ending at D, each metric folded over days by
its kind (a stock is its last day's figure), stored against recomputed.

The headcounts of people under control are also checked against their source, the ledger of
people under control (services/ledger, 一人一案): every node's `control_*` figures as stored by
aggregate against a count from the files (`services/ledger/plan.py` `headcounts`).

An admin tool, not a service: it reads the ledger (ingest's table), the ledger of people under
control and aggregate's tables.
Reports still on their way (in the outbox or the stream) show as differences until applied."""

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from services.aggregate import expected, rebuild
from services.aggregate.queries import under
from services.aggregate.rebuild import UnitRecord
from services.aggregate.rollup import COUNT_FIELDS, Applied, Counts, Figures, Tally, from_scratch
from services.ledger import plan as control_plan
from services.ledger import store as control_store
from services.ledger.regimes import load_regimes
from shared.aggregation import over_units
from shared.catalogue import Catalogue, default_catalogue
from shared.clock import utc_now
from shared.db import make_engine, make_sessionmaker
from shared.deadlines import Moment, local_day
from shared.hierarchy import Level, level_of
from shared.settings import Settings

app = typer.Typer(help="Check the stored rollups against a recompute from the ledger.")
console = Console()
SHOWN = 50

LEDGER = text("""
    SELECT DISTINCT ON (r.unit_code) r.unit_code, r.day, r.revision, r.report_id, r.node_code,
           r.values, r.zero, r.late, r.submitted_at, u.unit_type, u.sector
    FROM ingest.reports r LEFT JOIN registry.units u ON u.code = r.unit_code
    WHERE r.day = :day
    ORDER BY r.unit_code, r.revision DESC
""")
STORED_UNITS = text("""
    SELECT unit_code, day, revision, report_id, node_code, unit_type, sector, values, zero, late,
           submitted_at
    FROM aggregate.unit_days WHERE day = :day
""")
STORED = text(f"""
    SELECT node_code, values, expected, reported, zero, late, exempt, unreported
    FROM aggregate.node_days
    WHERE day = :day AND {under("node_code", "node")}
""")
EXPECTED = text(expected.expected_units_sql("(SELECT CAST(:day AS date))",
                                            under("p.node_code", "node")))


@dataclass(frozen=True)
class Difference:
    kind: str  # unit, value or count
    key: str  # the unit or node
    what: str  # the unit's field, the metric or the count
    stored: object
    recomputed: object


@dataclass
class Result:
    day: date
    node: str
    units: int = 0
    nodes: int = 0
    differences: list[Difference] = field(default_factory=list)


def _record(r) -> UnitRecord:
    return UnitRecord(r.unit_code, r.day, r.revision, r.report_id, r.node_code,
                      r.unit_type or "unknown", r.sector or "unknown", dict(r.values), r.zero,
                      r.late, r.submitted_at)


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _in(node: str, scope: str) -> bool:
    return node.startswith(scope)


async def _load(session: AsyncSession, day: date
                ) -> tuple[dict[str, UnitRecord], dict[str, UnitRecord]]:
    ledger = {r.unit_code: _record(r) for r in await session.execute(LEDGER, {"day": day})}
    stored = {r.unit_code: _record(r) for r in await session.execute(STORED_UNITS, {"day": day})}
    return ledger, stored


def _unit_differences(ledger: dict[str, UnitRecord], stored: dict[str, UnitRecord],
                      scope: str) -> list[Difference]:
    out = []
    units = {u for u, r in ledger.items() if _in(r.node, scope)}
    units |= {u for u, r in stored.items() if _in(r.node, scope)}
    for unit in sorted(units):
        want, have = ledger.get(unit), stored.get(unit)
        if want is None or have is None:
            out.append(Difference("unit", unit, "revision", have and have.revision,
                                  want and want.revision))
            continue
        for what in ("revision", "node", "values", "zero", "late"):
            a, b = getattr(have, what), getattr(want, what)
            if what == "values":
                same = a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
            else:
                same = a == b
            if not same:
                out.append(Difference("unit", unit, what, a, b))
    return out


def _now() -> Moment:
    return Moment(utc_now(), Settings().zone)


async def _recompute(session: AsyncSession, day: date, node: str, catalogue: Catalogue,
                     moment: Moment) -> tuple[list[UnitRecord], dict, dict]:
    """The ledger's latest revisions in `node`'s subtree on `day`, and the figures recomputed
    from them and from the registry's expected units (their cutoffs and calendars), each unit in
    its state at `moment`."""
    ledger, _ = await _load(session, day)
    in_scope = [r for r in ledger.values() if _in(r.node, node)]
    roster = [(r.unit_code, r.day, r.node_code, r.cutoff, r.exempt) for r in await session.execute(
        EXPECTED, {"day": day, "node": node, "sector": None, "unit_type": None})]
    values, counts = from_scratch(
        (Applied(r.unit, r.day, r.revision, r.node, r.values, r.zero, r.late) for r in in_scope),
        catalogue, roster, moment)
    return in_scope, values, counts


async def _stored_figures(session: AsyncSession, day: date, node: str, moment: Moment
                          ) -> dict[str, Figures]:
    return {r.node_code: Figures(dict(r.values), Tally(
        r.expected, r.reported, r.zero, r.late, r.exempt, r.unreported).at(day, moment))
        for r in await session.execute(STORED, {"day": day, "node": node})}


async def check(session: AsyncSession, day: date, node: str = "",
                catalogue: Catalogue | None = None, moment: Moment | None = None) -> Result:
    """Every difference between what aggregate stores for `node` (all nodes when empty) and
    its subtree on `day`, and the recompute from the ledger and the registry, both read at
    `moment` (now by default)."""
    catalogue = catalogue or default_catalogue()
    moment = moment or _now()
    ledger, stored = await _load(session, day)
    result = Result(day, node)
    result.differences += _unit_differences(ledger, stored, node)
    in_scope, values, counts = await _recompute(session, day, node, catalogue, moment)
    result.units = len(in_scope)
    have_values, have_counts = {}, {}
    for n, figures in (await _stored_figures(session, day, node, moment)).items():
        have_counts[n] = figures.counts
        have_values.update({(n, m): float(v) for m, v in figures.values.items()})
    want_values = {(n, m): v for (n, _, m), v in values.items() if _in(n, node)}
    want_counts = {n: c for (n, _), c in counts.items() if _in(n, node)}
    result.differences += _value_differences(have_values, want_values, catalogue)
    nodes = sorted(set(have_counts) | set(want_counts))
    result.nodes = len(nodes)
    for n in nodes:
        have, want = have_counts.get(n, Counts()), want_counts.get(n, Counts())
        for what in COUNT_FIELDS:
            a, b = getattr(have, what), getattr(want, what)
            if a != b:
                result.differences.append(Difference("count", n, what, a, b))
    return result


async def check_control(session: AsyncSession, day: date, node: str = "",
                        today: date | None = None) -> list[Difference]:
    """The headcounts of people under control that aggregate stores for `node` and its subtree
    (every node when empty) against a count from the ledger's files. A day's missing sign-offs
    are compared once the day is over (`today`: the deployment's, by default)."""
    settings = Settings()
    regimes = load_regimes(settings.ledger_regimes)
    today = today or local_day(utc_now(), settings.zone)
    files = await control_store.facts(session, await control_store.ids_on(session, node, day))
    top = level_of(node) if node else Level.PROVINCE
    final = day < today
    want = control_plan.headcounts(regimes, files, day, top, final)
    metrics = [*regimes.metrics] + ([control_plan.SIGNOFF_MISSING] if final else [])
    have = {r.node_code: dict(r.values) for r in await session.execute(
        STORED, {"day": day, "node": node})}
    out = []
    for n in sorted(set(want) | {k for k, v in have.items() if any(m in v for m in metrics)}):
        for m in metrics:
            stored, counted = have.get(n, {}).get(m, 0), want.get(n, {}).get(m, 0)
            if float(stored) != float(counted):
                out.append(Difference("control", n, m, stored, counted))
    return out


async def check_range(session: AsyncSession, start: date, end: date, node: str = "",
                      catalogue: Catalogue | None = None) -> Result:
    """The values over the days `start`..`end` of `node` and every node below, as the range
    rollups fold the stored node-days (`Figures.over_days`: a flow sums, a stock is its last
    day's figure), against the same fold of each day recomputed from the ledger."""
    catalogue = catalogue or default_catalogue()
    moment = _now()
    result = Result(end, node)
    have: dict[str, list[Figures]] = {}
    want: dict[str, list[Figures]] = {}
    for day in days_between(start, end):
        for n, figures in (await _stored_figures(session, day, node, moment)).items():
            have.setdefault(n, []).append(figures)
        in_scope, values, counts = await _recompute(session, day, node, catalogue, moment)
        result.units += len(in_scope)
        recomputed: dict[str, Figures] = {}
        for (n, _), c in counts.items():
            recomputed[n] = Figures({}, c)
        for (n, _, m), v in values.items():
            recomputed.setdefault(n, Figures()).values[m] = v
        for n, figures in recomputed.items():
            if _in(n, node):
                want.setdefault(n, []).append(figures)
    nodes = sorted(set(have) | set(want))
    result.nodes = len(nodes)
    for n in nodes:
        a = Figures.over_days(have.get(n, []), catalogue).values
        b = Figures.over_days(want.get(n, []), catalogue).values
        for code in sorted(set(a) | set(b)):
            if not _same(a.get(code, 0.0), b.get(code, 0.0)):
                result.differences.append(Difference("range", n, code, a.get(code),
                                                     b.get(code)))
    return result


def days_between(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _value_differences(have: dict[tuple[str, str], float], want: dict[tuple[str, str], float],
                       catalogue: Catalogue) -> Iterable[Difference]:
    kinds = over_units(catalogue)
    for key in sorted(set(have) | set(want)):
        kind = kinds.get(key[1])
        if kind is None:
            continue
        # A sum of nothing is zero whether or not its row exists; an extreme of nothing is none.
        default = 0.0 if kind.additive else None
        a, b = have.get(key, default), want.get(key, default)
        if not _same(a, b):
            yield Difference("value", key[0], key[1], a, b)


async def repair(session: AsyncSession, day: date, node: str = "",
                 catalogue: Catalogue | None = None) -> int:
    """Rewrite the unit records of `node`'s subtree that differ from the ledger, then recount
    the whole day. Returns how many unit records were rewritten. The caller commits."""
    catalogue = catalogue or default_catalogue()
    now = utc_now()
    await expected.lock_days(session, exclusive={day})
    ledger, stored = await _load(session, day)  # read under the lock: nothing applies meanwhile
    units = sorted({d.key for d in _unit_differences(ledger, stored, node)})
    records = []
    for unit in units:
        if unit in ledger:
            kept = stored.get(unit)
            # Keep the type and sector the report was accepted with, when known.
            records.append(ledger[unit] if kept is None else _with_kind(ledger[unit], kept))
    await rebuild.replace_units(session, day, units, records, now)
    await rebuild.rebuild_day(session, day, catalogue, now)
    return len(units)


def _with_kind(record: UnitRecord, kept: UnitRecord) -> UnitRecord:
    return UnitRecord(record.unit, record.day, record.revision, record.report_id, record.node,
                      kept.unit_type, kept.sector, record.values, record.zero, record.late,
                      record.submitted_at)


def _print(result: Result) -> None:
    where = result.node or "all nodes"
    if not result.differences:
        console.print(f"[green]{result.day} {where}: consistent[/] "
                      f"({result.units} unit reports, {result.nodes} nodes checked)")
        return
    table = Table(title=f"{result.day} {where}: {len(result.differences)} differences")
    for column in ("kind", "unit / node", "field", "stored", "recomputed"):
        table.add_column(column)
    for d in result.differences[:SHOWN]:
        table.add_row(d.kind, d.key, d.what, repr(d.stored), repr(d.recomputed))
    console.print(table)
    if len(result.differences) > SHOWN:
        console.print(f"… and {len(result.differences) - SHOWN} more")


async def run(database_url: str, day: date, node: str, fix: bool, days: int = 1) -> int:
    engine = make_engine(database_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    try:
        async with sessions() as session:
            result = await check(session, day, node)
            result.differences += await check_control(session, day, node)
            if days > 1:
                over = await check_range(session, day - timedelta(days=days - 1), day, node)
                result.differences += over.differences
        _print(result)
        if not result.differences or not fix:
            return 1 if result.differences else 0
        async with sessions() as session, session.begin():
            rewritten = await repair(session, day, node)
        console.print(f"repaired: {rewritten} unit records rewritten, {day} recounted")
        async with sessions() as session:
            result = await check(session, day, node)
        _print(result)
        return 1 if result.differences else 0
    finally:
        await engine.dispose()


@app.callback(invoke_without_command=True)
def reconcile(
    day: str = typer.Option(..., help="the reporting day, YYYY-MM-DD"),
    node: str = typer.Option("", help="check only this node and its subtree"),
    fix: bool = typer.Option(False, "--repair", help="rewrite what differs, then check again"),
    days: int = typer.Option(1, min=1, max=366,
                             help="also check the values over the N days ending at DAY, each "
                                  "metric by its aggregation over days"),
) -> None:
    """Recompute DAY from the ledger and compare with the stored rollups; exit 1 on differences
    (with --repair: on differences that remain after the repair)."""
    try:
        the_day = date.fromisoformat(day)
    except ValueError:
        raise typer.BadParameter(f"not a day: {day}", param_hint="--day") from None
    if node:
        try:
            level_of(node)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--node") from None
    database_url = Settings().database_url
    if not database_url:
        raise typer.BadParameter("set ROLLCALL_DATABASE_URL", param_hint="environment")
    raise typer.Exit(asyncio.run(run(database_url, the_day, node, fix, days)))
