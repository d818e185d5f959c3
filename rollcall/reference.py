"""Loading reference data and announcing it on the bus, so running services reload it."""

from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

import nats
import nats.errors
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus import connection_options
from shared.clock import utc_now
from shared.contracts import Event, RegistryChanged
from shared.db import make_engine, make_sessionmaker
from shared.registry import demo, importer, store
from shared.settings import Settings
from shared.streams import ensure_streams_patiently


def today() -> date:
    """The day in the deployment's zone: an import's moves without a date take effect then."""
    return datetime.now(Settings().zone).date()


async def load_demo(session: AsyncSession) -> store.ImportResult:
    """The shipped demo county, through the same import as any file (it changes nothing when
    loaded again)."""
    result = await store.import_batch(session, demo.batch(), today())
    if result.problems:
        raise ValueError("the demo does not import: " + "; ".join(map(str, result.problems[:5])))
    return result


async def _quiet(exc: Exception) -> None:
    """nats-py logs every failed attempt with a traceback; the caller reports the outcome."""


async def announce(nats_url: str, what: list[str], replicas: int = 1,
                   also: Iterable[Event] = ()) -> None:
    """`registry.changed`, after the events `also` (a calendar declared or ended)."""
    connection = await nats.connect(**connection_options(nats_url), connect_timeout=5,
                                    max_reconnect_attempts=3, reconnect_time_wait=0.5,
                                    error_cb=_quiet)
    try:
        js = connection.jetstream()
        await ensure_streams_patiently(js, replicas)  # the deployment's: never shrink a cluster's
        for event in [*also, RegistryChanged(changed_at=utc_now(), what=what)]:
            await js.publish(event.subject, event.model_dump_json().encode(),
                             headers={"Nats-Msg-Id": event.msg_id})
    finally:
        await connection.close()


def changed_parts(batch: importer.Batch) -> list[str]:
    return [part for part, rows in (("nodes", batch.nodes), ("units", batch.units)) if rows]


async def import_files(database_url: str, paths: Iterable[Path], *, kind: str | None = None,
                       within: str | None = None, day: date | None = None,
                       dry_run: bool = False) -> tuple[importer.Batch, store.ImportResult]:
    """Read, check and write an import in one transaction: all of it, or nothing when any row
    is refused (or when `dry_run`)."""
    batch = importer.read(list(paths), kind=kind, within=within)
    if batch.problems:
        return batch, store.ImportResult(batch.problems, None, len(batch.nodes),
                                         len(batch.units))
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            result = await store.import_batch(session, batch, day or today())
            if result.counts is not None and not dry_run:
                await session.commit()
            else:
                await session.rollback()
    finally:
        await engine.dispose()
    return batch, result


async def import_and_announce(database_url: str, nats_url: str | None, paths: Iterable[Path],
                              **options) -> tuple[importer.Batch, store.ImportResult]:
    """Import, then tell running services (after commit: they reload what is committed).
    Announced even when nothing changed: a retry also repairs a notice lost earlier."""
    batch, result = await import_files(database_url, paths, **options)
    if result.counts is not None and not options.get("dry_run") and nats_url:
        try:
            await announce(nats_url, changed_parts(batch))
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            # The import is committed; services pick it up at the next notice or restart.
            result.announce_error = str(exc) or type(exc).__name__
        else:
            result.announced = True
    return batch, result


async def load_demo_and_announce(database_url: str, nats_url: str, replicas: int = 1) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await load_demo(session)
    finally:
        await engine.dispose()
    await announce(nats_url, ["nodes", "units"], replicas)


async def registry_summary(database_url: str, code: str | None) -> dict | None:
    """Divisions by level and units by type (where they are today) at and below a node."""
    from sqlalchemy import text

    prefix = code or ""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            title = "the whole registry"
            if code:
                row = (await session.execute(text(
                    "SELECT name, level FROM registry.nodes WHERE code = :c"), {"c": code})).first()
                if row is None:
                    return None
                title = f"{code} {row.name}"
            levels = (await session.execute(text(
                "SELECT level, count(*) FROM registry.nodes WHERE code LIKE :p || '%' "
                "GROUP BY level ORDER BY level"), {"p": prefix})).tuples().all()
            types = (await session.execute(text("""
                WITH placed AS (
                    SELECT DISTINCT ON (unit_code) unit_code, node_code FROM registry.placements
                    WHERE valid_from <= :day ORDER BY unit_code, valid_from DESC)
                SELECT u.unit_type, u.sector, count(*) FROM placed
                JOIN registry.units u ON u.code = placed.unit_code
                WHERE placed.node_code LIKE :p || '%'
                GROUP BY u.unit_type, u.sector ORDER BY count(*) DESC"""),
                {"p": prefix, "day": today()})).tuples().all()
    finally:
        await engine.dispose()
    names = {1: "province", 2: "city", 3: "county", 4: "township", 5: "village"}
    return {"title": title, "levels": [(names[lvl], n) for lvl, n in levels],
            "types": list(types)}


async def move_unit(database_url: str, unit: str, node: str, day: date
                    ) -> store.ImportResult | None:
    """Move a unit to another node from a day on, through the same checks as an import; None
    when there is no such unit."""
    from shared.registry.models import Unit

    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            row = await session.get(Unit, unit)
            if row is None:
                return None
            # Through the same row checks as a file: the node must be a village, town or
            # county the registry holds.
            fields = {"code": row.code, "name": row.name, "type": row.unit_type,
                      "sector": row.sector, "node": node, "placed_from": day.isoformat(),
                      "active_from": row.active_from.isoformat() if row.active_from else "",
                      "active_to": row.active_to.isoformat() if row.active_to else "",
                      "cutoff": row.cutoff.isoformat() if row.cutoff else ""}
            batch = importer.Batch()
            moved = importer.unit_row(importer.Record("move", 0, fields),
                                      importer.unit_types(), importer.sectors(), batch.problems)
            batch.units = [moved] if moved else []
            result = await store.import_batch(session, batch, day)
            if result.counts is not None:
                await session.commit()
    finally:
        await engine.dispose()
    return result
