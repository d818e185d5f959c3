"""The bus door fuzzed (hypothesis): arbitrary bytes, JSON and headers published to
`report.submit`, `report.correct` and `case.submit` (and below them) through JetStream, to the
running ingest. Ingest never crashes and never asks for a message again (each is acknowledged
once its outcome is committed); every message with a reply subject is answered; every refusal
is explained (field, code, both languages) and kept: a row in ingest.rejections and a message on
`report.rejected.*` / `case.rejected.*`.

The default run is some 900 messages, the same ones every run; `-m slow` sends over a thousand
more, drawn anew each run."""

import asyncio
import json
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import nats
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.conftest import UNIT, FuzzSystem

ZONE = ZoneInfo("Asia/Shanghai")
SUBJECTS = ["report.submit", "report.correct", "case.submit"]
# Examples; each is a batch of up to 12 messages. The thorough run's are drawn anew each run, so
# runs add up: 300 (not 600) keeps it under half a minute.
QUICK, THOROUGH = 150, 300

token_chars = st.text(st.sampled_from("abcXYZ0123456789-_"), min_size=1, max_size=8)
subject = st.sampled_from(SUBJECTS) | st.builds(
    lambda base, *rest: ".".join([base, *rest]), st.sampled_from(SUBJECTS), token_chars)
anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4), max_leaves=10)


def _today() -> date:
    return datetime.now(ZONE).date()


plausible = st.fixed_dictionaries({}, optional={
    "unit": st.sampled_from([UNIT, "430621108001-VC", "430621-MS1", "430699100001-T000",
                             "", "x" * 40]) | anything,
    "day": st.integers(-10, 2).map(lambda n: (_today() + timedelta(days=n)).isoformat())
    | anything,
    "reporter": st.sampled_from(["网关", "a\x00b", ""]) | anything,
    "reason": st.sampled_from(["改正", ""]) | anything,
    "revision": st.integers(-1, 5) | anything,
    "values": st.dictionaries(st.sampled_from(["fever", "ili", "nat_tests", "max_temperature",
                                               "nope"]), st.integers(-2, 9) | anything,
                              max_size=4) | anything,
    "kind": st.sampled_from(["fever", "ili", "flu"]) | anything,
    "found_at": st.integers(-300, 10).map(
        lambda m: (datetime.now(ZONE) + timedelta(minutes=m)).isoformat()) | anything,
    "temperature": st.floats(35, 42) | anything,
    "symptoms": st.lists(st.sampled_from(["cough", "sore_throat", "??"]), max_size=3)
    | anything,
    "person_ref": st.sampled_from(["P-1", "", "王五"]) | anything,
    "report_id": st.uuids().map(str) | anything,
    "case_id": st.uuids().map(str) | anything,
})
# Well-formed submissions too, so that the accepting path (and the per-unit limit) is exercised.
valid = st.one_of(
    st.builds(lambda n, v: {"unit": UNIT, "day": (_today() - timedelta(days=n)).isoformat(),
                            "reporter": "网关", "values": v},
              st.integers(0, 7), st.dictionaries(st.sampled_from(["fever", "ili"]),
                                                 st.integers(0, 9), max_size=2)),
    st.builds(lambda m, t: {"unit": UNIT, "kind": "fever", "temperature": t, "person_ref": "P-9",
                            "found_at": (datetime.now(ZONE) - timedelta(minutes=m)).isoformat()},
              st.integers(0, 200), st.floats(37.3, 41)))
body = (valid.map(lambda d: json.dumps(d).encode())
        | plausible.map(lambda d: json.dumps(d, allow_nan=True).encode())
        | anything.map(lambda v: json.dumps(v, allow_nan=True).encode())
        | st.binary(max_size=300))
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
# Which credential: the county operator's, the clinic's, garbage, or none; spelled any way.
credential = st.sampled_from(["operator", "unit", "garbage", "scheme", "none"])
auth_name = st.sampled_from(["Authorization", "authorization", "AUTHORIZATION"])
message = st.fixed_dictionaries({
    "subject": subject, "data": body, "credential": credential, "auth_name": auth_name,
    "reply": st.sampled_from(["inbox", "inbox", "inbox", "none", "bad"]),
    "extra": st.dictionaries(st.text(st.sampled_from("abcdefXYZ-"), min_size=1, max_size=10)
                             .filter(lambda k: k.lower() not in ("authorization", "reply_to",
                                                                 "nats-msg-id")),
                             header_text, max_size=3),
})


def _headers(m: dict, system: FuzzSystem, inbox: str) -> dict[str, str]:
    headers = dict(m["extra"])
    token = {"operator": system.county_token, "unit": system.unit_token}.get(m["credential"])
    if token:
        headers[m["auth_name"]] = f"Bearer {token}"
    elif m["credential"] == "garbage":
        headers[m["auth_name"]] = "Bearer rc_not_a_token"
    elif m["credential"] == "scheme":
        headers[m["auth_name"]] = "Basic dXNlcjpwYXNz"
    if m["reply"] == "inbox":
        headers["reply_to"] = inbox
    elif m["reply"] == "bad":
        headers["reply_to"] = "not a valid subject"
    return headers


def _dsn(system: FuzzSystem) -> str:
    return system.servers.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _publish_and_collect(system: FuzzSystem, batch: list[dict]) -> list[dict]:
    """Publishes the batch; the outcome of each message that asked for one."""
    connection = await nats.connect(system.servers.nats_url)
    try:
        js = connection.jetstream()
        replies = []
        for m in batch:
            inbox = connection.new_inbox()
            sub = await connection.subscribe(inbox) if m["reply"] == "inbox" else None
            ack = await js.publish(m["subject"], m["data"], headers=_headers(m, system, inbox))
            assert ack.stream == "SUBMISSIONS"
            replies.append(sub)
        outcomes = []
        for m, sub in zip(batch, replies, strict=True):
            if sub is None:
                continue
            reply = json.loads((await sub.next_msg(timeout=30)).data)  # every one asking
            if "results" in reply:  # a JSON array on report.submit: one result per report
                assert reply["accepted"] + reply["duplicate"] + reply["rejected"] == len(
                    reply["results"]), reply
                outcomes += [{"sent": m, **r} for r in reply["results"]]
            else:
                outcomes.append({"sent": m, **reply})
        return outcomes
    finally:
        await connection.close()


def _check_outcome(outcome: dict) -> str | None:
    status, code = outcome["status"], outcome["code"]
    assert status in ("accepted", "duplicate", "rejected"), outcome
    if status != "rejected":
        assert code in (200, 201), outcome
        return None
    assert code in (401, 403, 404, 409, 413, 422, 429), outcome
    assert outcome["errors"], outcome
    for error in outcome["errors"]:
        assert all(isinstance(error.get(k), str) and error[k]
                   for k in ("field", "code", "message_zh", "message_en")), error
    assert outcome["rejection_id"], outcome
    if code == 429:  # the per-unit limit says when to try again
        assert outcome["errors"][0]["code"] == "rate_limited" and outcome["retry_after"] >= 1
    return outcome["rejection_id"]


async def _kept(system: FuzzSystem, ids: list[str]) -> set[str]:
    conn = await asyncpg.connect(_dsn(system))
    try:
        rows = await conn.fetch("SELECT rejection_id::text AS id FROM ingest.rejections "
                                "WHERE rejection_id = ANY($1::uuid[])", ids)
    finally:
        await conn.close()
    return {r["id"] for r in rows}


async def _settled(system: FuzzSystem, wait_s: float = 60) -> dict:
    """Waits until ingest has acknowledged every submission and the relay has published every
    rejection; then the figures to compare."""
    connection = await nats.connect(system.servers.nats_url)
    conn = await asyncpg.connect(_dsn(system))
    try:
        js = connection.jetstream()
        deadline = time.monotonic() + wait_s
        while True:
            consumer = await js.consumer_info("SUBMISSIONS", "ingest-submissions")
            outbox = await conn.fetchval("SELECT count(*) FROM ingest.outbox")
            rejections = await conn.fetchval("SELECT count(*) FROM ingest.rejections")
            rejected = (await js.stream_info("REJECTED")).state.messages
            submissions = (await js.stream_info("SUBMISSIONS")).state.messages
            quiet = (consumer.num_pending == 0 and consumer.num_ack_pending == 0
                     and submissions == 0 and outbox == 0 and rejected == rejections)
            if quiet or time.monotonic() > deadline:
                return {"pending": consumer.num_pending, "ack_pending": consumer.num_ack_pending,
                        "redelivered": consumer.num_redelivered, "submissions": submissions,
                        "outbox": outbox, "rejections": rejections, "rejected": rejected}
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
        await connection.close()


def _fuzz(system: FuzzSystem, examples: int) -> None:
    sent: list[int] = []
    answered: list[int] = []
    statuses: dict[int, int] = {}

    @given(batch=st.lists(message, min_size=1, max_size=12))
    @settings(max_examples=examples, deadline=None, database=None,
              derandomize=examples == QUICK, suppress_health_check=list(HealthCheck))
    def run(batch: list[dict]) -> None:
        outcomes = asyncio.run(_publish_and_collect(system, batch))
        sent.append(len(batch))
        answered.append(len(outcomes))
        for o in outcomes:
            statuses[o["code"]] = statuses.get(o["code"], 0) + 1
        ids = [i for o in outcomes if (i := _check_outcome(o))]
        if ids:
            assert asyncio.run(_kept(system, ids)) == set(ids)
        for o in outcomes:  # a credential that is no credential is never let in
            if o["sent"]["credential"] in ("garbage", "scheme", "none"):
                assert o["code"] in (401, 422), o

    started = time.monotonic()
    run()
    figures = asyncio.run(_settled(system))
    print(f"\nbus fuzz: {sum(sent)} messages in {len(sent)} batches, {sum(answered)} answered, "
          f"{time.monotonic() - started:.1f} s; answers by code {dict(sorted(statuses.items()))}; "
          f"{figures}")
    assert system.alive()["ingest"] is None, "ingest died"
    assert figures["pending"] == figures["ack_pending"] == figures["submissions"] == 0, figures
    assert figures["redelivered"] == 0, f"ingest failed a batch and asked again: {figures}"
    assert figures["outbox"] == 0 and figures["rejected"] == figures["rejections"], figures


def test_bus_fuzz(fuzz_system: FuzzSystem) -> None:
    _fuzz(fuzz_system, QUICK)


@pytest.mark.slow
def test_bus_fuzz_thorough(fuzz_system: FuzzSystem) -> None:
    _fuzz(fuzz_system, THOROUGH)
