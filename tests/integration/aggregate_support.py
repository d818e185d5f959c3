"""Helpers for the aggregate tests: made-up counties in the registry, accepted-report events
published straight to JetStream (as ingest's relay publishes them), the ledger rows reconcile
reads, and a private database per module so that no other service writes to what is checked."""

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache

import asyncpg
from nats.js.errors import NotFoundError
from sqlalchemy import text
from sqlalchemy.engine import make_url

from rollcall.migrate import upgrade
from rollcall.reference import load_demo
from shared.contracts import ReportAccepted
from shared.db import make_engine, make_sessionmaker
from shared.hierarchy import parent_of
from shared.registry import demo, store
from shared.registry.unit_types import unit_types

REGISTERED_FROM = date(2020, 1, 1)


@dataclass(frozen=True)
class Unit:
    code: str
    node: str
    unit_type: str
    sector: str


@cache
def _demo_batch():
    return demo.batch()


def demo_units(day: date) -> list[Unit]:
    """The demo county's units active on a day, as the shipped files say (what tests expect
    aggregate to count, independently of its queries)."""
    return [Unit(u.code, u.node, u.unit_type, u.sector) for u in _demo_batch().units
            if (u.active_from is None or u.active_from <= day)
            and (u.active_to is None or u.active_to >= day)]


def demo_children(node: str) -> list[str]:
    """The demo nodes directly below a node, in code order."""
    return sorted(n.code for n in _demo_batch().nodes if parent_of(n.code) == node)


def under(units: list[Unit], node: str, sector: str | None = None,
          unit_type: str | None = None) -> list[Unit]:
    """The units placed at or below a node, optionally of one sector or unit type."""
    return [u for u in units if u.node.startswith(node)
            and (sector is None or u.sector == sector)
            and (unit_type is None or u.unit_type == unit_type)]


def roster(units: list[Unit], day: date) -> list[tuple]:
    """(unit, day, node, cutoff, exempt) for `rollup.from_scratch`: the units' type cutoffs (the
    made-up counties set no unit's own), none exempt."""
    types = unit_types()
    return [(u.code, day, u.node, types[u.unit_type].cutoff, False) for u in units]


def county_registry(county: str, towns: int = 3, villages: int = 3) -> tuple[list, list[Unit]]:
    """A made-up county under city county[:4]: towns with villages, units at every level."""
    types = unit_types()
    nodes = [(county[:4], f"测试市{county[:4]}"), (county, f"测试县{county}")]
    units = [Unit(f"{county}-HOSP", county, "hospital", types["hospital"].sector)]
    for t in range(1, towns + 1):
        town = f"{county}{t:03d}"
        nodes.append((town, f"测试镇{town}"))
        units += [Unit(f"{town}-HC", town, "township_health_centre", "health"),
                  Unit(f"{town}-PS", town, "primary_school", "education")]
        for v in range(1, villages + 1):
            village = f"{town}{v:03d}"
            nodes.append((village, f"测试村{village}"))
            units += [Unit(f"{village}-VC", village, "village_committee", "civil_affairs"),
                      Unit(f"{village}-CL", village, "village_clinic", "health"),
                      Unit(f"{village}-KG", village, "kindergarten", "education")]
    return nodes, units


def private_database(server_url: str, counties: list[str]) -> str:
    """A fresh, migrated database on the session's server with the demo county and the given
    made-up counties in its registry."""
    url = make_url(server_url)
    name = f"rollcall_agg_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(create())
    database_url = url.set(database=name).render_as_string(hide_password=False)
    upgrade(database_url)

    async def load() -> None:
        engine = make_engine(database_url, pool_size=1)
        async with make_sessionmaker(engine)() as session, session.begin():
            await load_demo(session)
            for county in counties:
                nodes, units = county_registry(county)
                await store.upsert_nodes(session, nodes)
                await store.upsert_units(session, [
                    {"code": u.code, "name": f"单位{u.code}", "unit_type": u.unit_type,
                     "sector": u.sector, "node": u.node} for u in units], REGISTERED_FROM)
        await engine.dispose()

    asyncio.run(load())
    return database_url


def report(unit: Unit, day: date, revision: int = 1, values: dict | None = None,
           late: bool = False, node: str | None = None) -> ReportAccepted:
    values = values or {}
    return ReportAccepted(
        report_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{unit.code}/{day}/{revision}"),
        unit=unit.code, node=node or unit.node, unit_type=unit.unit_type, sector=unit.sector,
        day=day, revision=revision, values=values, zero=all(v == 0 for v in values.values()),
        late=late, submitted_at=datetime(2021, 1, 1, 8, tzinfo=UTC) + timedelta(minutes=revision),
        reporter="test", reason=None if revision == 1 else "更正")


def random_reports(units: list[Unit], day: date, rng: random.Random,
                   corrections: float = 0.3) -> list[ReportAccepted]:
    """Every unit reports (some zero, some late); some correct once or twice."""
    out = []
    for unit in units:
        for revision in range(1, 2 + (rng.random() < corrections) + (rng.random() < 0.1)):
            values = {} if rng.random() < 0.3 else {
                "fever": rng.randint(0, 5), "ili": rng.randint(0, 3),
                "nat_tests": rng.randint(5, 20), "nat_positive": rng.randint(0, 5),
                "max_temperature": rng.choice([36.5, 37.4, 38.2, 39.6]),
                "supply_days": rng.randint(1, 30)}
            out.append(report(unit, day, revision, values, late=rng.random() < 0.2))
    return out


async def publish(js, events: list[ReportAccepted]) -> None:
    """As ingest's relay publishes: subject with the hierarchy, Nats-Msg-Id for dedup."""
    await asyncio.gather(*(js.publish(e.subject, e.model_dump_json().encode(),
                                      headers={"Nats-Msg-Id": e.msg_id}) for e in events))


LEDGER = text("""
    INSERT INTO ingest.reports (report_id, unit_code, day, revision, node_code, values, zero,
                                late, submitted_at, reporter, reason)
    VALUES (:report_id, :unit, :day, :revision, :node, CAST(:values AS jsonb), :zero, :late,
            :submitted_at, :reporter, :reason)
    ON CONFLICT DO NOTHING
""")


async def record_ledger(sessions, events: list[ReportAccepted]) -> None:
    """The ledger rows ingest would have written for these events (reconcile reads them)."""
    async with sessions() as session, session.begin():
        await session.execute(LEDGER, [
            {"report_id": e.report_id, "unit": e.unit, "day": e.day, "revision": e.revision,
             "node": e.node, "values": json.dumps(e.values), "zero": e.zero, "late": e.late,
             "submitted_at": e.submitted_at, "reporter": e.reporter, "reason": e.reason}
            for e in events])


async def drained(js, durable: str, within: float = 60.0) -> bool:
    """The durable consumer has delivered everything and every delivery was acknowledged
    (which aggregate does after its transaction committed)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            info = await js.consumer_info("REPORTS", durable)
        except NotFoundError:  # not created yet
            await asyncio.sleep(0.2)
            continue
        if info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq:
            return True
        await asyncio.sleep(0.2)
    return False
