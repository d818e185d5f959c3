"""The bus door for gateways, over the real NATS server and the running ingest: reports,
corrections and cases published to the submit subjects are handled like HTTP ones, answered
when a `reply_to` header asks, and refused ones go to the rejected subjects and are stored."""

import asyncio
import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import nats
import pytest
from sqlalchemy import text

from shared.contracts import CASE_SUBMIT, REPORT_CORRECT, REPORT_SUBMIT, reports_of
from shared.db import make_engine, make_sessionmaker
from tests.conftest import eventually, issue_token
from tests.integration.conftest import ZONE, subject_counts, today

pytestmark = pytest.mark.usefixtures("system")  # ingest runs, as production runs it


async def send(nats_url: str, subject: str, body: object, token: str | None,
               reply: bool = True, listen: str | None = None,
               want: Callable[[dict], bool] = lambda event: True
               ) -> tuple[dict | None, dict | None]:
    """Publish one submission through JetStream; the outcome (when asked) and the first
    message seen on `listen` that is `want`ed."""
    connection = await nats.connect(nats_url)
    try:
        js = connection.jetstream()
        inbox = connection.new_inbox()
        replies = await connection.subscribe(inbox)
        watched = await connection.subscribe(listen) if listen else None
        headers = {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if reply:
            headers["reply_to"] = inbox
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        ack = await js.publish(subject, data, headers=headers or None)
        assert ack.stream == "SUBMISSIONS"  # stored before ingest has even seen it
        outcome = json.loads((await replies.next_msg(timeout=20)).data) if reply else None
        seen = None
        while watched is not None and seen is None:
            message = await watched.next_msg(timeout=20)
            # An accepted-report message carries a batch (the contract's v2): each report.
            events = ([e.model_dump(mode="json") for e in reports_of(message)]
                      if message.subject.startswith("report.accepted.")
                      else [json.loads(message.data)])
            seen = next((event for event in events if want(event)), None)
        return outcome, seen
    finally:
        await connection.close()


def test_a_report_over_the_bus_is_accepted_once(servers, county_token: str) -> None:
    unit, day = "430621114001-CL", (today() - timedelta(days=1)).isoformat()
    body = {"unit": unit, "day": day, "reporter": "网关", "values": {"ili": 2},
            "report_id": str(uuid.uuid4())}
    subject = "report.accepted.430621.430621114.430621114001"
    outcome, event = asyncio.run(send(servers.nats_url, REPORT_SUBMIT, body, county_token,
                                      listen=subject))
    assert outcome["status"] == "accepted" and outcome["code"] == 201, outcome
    assert outcome["report_id"] == body["report_id"] and outcome["late"] is True
    assert event["report_id"] == body["report_id"] and event["values"] == {"ili": 2}
    assert event["actor"] == "operator:县指挥部值班"
    before = asyncio.run(subject_counts(servers.nats_url, "REPORTS", subject))
    again, _ = asyncio.run(send(servers.nats_url, f"{REPORT_SUBMIT}.430621", body,
                                county_token))
    assert again["status"] == "duplicate" and again["report_id"] == body["report_id"]
    assert asyncio.run(subject_counts(servers.nats_url, "REPORTS", subject)) == before


def test_a_correction_and_a_case_over_the_bus(servers, county_token: str) -> None:
    unit, day = "430621114002-CL", today().isoformat()
    first, _ = asyncio.run(send(servers.nats_url, REPORT_SUBMIT, {
        "unit": unit, "day": day, "reporter": "网关", "values": {"fever": 1}}, county_token))
    assert first["status"] == "accepted"
    corrected, event = asyncio.run(send(servers.nats_url, REPORT_CORRECT, {
        "unit": unit, "day": day, "reporter": "网关", "values": {"fever": 0},
        "reason": "复测正常", "revision": 2}, county_token,
        listen="report.accepted.430621.430621114.430621114002",
        want=lambda event: event["revision"] == 2))
    assert corrected["status"] == "accepted" and corrected["revision"] == 2, corrected
    assert event["revision"] == 2 and event["reason"] == "复测正常" and event["zero"] is True
    case = {"unit": unit, "kind": "fever", "temperature": 38.9, "person_ref": "GW-17",
            "found_at": (datetime.now(ZONE) - timedelta(minutes=5)).isoformat()}
    reported, case_event = asyncio.run(send(servers.nats_url, CASE_SUBMIT, case, county_token,
                                            listen="case.reported.430621.>",
                                            want=lambda e: e["person_ref"] == "GW-17"))
    assert reported["status"] == "accepted" and reported["late"] is False, reported
    assert case_event["case_id"] == reported["case_id"]


def test_refused_on_the_bus_goes_to_the_rejected_subject_and_is_stored(
        servers, county_token: str) -> None:
    unit = "430621114003-CL"
    bad = {"unit": unit, "day": today().isoformat(), "reporter": "网关",
           "values": {"nat_tests": 1, "nat_positive": 3}}
    outcome, rejected = asyncio.run(send(servers.nats_url, REPORT_SUBMIT, bad, county_token,
                                         listen=f"report.rejected.{unit}"))
    assert outcome["status"] == "rejected" and outcome["code"] == 422
    assert {(e["field"], e["code"]) for e in outcome["errors"]} == {
        ("values.nat_positive", "positives_le_tests")}
    assert rejected["rejection_id"] == outcome["rejection_id"]
    assert rejected["payload"] == bad

    async def stored() -> tuple:
        engine = make_engine(servers.database_url, pool_size=1)
        async with make_sessionmaker(engine)() as session:
            row = (await session.execute(text(
                "SELECT unit_code, source, actor, errors FROM ingest.rejections "
                "WHERE rejection_id = :id"), {"id": outcome["rejection_id"]})).one()
        await engine.dispose()
        return tuple(row)

    unit_code, source, actor, errors = asyncio.run(stored())
    assert (unit_code, source, actor) == (unit, "bus", "operator:县指挥部值班")
    assert errors[0]["code"] == "positives_le_tests"


def test_credentials_on_the_bus(servers) -> None:
    unit = "430621114001-VC"
    body = {"unit": unit, "day": today().isoformat(), "reporter": "网关", "values": {}}
    outcome, rejected = asyncio.run(send(servers.nats_url, REPORT_SUBMIT, body, None,
                                         listen=f"report.rejected.{unit}"))
    assert outcome["code"] == 401 and outcome["errors"][0]["code"] == "unauthenticated"
    assert rejected["errors"][0]["code"] == "unauthenticated"
    wrong, _ = asyncio.run(send(servers.nats_url, REPORT_SUBMIT, body, "rc_wrong"))
    assert wrong["code"] == 401
    other_unit = issue_token(servers, "unit", "430621114002-VC")
    forbidden, _ = asyncio.run(send(servers.nats_url, REPORT_SUBMIT, body, other_unit))
    assert forbidden["code"] == 403 and forbidden["errors"][0]["code"] == "outside_area"
    own = issue_token(servers, "unit", unit)
    accepted, _ = asyncio.run(send(servers.nats_url, REPORT_SUBMIT, body, own))
    assert accepted["status"] == "accepted" and accepted["zero"] is True


def test_garbage_on_the_bus_is_kept(servers, county_token: str) -> None:
    outcome, rejected = asyncio.run(send(servers.nats_url, CASE_SUBMIT, b"{not json",
                                         county_token, listen="case.rejected._"))
    assert outcome["status"] == "rejected"
    assert outcome["errors"][0] == rejected["errors"][0]
    assert rejected["errors"][0]["code"] == "invalid_json"
    assert rejected["payload"]["raw"] == "{not json"


def test_a_fire_and_forget_publish_is_handled(system: dict, servers, auth: dict,
                                              county_token: str) -> None:
    unit, day = "430621114003-VC", (today() - timedelta(days=2)).isoformat()
    body = {"unit": unit, "day": day, "reporter": "网关", "values": {"returnees_risk": 1}}
    asyncio.run(send(servers.nats_url, REPORT_SUBMIT, body, county_token, reply=False))

    def stored() -> list:
        return httpx.get(f"{system['ingest']}/v1/units/{unit}/reports", params={"day": day},
                         headers=auth).json()

    assert eventually(stored, timeout=20)
    assert stored()[0]["values"] == {"returnees_risk": 1}


def test_a_batch_of_reports_in_one_message_is_answered_report_by_report(
        servers, county_token: str) -> None:
    """A JSON array on `report.submit`: each report judged alone (one bad one refused and
    kept, the others accepted), one result per report in order as the bulk call answers, and
    the village's accepted reports published together."""
    day = (today() - timedelta(days=3)).isoformat()
    units = ["430621114001-CL", "430621114001-VC", "430621114002-CL"]
    batch = [{"unit": u, "day": day, "reporter": "网关", "values": {"fever": 1}} for u in units]
    batch.insert(2, {"unit": units[0], "day": day, "reporter": "网关",
                     "values": {"nat_tests": 1, "nat_positive": 3}})
    outcome, event = asyncio.run(send(
        servers.nats_url, f"{REPORT_SUBMIT}.430621", batch, county_token,
        listen="report.accepted.430621.430621114.430621114001",
        want=lambda e: e["unit"] == units[1] and e["day"] == day))
    assert (outcome["accepted"], outcome["duplicate"], outcome["rejected"]) == (3, 0, 1)
    assert [(r["index"], r["status"], r.get("unit")) for r in outcome["results"]] == [
        (0, "accepted", units[0]), (1, "accepted", units[1]), (2, "rejected", None),
        (3, "accepted", units[2])]
    # The second report of the first village: the two went out in one message.
    assert event["report_id"] == outcome["results"][1]["report_id"]
    refused = outcome["results"][2]
    assert refused["errors"][0]["code"] == "positives_le_tests"
    assert refused["code"] == 422

    again, _ = asyncio.run(send(servers.nats_url, REPORT_SUBMIT, batch, county_token))
    assert [r["status"] for r in again["results"]] == [
        "duplicate", "duplicate", "rejected", "duplicate"]
    assert again["results"][2]["rejection_id"] != refused["rejection_id"]  # another message

    async def kept() -> int:
        engine = make_engine(servers.database_url, pool_size=1)
        async with make_sessionmaker(engine)() as session:
            n = (await session.execute(text(
                "SELECT count(*) FROM ingest.rejections WHERE rejection_id = :id"),
                {"id": refused["rejection_id"]})).scalar_one()
        await engine.dispose()
        return n

    assert asyncio.run(kept()) == 1


def test_a_batch_that_is_not_a_list_of_reports_is_refused_whole(servers,
                                                                county_token: str) -> None:
    outcome, _ = asyncio.run(send(servers.nats_url, REPORT_SUBMIT, b"[{not json",
                                  county_token))
    assert outcome["status"] == "rejected" and outcome["code"] == 422
    assert outcome["errors"][0]["code"] == "invalid_json"
