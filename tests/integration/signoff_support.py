"""Ingest and signoff running in process, through their lifespans, on real NATS and PostgreSQL
with one clock the test moves: a unit reports and corrects through ingest's API, the reports
reach signoff over the REPORTS stream, and signoff's events reach ingest over SIGNOFF. One
database for the module (migrated, with the demo county), one day per test."""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import httpx

from rollcall.migrate import upgrade
from rollcall.reference import load_demo
from services.ingest.app import create_app as ingest_app
from services.signoff.app import create_app as signoff_app
from services.signoff.service import SignoffContext
from shared.db import make_engine, make_sessionmaker
from shared.settings import Settings
from tests.conftest import Servers, _fresh_database
from tests.integration.alerts_harness import FakeClock, issue_operator, issue_unit, local

TOWN, OTHER_TOWN, COUNTY = "430621108", "430621109", "430621"
CLINIC = "430621108001-CL"  # 公田镇长源社区卫生服务站
CLINIC_2 = "430621108002-CL"  # 公田镇杨冲社区卫生服务站
CLINIC_OTHER_TOWN = "430621109001-CL"  # 毛田镇下塘社区卫生服务站


def signoff_database(servers: Servers) -> str:
    url = _fresh_database(servers.database_url)
    upgrade(url)

    async def load() -> None:
        engine = make_engine(url, pool_size=1)
        async with make_sessionmaker(engine)() as session, session.begin():
            await load_demo(session)
        await engine.dispose()

    asyncio.run(load())
    return url


@dataclass
class Desk:
    """The two services' HTTP clients, the clock, and tokens of the people at work."""

    ingest: httpx.AsyncClient
    signoff: httpx.AsyncClient
    clock: FakeClock
    database_url: str
    ctx: SignoffContext  # signoff's use cases, as its consumer runs them

    async def operator(self, node: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await issue_operator(self.database_url, node)}"}

    async def unit(self, unit: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {await issue_unit(self.database_url, unit)}"}

    async def report(self, who: dict, unit: str, day: date, values: dict) -> dict:
        answer = await self.ingest.post("/v1/reports", headers=who, json={
            "unit": unit, "day": day.isoformat(), "reporter": "信息员", "values": values})
        assert answer.status_code == 201, answer.text
        return answer.json()

    async def correct(self, who: dict, unit: str, day: date, values: dict, reason: str) -> dict:
        answer = await self.ingest.post(
            f"/v1/reports/{unit}/{day.isoformat()}/corrections", headers=who,
            json={"values": values, "reporter": "信息员", "reason": reason})
        assert answer.status_code == 201, answer.text
        return answer.json()


@contextlib.asynccontextmanager
async def desk(servers: Servers, database_url: str, day: date,
               **settings: object) -> AsyncIterator[Desk]:
    clock = FakeClock(local(day, 9))
    config = Settings(nats_url=servers.nats_url, database_url=database_url,
                      signoff_durable=f"signoff-it-{uuid.uuid4().hex[:8]}", auth_cache_s=0,
                      ingest_signoff_durable=f"ingest-signoff-it-{uuid.uuid4().hex[:8]}",
                      **settings)  # type: ignore[arg-type]
    ingest, signoff = ingest_app(config, clock=clock), signoff_app(config, clock=clock)
    async with ingest.router.lifespan_context(ingest), \
            signoff.router.lifespan_context(signoff), \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=ingest),
                              base_url="http://ingest") as i, \
            httpx.AsyncClient(transport=httpx.ASGITransport(app=signoff),
                              base_url="http://signoff") as s:
        yield Desk(i, s, clock, database_url, signoff.state.signoff)
