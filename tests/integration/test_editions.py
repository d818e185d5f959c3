"""Scheduled editions on real NATS and PostgreSQL, with two console replicas running side by side
on one clock that the test moves: nothing before the scheduled minute; at it, the town's
summary is made once (not once per replica), kept, downloadable byte for byte, and announced
once on `edition.published.<node>`; the village's later schedule is made at its own time."""

import asyncio
import hashlib
import io
import json
import time as clock_time
from datetime import UTC, datetime, time

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import text

from services.console.app import create_app
from shared.contracts import EditionPublished
from shared.db import make_engine
from shared.settings import EditionSchedule
from shared.streams import EDITIONS
from tests.conftest import eventually, issue_token
from tests.integration.conftest import stream_messages, subject_counts
from tests.integration.summary_support import TOWN, VILLAGE, ZONE, send_town_reports, today


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def local(self, hour: int, minute: int, second: int = 0) -> None:
        self.now = datetime.combine(today(), time(hour, minute, second), ZONE).astimezone(UTC)


def stored(servers, node: str) -> list[tuple]:
    async def run() -> list[tuple]:
        engine = make_engine(servers.database_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                return list(await conn.execute(text(
                    "SELECT edition_id, day, scheduled, sha256 FROM console.editions "
                    "WHERE node = :node"), {"node": node}))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def replicas(servers, system, auth):
    send_town_reports(system, auth)
    token = issue_token(servers, "operator", TOWN, "月田镇定时日报")
    clock = Clock(datetime.now(UTC))
    clock.local(14, 29, 59)
    settings = servers.settings(
        console_ingest_url=system["ingest"], console_aggregate_url=system["aggregate"],
        console_alerts_url=system["alerts"], console_notify_url=system["notify"],
        editions=[EditionSchedule(node=TOWN, at=time(14, 30)),
                  EditionSchedule(node=VILLAGE, at=time(15, 0))],
        editions_token=token, editions_poll_s=0.05)
    with TestClient(create_app(settings, clock=clock), headers=auth) as a, \
            TestClient(create_app(settings, clock=clock), headers=auth) as b:
        yield clock, a, b


def test_an_edition_is_made_once_at_its_time_whatever_the_replicas(replicas, servers):
    clock, a, b = replicas
    clock_time.sleep(0.5)  # both replicas look ten times: nothing is due yet
    assert stored(servers, TOWN) == [] and stored(servers, VILLAGE) == []

    clock.local(14, 30)
    assert eventually(lambda: stored(servers, TOWN), timeout=30)
    clock_time.sleep(1)  # both look again, many times
    (edition_id, day, scheduled, sha256), = stored(servers, TOWN)
    assert (day, scheduled) == (today(), time(14, 30))
    assert stored(servers, VILLAGE) == []  # its time is 15:00

    # Announced once, through the outbox, with where to fetch it and what it holds.
    subject = f"edition.published.{TOWN}"
    assert eventually(lambda: asyncio.run(subject_counts(servers.nats_url, EDITIONS, subject)),
                      timeout=15) == {subject: 1}
    message, = asyncio.run(stream_messages(servers.nats_url, EDITIONS, subject))
    event = EditionPublished.model_validate(json.loads(message.data))
    assert (event.edition_id, event.node, event.day, event.sha256) == (
        edition_id, TOWN, today(), sha256)
    assert event.title == "月田镇疫情防控日报"

    # Either replica serves it, byte for byte as it was made.
    for replica in (a, b):
        got = replica.get(event.download)
        assert got.status_code == 200, got.text
        assert hashlib.sha256(got.content).hexdigest() == event.sha256
        assert len(got.content) == event.size
    ws = load_workbook(io.BytesIO(a.get(event.download).content)).worksheets[0]
    table = [list(r) for r in ws.iter_rows(values_only=True)]
    assert table[0][0] == "月田镇疫情防控日报"
    assert [v for v in table[-1] if v] == ["填报人：", "审核人：", f"填报时间：{today()} 14:30",
                                           "盖章："]
    listed = b.get("/api/editions", params={"node": TOWN}).json()
    assert [e["edition_id"] for e in listed] == [str(edition_id)]

    # The village's edition at 15:00, once as well.
    clock.local(15, 0, 1)
    assert eventually(lambda: stored(servers, VILLAGE), timeout=30)
    clock_time.sleep(0.5)
    assert len(stored(servers, VILLAGE)) == 1 and len(stored(servers, TOWN)) == 1
    subject = f"edition.published.{VILLAGE}"
    assert eventually(lambda: asyncio.run(subject_counts(servers.nats_url, EDITIONS, subject)),
                      timeout=15) == {subject: 1}
    assert len(a.get("/api/editions", params={"node": TOWN}).json()) == 2


def test_an_edition_is_read_only_inside_the_area(replicas, servers):
    _, a, _ = replicas
    other = issue_token(servers, "operator", "430621108", "公田镇值班")
    listed = a.get("/api/editions", params={"node": TOWN}).json()
    assert listed
    refused = a.get(listed[0]["download"], headers={"Authorization": f"Bearer {other}"})
    assert refused.status_code == 403
    missing = a.get("/api/editions/00000000-0000-0000-0000-000000000000/xlsx")
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["field"] == "edition_id"


def test_a_token_that_does_not_reach_a_scheduled_node_stops_the_console(servers, system):
    token = issue_token(servers, "operator", "430621108", "公田镇值班")
    settings = servers.settings(editions=[EditionSchedule(node=TOWN, at=time(14, 30))],
                                editions_token=token, editions_poll_s=0)
    with pytest.raises(RuntimeError, match=TOWN), TestClient(create_app(settings)):
        pass


def test_an_edition_that_could_not_be_made_is_made_at_a_later_look(servers, system, auth):
    """Aggregate unreachable at 16:00: nothing is kept or announced (no half edition); a
    console that can reach it makes it at its next look, once."""
    send_town_reports(system, auth)
    village = f"{TOWN}002"
    token = issue_token(servers, "operator", TOWN, "月田镇定时日报")
    clock = Clock(datetime.now(UTC))
    clock.local(16, 0)
    common = dict(console_ingest_url=system["ingest"], console_alerts_url=system["alerts"],
                  console_notify_url=system["notify"],
                  editions=[EditionSchedule(node=village, at=time(16, 0))],
                  editions_token=token, editions_poll_s=0.05)
    down = servers.settings(console_aggregate_url="http://127.0.0.1:9", **common)
    with TestClient(create_app(down, clock=clock)):
        clock_time.sleep(1)  # twenty looks, each refused
    assert stored(servers, village) == []
    subject = f"edition.published.{village}"
    assert asyncio.run(subject_counts(servers.nats_url, EDITIONS, subject)) == {}
    up = servers.settings(console_aggregate_url=system["aggregate"], **common)
    with TestClient(create_app(up, clock=clock)):
        assert eventually(lambda: stored(servers, village), timeout=30)
        assert eventually(lambda: asyncio.run(
            subject_counts(servers.nats_url, EDITIONS, subject)), timeout=15) == {subject: 1}
    assert len(stored(servers, village)) == 1
