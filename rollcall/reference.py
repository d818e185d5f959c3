"""Loading reference data and announcing it on the bus, so running services reload it."""

import nats
from sqlalchemy.ext.asyncio import AsyncSession

from shared.bus import connection_options
from shared.clock import utc_now
from shared.contracts import RegistryChanged
from shared.db import make_engine, make_sessionmaker
from shared.registry import demo, store
from shared.streams import ensure_streams_patiently


async def load_demo(session: AsyncSession) -> None:
    await store.upsert_nodes(session, demo.nodes())
    await store.upsert_units(session, demo.units())


async def announce(nats_url: str, what: list[str], replicas: int = 1) -> None:
    connection = await nats.connect(**connection_options(nats_url))
    try:
        js = connection.jetstream()
        await ensure_streams_patiently(js, replicas)  # the deployment's: never shrink a cluster's
        event = RegistryChanged(changed_at=utc_now(), what=what)
        await js.publish(event.subject, event.model_dump_json().encode(),
                         headers={"Nats-Msg-Id": event.msg_id})
    finally:
        await connection.close()


async def load_demo_and_announce(database_url: str, nats_url: str, replicas: int = 1) -> None:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            await load_demo(session)
    finally:
        await engine.dispose()
    await announce(nats_url, ["nodes", "units"], replicas)
