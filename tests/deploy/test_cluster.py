"""docker-compose.yml with deploy/compose.cluster.yml, run natively on one machine: three NATS
nodes from cluster.conf (with the deployment's users), streams replicated three times, two
aggregate and two alerts replicas, and notify. Reports keep flowing, exactly counted, when a
node is lost."""

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx
import nats
import nats.errors
import nats.js.errors
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rollcall.embedded import free_port
from shared.contracts import ReportAccepted
from shared.registry import demo
from tests.conftest import Servers, eventually, issue_token
from tests.deploy.compose import CLUSTER, COMPOSE
from tests.deploy.native import Deployment, prepare

NODES = ("nats", "nats-2", "nats-3")
COUNTY = "430621"
REPLICAS = {"ingest": "ingest", "aggregate-1": "aggregate", "aggregate-2": "aggregate",
            "alerts-1": "alerts", "alerts-2": "alerts", "notify": "notify"}


@pytest.fixture(scope="module")
def cluster(servers, tmp_path_factory) -> Deployment:
    deployment = prepare([COMPOSE, CLUSTER], servers.database_url,
                         tmp_path_factory.mktemp("cluster"))
    try:
        routes = {host: free_port() for host in NODES}
        for host in NODES:
            deployment.start_nats(host, routes)
        for host in NODES:  # compose's healthcheck: healthy once JetStream has its meta leader
            url = deployment.nats_healthcheck_url(host)
            assert eventually(lambda url=url: httpx.get(url).status_code == 200, timeout=60,
                              interval=0.5), f"{host} not healthy"
        migrated = deployment.run_once("migrate")
        assert migrated.returncode == 0, migrated.stderr
        for name, service in REPLICAS.items():
            deployment.start(service, name)
        for name in REPLICAS:
            deployment.wait_healthy(deployment.services[name])
        loaded = deployment.run_once("tools", "demo")
        assert loaded.returncode == 0, loaded.stderr
        yield deployment
    finally:
        deployment.stop()


def test_streams_are_replicated_on_three_nodes(cluster: Deployment) -> None:
    async def info():
        connection = await nats.connect(cluster.nats_url("admin", "nats-2"))
        try:
            return await connection.jetstream().stream_info("REPORTS")
        finally:
            await connection.close()

    stream = asyncio.run(info())
    assert stream.config.num_replicas == 3
    assert stream.cluster is not None and len(stream.cluster.replicas or []) == 2


def _event(unit: dict, day: date) -> ReportAccepted:
    return ReportAccepted(
        report_id=uuid.uuid5(uuid.NAMESPACE_URL, f"cluster/{unit['code']}/{day}"),
        unit=unit["code"], node=unit["node"], unit_type=unit["unit_type"],
        sector=unit["sector"], day=day, revision=1, values={"fever": 1}, zero=False, late=False,
        submitted_at=datetime(2020, 1, 1, tzinfo=UTC), reporter="cluster-test")


async def _fever_total(database_url: str, first: date, last: date) -> float:
    conn = await asyncpg.connect(database_url)
    try:
        return float(await conn.fetchval(
            "SELECT coalesce(sum(value), 0) FROM aggregate.rollups WHERE node_code = $1 "
            "AND metric = 'fever' AND day BETWEEN $2 AND $3", COUNTY, first, last))
    finally:
        await conn.close()


def _applied(cluster: Deployment, name: str) -> float:
    text = httpx.get(f"{cluster.services[name].url}/metrics", timeout=10).text
    return next(s.value for f in text_string_to_metric_families(text)
                if f.name == "rollcall_rollup_events" for s in f.samples
                if s.name.endswith("_total"))


def test_losing_a_node_loses_no_report(cluster: Deployment) -> None:
    """A NATS node dies (SIGKILL); ingest goes on publishing through the others, the two
    aggregate replicas share the durable consumer, and the county's total is exact."""
    ingest = cluster.services["ingest"].url
    today = datetime.now(UTC).date().isoformat()
    database_url = cluster.database_url.replace("postgresql://", "postgresql+asyncpg://", 1)
    token = issue_token(Servers("", database_url), "operator", "430621", "县指挥部值班")

    def submit() -> httpx.Response | None:
        response = httpx.post(f"{ingest}/v1/reports", timeout=10,
                              headers={"Authorization": f"Bearer {token}"}, json={
            "unit": "430621108001-CL", "day": today, "reporter": "王医生",
            "values": {"fever": 1}})
        return None if "unknown_unit" in response.text else response

    assert eventually(submit, timeout=30, interval=0.5).status_code == 201

    lost = cluster.nats["nats-3"].process
    assert lost.proc is not None
    lost.proc.kill()
    lost.proc.wait(30)

    units = [u for u in demo.units() if u["node"].startswith(COUNTY)]
    first = date(2002, 3, 1)
    days = [first + timedelta(days=i) for i in range(max(1, 3000 // len(units)))]
    events = [_event(unit, day) for day in days for unit in units]

    async def publish() -> None:
        connection = await nats.connect(cluster.nats_url("ingest", "nats"))
        js = connection.jetstream()

        async def one(event: ReportAccepted) -> None:
            # As ingest's outbox relay does: until the streams have elected new leaders, a
            # publish finds no responder; it is retried, and the message id keeps it single.
            for _ in range(60):
                try:
                    await js.publish(event.subject, event.model_dump_json().encode(),
                                     headers={"Nats-Msg-Id": event.msg_id}, timeout=5)
                    return
                except (nats.errors.NoRespondersError, nats.errors.TimeoutError,
                        nats.js.errors.NoStreamResponseError):
                    await asyncio.sleep(0.5)
            raise AssertionError(f"{event.msg_id} not accepted by the stream")

        try:
            for i in range(0, len(events), 200):
                await asyncio.gather(*(one(e) for e in events[i:i + 200]))
        finally:
            await connection.close()

    asyncio.run(publish())
    assert eventually(lambda: asyncio.run(_fever_total(cluster.database_url, first, days[-1]))
                      >= len(events), timeout=120, interval=0.5)
    assert asyncio.run(_fever_total(cluster.database_url, first, days[-1])) == len(events)
    shares = {name: _applied(cluster, name) for name in ("aggregate-1", "aggregate-2")}
    assert sum(shares.values()) >= len(events)
    print(f"aggregate replicas applied {shares} of {len(events)} events")
    # Replicas that were connected to the lost node have reconnected to the others.
    for name in REPLICAS:
        url = f"{cluster.services[name].url}/readyz"
        assert eventually(lambda url=url: httpx.get(url).json() == {"nats": "ok",
                                                                     "database": "ok"},
                          timeout=30), name
