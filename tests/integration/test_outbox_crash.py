"""Accepted means stored and published, exactly once, whatever crashes in between.

On servers of its own (a fresh NATS and database), ingest runs as production runs it and is
killed with SIGKILL twice: once after committing reports but before publishing them (the relay
held back by a test hook), and once after publishing them but before deleting them from the
outbox. Bus submissions published while ingest is down wait in the SUBMISSIONS stream. When
ingest runs normally again, every report is in the stream exactly once and counted exactly once
in the rollup."""

import asyncio
import collections
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from rollcall.embedded import EmbeddedNats, free_port
from rollcall.migrate import upgrade
from rollcall.reference import load_demo_and_announce
from shared.contracts import CASE_SUBMIT, REPORT_SUBMIT, reports_of
from shared.registry import demo
from tests.conftest import Servers, _fresh_database, eventually, issue_token, start_service
from tests.integration.conftest import ZONE, stream_messages, today
from tests.integration.faults import publish_to_bus, scalar

UNITS = [u["code"] for u in demo.units()]
# Submissions the killed ingest had taken come again after the consumer's ack wait.
QUICK_REDELIVERY = {"ROLLCALL_SUBMIT_ACK_WAIT_S": "3"}


@pytest.fixture(scope="module")
def own_servers(servers: Servers, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[Servers]:
    """A NATS server and a database of this test's own: no other ingest drains the outbox."""
    nats_server = EmbeddedNats(tmp_path_factory.mktemp("crash-nats"))
    nats_url = nats_server.start()
    try:
        database_url = _fresh_database(servers.database_url)
        upgrade(database_url)
        asyncio.run(load_demo_and_announce(database_url, nats_url))
        yield Servers(nats_url, database_url)
    finally:
        nats_server.stop()


def minutes_ago(minutes: int) -> str:
    return (datetime.now(ZONE) - timedelta(minutes=minutes)).isoformat()


def outbox_depth(servers: Servers) -> int:
    """The events the outbox holds: a v2 message of accepted reports carries several."""
    return asyncio.run(scalar(servers.database_url, """
        SELECT coalesce(sum(CASE WHEN e ? 'version' THEN jsonb_array_length(e -> 'reports')
                                 ELSE 1 END), 0)
        FROM (SELECT CAST(convert_from(payload, 'UTF8') AS jsonb) AS e FROM ingest.outbox) o
    """))


def test_a_killed_publisher_loses_nothing_and_duplicates_nothing(
        own_servers: Servers, tmp_path: Path) -> None:
    token = issue_token(own_servers, "operator", "430621", "县指挥部")
    auth = {"Authorization": f"Bearer {token}"}
    day = (today() - timedelta(days=1)).isoformat()
    over_http, while_running, while_down = UNITS[:60], UNITS[60:70], UNITS[70:80]
    aggregate = start_service(own_servers, "aggregate", tmp_path)
    try:
        # 1. Commit, then die before publishing: the relay is held back by a test hook.
        ingest = start_service(own_servers, "ingest", tmp_path, ROLLCALL_RELAY_PAUSED="true",
                               **QUICK_REDELIVERY)
        response = httpx.post(f"{ingest.url}/v1/reports/bulk", headers=auth, timeout=60, json=[
            {"unit": u, "day": day, "reporter": "测", "values": {"fever": 1}}
            for u in over_http])
        assert response.json()["accepted"] == len(over_http), response.text[:1000]
        case = httpx.post(f"{ingest.url}/v1/cases", headers=auth, timeout=30, json={
            "unit": UNITS[0], "kind": "fever", "temperature": 38.0, "person_ref": "P-crash",
            "found_at": minutes_ago(10)})
        assert case.status_code == 201, case.text
        asyncio.run(publish_to_bus(own_servers.nats_url, token, [
            (REPORT_SUBMIT, {"unit": u, "day": day, "reporter": "网关", "values": {"fever": 1}})
            for u in while_running]))
        expected_rows = len(over_http) + 1 + len(while_running)
        assert eventually(lambda: outbox_depth(own_servers) == expected_rows, timeout=30)
        ingest.proc.send_signal(signal.SIGKILL)
        ingest.proc.wait(10)
        in_stream = asyncio.run(stream_messages(own_servers.nats_url, "REPORTS",
                                                "report.accepted.>"))
        assert in_stream == []  # committed, not yet published

        # 2. While ingest is down, gateways keep publishing: the stream keeps the submissions.
        asyncio.run(publish_to_bus(own_servers.nats_url, token, [
            (REPORT_SUBMIT, {"unit": u, "day": day, "reporter": "网关", "values": {"fever": 1}})
            for u in while_down] + [(CASE_SUBMIT, {
                "unit": UNITS[1], "kind": "ili", "symptoms": ["cough"], "person_ref": "P-bus",
                "found_at": minutes_ago(5)})]))

        # 3. Publish, then die before deleting from the outbox.
        port = free_port()
        log = open(tmp_path / "ingest-crashing.log", "wb")
        crashing = subprocess.Popen(
            [sys.executable, "-m", "rollcall", "serve", "ingest", "--port", str(port)],
            env={**own_servers.env(), "ROLLCALL_RELAY_CRASH_AFTER_PUBLISH": "true",
                 **QUICK_REDELIVERY},
            stdout=log, stderr=subprocess.STDOUT)
        assert crashing.wait(60) == -signal.SIGKILL
        published = asyncio.run(stream_messages(own_servers.nats_url, "REPORTS",
                                                "report.accepted.>"))
        assert published, "the crashing relay published before it died"
        # and deleted nothing
        assert outbox_depth(own_servers) >= sum(len(reports_of(m)) for m in published)

        # 4. Run normally: the outbox is published again (the stream drops the repeats) and the
        #    submissions that waited in the stream are handled.
        ingest = start_service(own_servers, "ingest", tmp_path, **QUICK_REDELIVERY)
        try:
            assert eventually(lambda: outbox_depth(own_servers) == 0, timeout=30)
            every_unit = [*over_http, *while_running, *while_down]

            def all_in() -> list:
                messages = asyncio.run(stream_messages(own_servers.nats_url, "REPORTS",
                                                       "report.accepted.>"))
                carried = sum(len(reports_of(m)) for m in messages)
                return messages if carried >= len(every_unit) else []

            messages = eventually(all_in, timeout=60, interval=0.5)
            time.sleep(1.0)  # anything late would show now
            messages = asyncio.run(stream_messages(own_servers.nats_url, "REPORTS",
                                                   "report.accepted.>"))
            keys = collections.Counter(
                (e.unit, e.day.isoformat(), e.revision) for m in messages
                for e in reports_of(m))
            assert keys == {(u, day, 1): 1 for u in every_unit}
            cases = asyncio.run(stream_messages(own_servers.nats_url, "CASES",
                                                "case.reported.>"))
            assert sorted(json.loads(m.data)["person_ref"] for m in cases) == ["P-bus",
                                                                               "P-crash"]

            def counted() -> bool:
                view = httpx.get(f"{aggregate.url}/v1/rollups/430621", params={"day": day},
                                 headers=auth, timeout=30).json()
                return (view["completeness"]["reported"] == len(every_unit)
                        and view["values"].get("fever") == len(every_unit))

            assert eventually(counted, timeout=60, interval=0.5)
            assert asyncio.run(scalar(own_servers.database_url,
                                       "SELECT count(*) FROM ingest.reports")) == len(every_unit)
        finally:
            ingest.stop()
    finally:
        aggregate.stop()
