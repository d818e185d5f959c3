"""Fixtures for the ingest tests: a test county of synthetic units beside the demo county, and
helpers to read what reached the streams."""

import asyncio
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import nats
import pytest
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig

from rollcall.reference import announce
from shared.db import make_engine, make_sessionmaker
from shared.registry import store
from tests.conftest import Servers, issue_token

ZONE = ZoneInfo("Asia/Shanghai")
COUNTY = "430699"  # not a real county of 岳阳市: the tests' own, so the demo rollups stay small
TOWN = f"{COUNTY}100"
VILLAGES = [f"{TOWN}{i:03d}" for i in range(1, 6)]
UNITS_PER_VILLAGE = 250  # 1,250 units x 8 open days = 10,000 distinct reports


def today() -> date:
    return datetime.now(ZONE).date()


@dataclass(frozen=True)
class SyntheticCounty:
    county: str
    units: list[str]
    token: str
    inactive_unit: str  # active only from next year

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def _load(servers: Servers, units: list[dict]) -> None:
    engine = make_engine(servers.database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await store.upsert_nodes(session, [(COUNTY, "测试县"), (TOWN, "测试镇")]
                                     + [(v, f"测试{i}村") for i, v in enumerate(VILLAGES, 1)])
            await store.upsert_units(session, units)
    finally:
        await engine.dispose()
    await announce(servers.nats_url, ["nodes", "units"])


@pytest.fixture(scope="session")
def test_county(servers: Servers, system: dict) -> SyntheticCounty:
    """1,250 synthetic village clinics in county 430699, known to the running ingest."""
    units = [{"code": f"{v}-T{i:03d}", "name": f"测试卫生室 {v}-{i}",
              "unit_type": "village_clinic", "sector": "health", "node": v}
             for v in VILLAGES for i in range(UNITS_PER_VILLAGE)]
    inactive = {"code": f"{VILLAGES[0]}-LATER", "name": "明年启用的诊所",
                "unit_type": "private_clinic", "sector": "health", "node": VILLAGES[0],
                "active_from": date(today().year + 1, 1, 1)}
    asyncio.run(_load(servers, [*units, inactive]))
    token = issue_token(servers, "operator", COUNTY, "测试县指挥部")
    county = SyntheticCounty(COUNTY, [u["code"] for u in units], token, inactive["code"])
    # Ingest reloads its reference data on registry.changed: wait until it knows the units.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        seen = httpx.get(f"{system['ingest']}/v1/units/{units[-1]['code']}/reports",
                         headers=county.auth, timeout=10)
        if seen.status_code == 200:
            return county
        time.sleep(0.2)
    raise TimeoutError("ingest did not load the test county")


def open_days() -> list[date]:
    """The days a unit may still write: today and the seven before (ROLLCALL_LOCK_DAYS=7)."""
    return [today() - timedelta(days=n) for n in range(8)]


async def stream_messages(nats_url: str, stream: str, subject: str,
                          fetch_timeout_s: float = 2.0) -> list[Msg]:
    """Every message a stream holds on a subject, read with a throwaway consumer."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        info = await js.stream_info(stream, subjects_filter=subject)
        want = sum((info.state.subjects or {}).values())
        if want == 0:
            return []
        # Unacknowledged: an explicit-ack consumer would stop at its 1,000 pending messages.
        sub = await js.pull_subscribe(subject, stream=stream,
                                      config=ConsumerConfig(ack_policy=AckPolicy.NONE))
        out: list = []
        while len(out) < want:
            try:
                out += await sub.fetch(min(want - len(out), 1000), timeout=fetch_timeout_s)
            except TimeoutError:
                break
        await sub.unsubscribe()
        return out
    finally:
        await connection.close()


async def subject_counts(nats_url: str, stream: str, subject: str) -> dict[str, int]:
    connection = await nats.connect(nats_url)
    try:
        info = await connection.jetstream().stream_info(stream, subjects_filter=subject)
        return dict(info.state.subjects or {})
    finally:
        await connection.close()


@pytest.fixture
def own_system(tmp_path):
    """NATS, PostgreSQL and the three services of a test's own, to break at will
    (tests/integration/faults.py)."""
    from tests.integration.faults import System

    system = System.start(tmp_path)
    try:
        yield system
    finally:
        system.stop()
