"""Backpressure: PostgreSQL down, or hung, under load.

Ingest's transactional outbox means it cannot accept a report without the database, so over
HTTP it refuses clearly: 503 with Retry-After and the reason (`database_unavailable`, or
`auth_unavailable` when the token must be checked), at once, never a 500 and never a hang, and
its memory stays flat however many requests it refuses. Over the bus nothing is refused:
submissions wait in the SUBMISSIONS work-queue stream until ingest can commit them, and events
already in REPORTS and CASES wait for aggregate and alerts, whose failed batches are handed back
rather than dropped. When PostgreSQL returns, every consumer resumes where it stopped: refused
requests sent again, the waiting submissions and the events are all counted exactly once."""

import asyncio
import collections
import json
import os
import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import nats

from shared.contracts import CASE_SUBMIT, REPORT_SUBMIT, CaseReported
from shared.registry import demo
from tests.conftest import eventually
from tests.integration.conftest import ZONE
from tests.integration.faults import (
    DB_TIMEOUT_S,
    UNITS,
    Load,
    System,
    Tally,
    check_exactly_once,
    county_token,
    rss_mb,
)

DOWN_S = 12.0
CLIENTS = 8
PER_CLIENT_PER_S = 25


def _bulk(ingest: str, token: str, bodies: list[dict], tally: Tally) -> None:
    response = httpx.post(f"{ingest}/v1/reports/bulk", json=bodies, timeout=120,
                          headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text[:500]
    for body, result in zip(bodies, response.json()["results"], strict=True):
        # A duplicate: a request whose answer timed out had committed after all.
        assert result["status"] in ("accepted", "duplicate"), result
        tally.accepted[(body["unit"], body["day"])] = body["values"]["fever"]


async def _hammer(ingest: str, token: str, bodies: list[dict], answers: list,
                  seconds: float = DOWN_S) -> None:
    """For `seconds`, CLIENTS clients each send a report at a time, at most PER_CLIENT_PER_S
    a second; every answer is kept with how long it took."""
    queue = list(reversed(bodies))
    deadline = time.monotonic() + seconds

    async def client(http: httpx.AsyncClient) -> None:
        while queue and time.monotonic() < deadline:
            body = queue.pop()
            started = time.monotonic()
            try:
                response = await http.post(f"{ingest}/v1/reports", json=body, headers={
                    "Authorization": f"Bearer {token}"})
                json_body = response.headers.get("content-type", "").startswith(
                    "application/json")
                answers.append((body, response.status_code, time.monotonic() - started,
                                response.headers.get("Retry-After"),
                                response.json() if json_body else {"text": response.text}))
            except httpx.HTTPError as exc:  # a hang shows as a timeout here
                answers.append((body, type(exc).__name__, time.monotonic() - started, None, {}))
            await asyncio.sleep(max(0.0, 1 / PER_CLIENT_PER_S - (time.monotonic() - started)))

    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(client(http) for _ in range(CLIENTS)))


async def _publish_while_down(nats_url: str, token: str, reports: list[dict],
                              cases: list[dict], events: list[CaseReported]) -> None:
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        auth = {"Authorization": f"Bearer {token}"}
        for body in reports:
            ack = await js.publish(REPORT_SUBMIT, json.dumps(body).encode(), headers=auth)
            assert ack.stream == "SUBMISSIONS"
        for body in cases:
            ack = await js.publish(CASE_SUBMIT, json.dumps(body).encode(), headers=auth)
            assert ack.stream == "SUBMISSIONS"
        # As if ingest had relayed them just before the database went: alerts must wait. A
        # malformed one among them is dropped alone, never handed back with the batch.
        for i, event in enumerate(events):
            ack = await js.publish(event.subject, event.model_dump_json().encode(),
                                   headers={"Nats-Msg-Id": event.msg_id})
            assert ack.stream == "CASES"
            if i == len(events) // 2:
                ack = await js.publish(event.subject, b'{"case_id": "not a case"}')
                assert ack.stream == "CASES"
    finally:
        await connection.close()


def _case_body(i: int) -> dict:
    case_id = str(uuid.uuid4())
    return {"unit": UNITS[i], "kind": "fever", "temperature": 38.2, "case_id": case_id,
            "person_ref": f"P-bp-{i}",
            "found_at": (datetime.now(ZONE) - timedelta(minutes=2)).isoformat()}


def _case_event(i: int) -> CaseReported:
    unit = next(u for u in demo.units() if u["code"] == UNITS[-1 - i])
    now = datetime.now(UTC)
    return CaseReported(case_id=uuid.uuid4(), unit=unit["code"], node=unit["node"],
                        unit_type=unit["unit_type"], sector=unit["sector"], kind="fever",
                        found_at=now - timedelta(minutes=3), received_at=now, temperature=39.0,
                        person_ref=f"P-bp-direct-{i}", late=False)


def test_postgres_down_under_load(own_system: System) -> None:
    system = own_system
    token = county_token(system)
    ingest = system.url("ingest")
    load = Load(system, token, rate=1)  # only its keys and bodies: no thread
    bodies = [Load._body(u, d, "backpressure") for u, d in load._take(4000)]
    before, over_http, over_bus = bodies[:2000], bodies[2000:3700], bodies[3700:]
    tally = Tally()

    # A backlog in flight when the database goes: aggregate and alerts are mid-stream.
    _bulk(ingest, token, before[:1000], tally)
    _bulk(ingest, token, before[1000:], tally)
    system.postgres.stop()
    down_at = time.monotonic()

    samples: list[tuple[float, float]] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.is_set():
            samples.append((time.monotonic() - down_at, rss_mb(system.pid("ingest"))))
            time.sleep(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    answers: list = []
    cases = [_case_body(i) for i in range(5)]
    events = [_case_event(i) for i in range(5)]
    try:
        asyncio.run(_publish_while_down(system.servers.nats_url, token, over_bus, cases,
                                        events))
        for body in over_bus:
            tally.accepted[(body["unit"], body["day"])] = body["values"]["fever"]
        tally.cases.update([c["case_id"] for c in cases] + [str(e.case_id) for e in events])
        asyncio.run(_hammer(ingest, token, over_http, answers))
    finally:
        sampling.set()
        sampler.join(5)
    down_for = time.monotonic() - down_at

    statuses = collections.Counter(a[1] for a in answers)
    assert set(statuses) == {503}, f"only 503 while the database is down: {statuses}"
    codes = {a[4]["errors"][0]["code"] for a in answers}
    assert codes <= {"database_unavailable", "auth_unavailable"}, codes
    assert all(a[3] for a in answers), "every 503 says when to retry"
    slowest = max(a[2] for a in answers)
    assert slowest < 5, f"a refusal took {slowest:.1f} s"
    steady = [mb for t, mb in samples if t >= 2]
    thirds = len(steady) // 3
    first, last = max(steady[:thirds]), max(steady[-thirds:])
    assert max(steady) - steady[0] < 64 and last - first < 16, \
        f"ingest's memory grew while refusing: {samples[::8]}"

    system.postgres.start()
    up_at = time.monotonic()
    assert eventually(system.all_ready, timeout=60, interval=0.2)
    ready_after = time.monotonic() - up_at

    # Refused means not stored: the same requests again, now accepted once each.
    refused = [a[0] for a in answers]
    for i in range(0, len(refused), 500):
        _bulk(ingest, token, refused[i:i + 500], tally)
    settled = check_exactly_once(system, tally, patience_s=120)

    print(f"\nbackpressure: PostgreSQL down {down_for:.1f} s under {len(answers) / DOWN_S:.0f} "
          f"HTTP reports/s: {len(answers)} refused with 503 + Retry-After "
          f"(codes {sorted(codes)}), slowest answer {slowest * 1000:.0f} ms, none 500 or hung; "
          f"{len(over_bus)} reports and {len(cases)} cases waited in SUBMISSIONS, "
          f"{len(events)} cases in CASES")
    print(f"  ingest RSS while down: {steady[0]:.0f} MB at 2 s, max {max(steady):.0f} MB, "
          f"{last:.0f} MB in the last third ({len(samples)} samples)")
    print(f"  back to ready {ready_after:.1f} s after PostgreSQL started; the {len(refused)} "
          f"refused sent again; all {len(tally.accepted)} reports and {len(tally.cases)} "
          f"cases applied exactly once {settled:.1f} s later")


def test_postgres_hung_under_load(own_system: System) -> None:
    """PostgreSQL frozen (SIGSTOP: connections open, nothing answers), the hardest case for
    "never a hang": ingest's own timeouts end each request with 503 within a bound."""
    system = own_system
    token = county_token(system)
    ingest = system.url("ingest")
    load = Load(system, token, rate=1)
    bodies = [Load._body(u, d, "hung") for u, d in load._take(1500)]
    tally = Tally()
    _bulk(ingest, token, bodies[:500], tally)
    group = os.getpgid(system.postgres.proc.pid)  # the server and its backends
    os.killpg(group, signal.SIGSTOP)
    answers: list = []
    try:
        asyncio.run(_hammer(ingest, token, bodies[500:], answers, seconds=3 * DB_TIMEOUT_S))
    finally:
        os.killpg(group, signal.SIGCONT)
    statuses = collections.Counter(a[1] for a in answers)
    assert set(statuses) <= {503, 201}, f"503 (or accepted before the freeze): {statuses}"
    refused = [a for a in answers if a[1] == 503]
    assert refused and all(a[3] for a in refused)
    slowest = max(a[2] for a in refused)
    assert slowest < 4 * DB_TIMEOUT_S, f"a refusal took {slowest:.1f} s"
    for body, status, *_ in answers:
        if status == 201:
            tally.accepted[(body["unit"], body["day"])] = body["values"]["fever"]

    assert eventually(system.all_ready, timeout=60, interval=0.2)
    again = [a[0] for a in refused]
    for i in range(0, len(again), 500):
        _bulk(ingest, token, again[i:i + 500], tally)
    check_exactly_once(system, tally, patience_s=120)
    print(f"\nPostgreSQL hung {3 * DB_TIMEOUT_S:.0f} s: {statuses[503]} requests refused with "
          f"503 + Retry-After, slowest {slowest:.1f} s (ingest's database timeout "
          f"{DB_TIMEOUT_S:.0f} s), none hung; all sent again and counted exactly once")
