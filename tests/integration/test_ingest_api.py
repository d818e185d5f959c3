"""Ingest's HTTP API over a real server (NATS, PostgreSQL, the services as processes): what
only the wire shows. Credentials in the Authorization header, the zero-report and case routes,
bulk JSON and CSV, a body that cannot be read, published refusals, the OpenAPI schema, and any
body at all answered clearly. The rules behind the door (idempotency, corrections, lateness,
validation) are tested in process, in test_ingest_use_cases.py."""

import asyncio
import json
import time
from datetime import date, datetime, timedelta

import httpx
import nats
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from shared.auth import revoke
from shared.clock import utc_now
from shared.contracts import reports_of
from shared.db import make_engine, make_sessionmaker
from tests.conftest import eventually, issue_token
from tests.integration.conftest import (
    ZONE,
    SyntheticCounty,
    open_days,
    stream_messages,
    subject_counts,
    today,
)

DEMO_CLINIC = "430621108002-CL"  # 公田镇西湖村卫生室


async def count_rows(database_url: str, sql: str) -> int:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session:
            return (await session.execute(text(sql))).scalar_one()
    finally:
        await engine.dispose()


def post(system: dict, path: str, body: object, auth: dict | None = None,
         **kwargs) -> httpx.Response:
    return httpx.post(f"{system['ingest']}{path}", json=body, headers=auth or {}, timeout=60,
                      **kwargs)


def codes(response: httpx.Response) -> set[tuple[str, str]]:
    return {(e["field"], e["code"]) for e in response.json()["errors"]}


def assert_bilingual(errors: list[dict]) -> None:
    for e in errors:
        assert e["field"] and e["code"] and e["message_zh"] and e["message_en"], e
        assert e["message_zh"] != e["message_en"], e


# -- credentials ------------------------------------------------------------------------------


def test_missing_or_wrong_credentials_are_401_never_500(system: dict) -> None:
    body = {"unit": DEMO_CLINIC, "day": today().isoformat(), "reporter": "x", "values": {}}
    for headers in ({}, {"Authorization": "Bearer rc_not-a-token"},
                    {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer"},
                    {"Authorization": "Bearer " + "x" * 5000}):
        response = post(system, "/v1/reports", body, headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert_bilingual(response.json()["errors"])
    for path in ("/v1/reports/bulk", "/v1/reports/bulk/csv", "/v1/cases", "/v1/reports/zero"):
        assert post(system, path, [body]).status_code == 401
    assert httpx.get(f"{system['ingest']}/v1/units/{DEMO_CLINIC}/reports").status_code == 401


def test_a_revoked_token_is_refused(system: dict, servers) -> None:
    token = issue_token(servers, "unit", DEMO_CLINIC, "王医生")

    async def revoke_it() -> None:
        engine = make_engine(servers.database_url, pool_size=1)
        async with make_sessionmaker(engine)() as session, session.begin():
            from sqlalchemy import select

            from shared.auth import Credential, hash_token
            credential_id = await session.scalar(select(Credential.credential_id).where(
                Credential.token_hash == hash_token(token)))
            assert await revoke(session, credential_id, utc_now())
        await engine.dispose()

    asyncio.run(revoke_it())
    response = httpx.get(f"{system['ingest']}/v1/units/{DEMO_CLINIC}/reports",
                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["code"] == "bad_token"


def test_a_unit_submits_only_for_itself(system: dict, servers) -> None:
    mine, other = "430621109001-CL", "430621109002-CL"
    auth = {"Authorization": f"Bearer {issue_token(servers, 'unit', mine, '毛田镇医生')}"}
    day = (today() - timedelta(days=1)).isoformat()
    ok = post(system, "/v1/reports", {"unit": mine, "day": day, "reporter": "刘",
                                      "values": {"fever": 1}}, auth)
    assert ok.status_code == 201, ok.text
    refused = post(system, "/v1/reports", {"unit": other, "day": day, "reporter": "刘",
                                           "values": {"fever": 1}}, auth)
    assert refused.status_code == 403
    assert codes(refused) == {("unit", "outside_area")}
    assert refused.json()["rejection_id"]  # kept, like every refusal of a known sender
    assert httpx.get(f"{system['ingest']}/v1/units/{other}/reports",
                     headers=auth).status_code == 403
    history = httpx.get(f"{system['ingest']}/v1/units/{mine}/reports", headers=auth).json()
    assert [(r["day"], r["values"], r["actor"]) for r in history] == [
        (day, {"fever": 1}, "unit:毛田镇医生")]


# -- the routes ---------------------------------------------------------------------------


def test_zero_report_is_explicit_and_counts_as_reported(system: dict, auth: dict) -> None:
    unit = "430621105001-VC"
    day = today() - timedelta(days=2)
    response = post(system, "/v1/reports/zero",
                    {"unit": unit, "day": day.isoformat(), "reporter": "周"}, auth)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["zero"] is True and body["late"] is True  # two days after its cutoff: 迟报
    with_values = post(system, "/v1/reports/zero", {"unit": unit, "day": day.isoformat(),
                                                    "reporter": "周", "values": {"fever": 1}},
                       auth)
    assert with_values.status_code == 422
    assert codes(with_values) == {("values", "unknown_field")}

    def counted() -> bool:
        view = httpx.get(f"{system['aggregate']}/v1/rollups/430621105001",
                         params={"day": day.isoformat()}, headers=auth).json()["completeness"]
        return view["zero"] == 1 and view["reported"] == 1

    assert eventually(counted, timeout=20)


def test_a_case_is_taken_and_listed(system: dict, auth: dict) -> None:
    unit = "430621113001-CL"
    body = {"unit": unit, "kind": "fever", "temperature": 38.6, "symptoms": ["cough"],
            "found_at": (datetime.now(ZONE) - timedelta(minutes=30)).isoformat(),
            "person_ref": "P-7f3a9c"}
    first = post(system, "/v1/cases", body, auth)
    assert first.status_code == 201 and first.json()["late"] is False, first.text
    retry = post(system, "/v1/cases", body, auth)
    assert retry.status_code == 200 and retry.json()["case_id"] == first.json()["case_id"]
    listed = httpx.get(f"{system['ingest']}/v1/units/{unit}/cases", headers=auth).json()
    assert first.json()["case_id"] in {c["case_id"] for c in listed}


def test_a_fever_case_as_the_seeds_record_it(system: dict, auth: dict) -> None:
    """Second reading, rash among the symptoms, recent travel to a risk area, the action
    taken: kept with the case and listed back; a case without them reads with none."""
    unit = "430621113003-CL"
    body = {"unit": unit, "kind": "fever", "temperature": 38.2, "second_temperature": 38.2,
            "symptoms": ["rash", "cough"], "travel_risk_area": True, "contact_with_case": False,
            "action": "referred", "person_ref": "P-2b9e01",
            "found_at": (datetime.now(ZONE) - timedelta(minutes=10)).isoformat()}
    taken = post(system, "/v1/cases", body, auth)
    assert taken.status_code == 201, taken.text
    listed = {c["case_id"]: c for c in httpx.get(
        f"{system['ingest']}/v1/units/{unit}/cases", headers=auth).json()}
    case = listed[taken.json()["case_id"]]
    assert case["symptoms"] == ["rash", "cough"]
    assert case["details"] == {"second_temperature": 38.2, "travel_risk_area": True,
                               "contact_with_case": False, "action": "referred"}
    plain = {k: body[k] for k in ("unit", "kind", "temperature", "found_at")}
    other = post(system, "/v1/cases", {**plain, "person_ref": "P-2b9e02"}, auth)
    assert listed.get(other.json()["case_id"]) is None
    again = {c["case_id"]: c for c in httpx.get(
        f"{system['ingest']}/v1/units/{unit}/cases", headers=auth).json()}
    assert again[other.json()["case_id"]]["details"] == {}


# -- refusals: kept and published, whatever the body -------------------------------------


def test_a_body_that_cannot_be_read_is_refused_and_kept(system: dict, auth: dict,
                                                       servers) -> None:
    day = today().isoformat()
    attempts = [("/v1/reports", b'{"unit": "430621108003-CL", "day": ', ("body", "invalid_json")),
                ("/v1/reports/zero", b"[]", ("body", "not_an_object")),
                ("/v1/cases", b"", ("body", "invalid_json")),
                ("/v1/reports/430621108003-CL/not-a-day/corrections",
                 b'{"reporter": "x", "reason": "y"}', ("day", "bad_date")),
                (f"/v1/reports/430621108003-CL/{day}/corrections", b'{"reporter": 1}',
                 ("reporter", "not_a_string")),
                # A NUL character is kept (escaped) and its refusal published like any other.
                ("/v1/reports", json.dumps({"unit": "430621\x00-CL", "day": day,
                                            "reporter": "x"}).encode(),
                 ("unit", "bad_characters"))]
    for path, content, error in attempts:
        response = httpx.post(f"{system['ingest']}{path}", content=content, timeout=30,
                              headers={**auth, "content-type": "application/json"})
        assert response.status_code == 422, (path, response.text)
        assert error in codes(response), (path, response.text)
        assert_bilingual(response.json()["errors"])
        rejection_id = response.json()["rejection_id"]
        assert asyncio.run(count_rows(servers.database_url, "SELECT count(*) FROM "
                                      f"ingest.rejections WHERE rejection_id = '{rejection_id}'"
                                      )) == 1, path


def test_refusals_are_kept_and_published(system: dict, auth: dict, servers) -> None:
    async def run() -> tuple[httpx.Response, dict]:
        connection = await nats.connect(servers.nats_url)
        sub = await connection.subscribe("report.rejected.>")
        response = await asyncio.to_thread(post, system, "/v1/reports", {
            "unit": "bad unit.*", "day": today().isoformat(), "reporter": "x"}, auth)
        # An earlier test's refusal may still be on its way out of the outbox: skip to ours.
        while True:
            message = await sub.next_msg(timeout=10)
            data = json.loads(message.data)
            if data["rejection_id"] == response.json()["rejection_id"]:
                break
        await connection.close()
        return response, {"subject": message.subject, **data}

    response, published = asyncio.run(run())
    assert response.status_code == 422
    # A unit that is not a subject token goes out on report.rejected._ all the same.
    assert published["subject"] == "report.rejected._"
    assert published["rejection_id"] == response.json()["rejection_id"]
    assert published["payload"]["unit"] == "bad unit.*"


# -- bulk -------------------------------------------------------------------------------------


def test_bulk_json_gives_one_result_per_report(system: dict, auth: dict, servers) -> None:
    day = (today() - timedelta(days=4)).isoformat()
    items = [
        {"unit": "430621111001-CL", "day": day, "reporter": "a", "values": {"fever": 1}},
        {"unit": "430621111001-VC", "day": day, "reporter": "a", "values": {"fever": "x"}},
        {"unit": "430621111002-CL", "day": day, "reporter": "a", "values": {"fever": -1}},
        "not an object",
        {"unit": "430621111001-CL", "day": day, "reporter": "a", "values": {"fever": 1}},
        {"unit": "430621111001-CL", "day": day, "reporter": "a", "values": {"fever": 2}},
        {"unit": "430621111002-VC", "day": day, "reporter": "a", "values": {}},
    ]
    response = post(system, "/v1/reports/bulk", items, auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [(r["index"], r["status"], r["code"]) for r in body["results"]] == [
        (0, "accepted", 201), (1, "rejected", 422), (2, "rejected", 422), (3, "rejected", 422),
        (4, "duplicate", 200), (5, "rejected", 409), (6, "accepted", 201)]
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 1, 4)
    results = body["results"]
    assert results[4]["report_id"] == results[0]["report_id"]
    assert {(e["field"], e["code"]) for e in results[1]["errors"]} == {
        ("values.fever", "not_a_number")}
    assert results[2]["errors"][0]["code"] == "negative"
    assert results[3]["errors"][0]["code"] == "not_an_object"
    assert results[6]["zero"] is True
    for r in results:
        assert r["status"] != "rejected" or r["rejection_id"]


def test_bulk_limits_and_shapes(system: dict, auth: dict) -> None:
    one = {"unit": "430621111003-CL", "day": today().isoformat(), "reporter": "a"}
    too_many = post(system, "/v1/reports/bulk", [one] * 10_001, auth)
    assert too_many.status_code == 413 and codes(too_many) == {("body", "too_many")}
    not_a_list = post(system, "/v1/reports/bulk", one, auth)
    assert not_a_list.status_code == 422 and codes(not_a_list) == {("body", "not_a_list")}
    garbage = httpx.post(f"{system['ingest']}/v1/reports/bulk", content=b"[{,",
                         headers={**auth, "content-type": "application/json"})
    assert garbage.status_code == 422 and codes(garbage) == {("body", "invalid_json")}
    empty = post(system, "/v1/reports/bulk", [], auth)
    assert empty.json() == {"accepted": 0, "duplicate": 0, "rejected": 0, "results": []}


def test_bulk_csv_rows(system: dict, auth: dict) -> None:
    day = (today() - timedelta(days=5)).isoformat()
    csv_text = ("unit,day,reporter,fever,ili,nat_tests,nat_positive\n"
                f"430621112001-CL,{day},王医生,2,1,10,1\n"
                f"430621112001-VC,{day},李主任,,,,\n"
                "\n"
                f"430621112002-CL,{day},张,两个,,,\n"
                f"430621112002-VC,{day},张,,,1,2\n"
                f"430621112003-CL,{day},张,1\n")
    response = httpx.post(f"{system['ingest']}/v1/reports/bulk/csv",
                          content=csv_text.encode("gb18030"),
                          headers={**auth, "content-type": "text/csv"}, timeout=30)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [
        "accepted", "accepted", "rejected", "rejected", "rejected"]
    assert results[1]["zero"] is True
    assert {(e["field"], e["code"]) for e in results[2]["errors"]} == {
        ("values.fever", "not_a_number")}
    assert {(e["field"], e["code"]) for e in results[3]["errors"]} == {
        ("values.nat_positive", "positives_le_tests")}
    assert ("row", "bad_row") in {(e["field"], e["code"]) for e in results[4]["errors"]}
    history = httpx.get(f"{system['ingest']}/v1/units/430621112001-CL/reports",
                        params={"day": day}, headers=auth).json()
    assert history[0]["values"] == {"fever": 2, "ili": 1, "nat_tests": 10, "nat_positive": 1}
    assert history[0]["reporter"] == "王医生"  # read from GB 18030
    no_unit = httpx.post(f"{system['ingest']}/v1/reports/bulk/csv", content=b"day,fever\n",
                         headers={**auth, "content-type": "text/csv"})
    assert no_unit.status_code == 422 and codes(no_unit) == {("header", "missing_column")}


def test_each_unit_type_reports_its_own_form(system: dict, auth: dict) -> None:
    """A pharmacy sending sick absences is refused, the reason naming its form; one CSV file
    holds units of several types, each row filling its own form's columns."""
    day = (today() - timedelta(days=6)).isoformat()
    refused = post(system, "/v1/reports", {"unit": "430621-PH2", "day": day, "reporter": "店长",
                                           "values": {"fever_medicine_sales": 3,
                                                      "sick_absence": 1}}, auth)
    assert refused.status_code == 422
    (error,) = refused.json()["errors"]
    assert (error["field"], error["code"]) == ("values.sick_absence", "not_on_form")
    assert "pharmacy" in error["message_en"] and "药店日报" in error["message_zh"]
    header = httpx.get(f"{system['ingest']}/v1/forms/kindergarten/template.csv", headers=auth)
    assert header.status_code == 200
    columns = header.content.decode("utf-8-sig").strip().split(",")
    assert columns[:8] == ["unit", "day", "reporter", "report_id", "enrolled",
                           "morning_checks", "noon_checks", "sick_absence"]
    assert httpx.get(f"{system['ingest']}/v1/forms/spaceport/template.csv",
                     headers=auth).status_code == 404
    csv_text = ("unit,day,reporter,fever_medicine_sales,enrolled,sick_absence\n"
                f"430621-PH2,{day},店长,3,,\n"
                f"430621-KG1,{day},园长,,120,2\n"
                f"430621-PH1,{day},店长,1,,1\n")
    response = httpx.post(f"{system['ingest']}/v1/reports/bulk/csv", content=csv_text.encode(),
                          headers={**auth, "content-type": "text/csv"}, timeout=30)
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["accepted", "accepted", "rejected"]
    assert {(e["field"], e["code"]) for e in results[2]["errors"]} == {
        ("values.sick_absence", "not_on_form")}


def test_a_note_is_kept_with_its_revision_and_never_carries_a_phone_number(
        system: dict, servers, auth: dict) -> None:
    unit, day = "430621113002-CL", (today() - timedelta(days=4)).isoformat()
    body = {"unit": unit, "day": day, "reporter": "村医", "values": {"fever": 1},
            "note": "一名发热病人已转诊县医院发热门诊"}
    for refused_note, code in (("联系人 138 0731 5678", "personal_data"),
                               ("家属身份证 43062119800101123X", "personal_data"),
                               ("值班电话 0730-7654321", "personal_data"),
                               ("长" * 501, "too_long")):
        refused = post(system, "/v1/reports", {**body, "note": refused_note}, auth)
        assert refused.status_code == 422, refused_note
        assert ("note", code) in codes(refused)
    assert post(system, "/v1/reports", body, auth).status_code == 201
    assert post(system, "/v1/reports", body, auth).json()["status"] == "duplicate"
    other_note = post(system, "/v1/reports", {**body, "note": "另一条"}, auth)
    assert other_note.status_code == 409  # not a retry: a correction says it
    fix = httpx.post(f"{system['ingest']}/v1/reports/{unit}/{day}/corrections", headers=auth,
                     json={"values": {"fever": 1}, "reporter": "村医", "reason": "补充说明",
                           "note": "病人核酸阴性,已返家"})
    assert fix.status_code == 201, fix.text
    history = httpx.get(f"{system['ingest']}/v1/units/{unit}/reports", params={"day": day},
                        headers=auth).json()
    assert [(r["revision"], r["note"]) for r in history] == [
        (1, "一名发热病人已转诊县医院发热门诊"), (2, "病人核酸阴性,已返家")]
    notes = httpx.get(f"{system['ingest']}/v1/notes", params={"node": "430621113", "day": day},
                      headers=auth).json()
    assert [(n["unit"], n["revision"], n["note"]) for n in notes] == [
        (unit, 2, "病人核酸阴性,已返家")]
    subject = f"report.accepted.430621.430621113.{unit.split('-')[0]}"

    def published() -> list[tuple[int, str | None]] | None:
        events = [e for m in asyncio.run(stream_messages(servers.nats_url, "REPORTS", subject))
                  for e in reports_of(m)]
        found = sorted((e.revision, e.note) for e in events
                       if e.unit == unit and e.day.isoformat() == day)
        return found if len(found) == 2 else None

    assert eventually(published) == [(1, "一名发热病人已转诊县医院发热门诊"),
                                     (2, "病人核酸阴性,已返家")]


def test_ten_thousand_reports_in_one_request_end_to_end(system: dict, servers,
                                                        test_county: SyntheticCounty) -> None:
    """The largest bulk request: every report accepted, published once, rolled up; the same
    request again is all duplicates and publishes nothing."""
    days = open_days()
    items = [{"unit": unit, "day": day.isoformat(), "reporter": "批量",
              "values": {"fever": n % 3, "nat_tests": 2, "nat_positive": n % 2}}
             for n, (unit, day) in enumerate((u, d) for d in days for u in test_county.units)]
    assert len(items) == 10_000
    started = time.monotonic()
    response = post(system, "/v1/reports/bulk", items, test_county.auth)
    took = time.monotonic() - started
    assert response.status_code == 200, response.text[:2000]
    assert response.json()["accepted"] == 10_000, response.json()["results"][:3]
    print(f"\n10,000 reports in one bulk request: {took:.2f} s")
    assert eventually(lambda: asyncio.run(count_rows(
        servers.database_url, "SELECT count(*) FROM ingest.outbox")) == 0, timeout=60,
        interval=0.1)
    print(f"…all published within {time.monotonic() - started:.2f} s")

    def rolled_up() -> bool:
        return asyncio.run(count_rows(servers.database_url, f"""
            SELECT coalesce(sum(reported), 0) FROM aggregate.completeness
            WHERE node_code = '{test_county.county}'""")) == 10_000

    assert eventually(rolled_up, timeout=120, interval=0.2)
    print(f"…and rolled up to the county within {time.monotonic() - started:.2f} s")
    for d in (days[0], days[-1]):
        county = httpx.get(f"{system['aggregate']}/v1/rollups/{test_county.county}",
                           params={"day": d.isoformat()}, headers=test_county.auth,
                           timeout=30).json()
        assert county["completeness"]["reported"] == len(test_county.units)
        assert county["values"]["fever"] == sum(
            i["values"]["fever"] for i in items if i["day"] == d.isoformat())
    subject = f"report.accepted.{test_county.county}.>"
    counts = asyncio.run(subject_counts(servers.nats_url, "REPORTS", subject))
    carried = [e for m in asyncio.run(stream_messages(servers.nats_url, "REPORTS", subject))
               for e in reports_of(m)]
    assert len(carried) == len({(e.unit, e.day) for e in carried}) == 10_000
    # One message per village and request (a village's revisions travel together).
    assert sum(counts.values()) < 10_000

    again = post(system, "/v1/reports/bulk", items, test_county.auth)
    assert again.json()["duplicate"] == 10_000
    time.sleep(1.0)
    assert asyncio.run(subject_counts(servers.nats_url, "REPORTS", subject)) == counts


# -- the schema -----------------------------------------------------------------------------


def test_the_api_is_documented(system: dict) -> None:
    schema = httpx.get(f"{system['ingest']}/openapi.json").json()
    for path in ("/v1/reports", "/v1/reports/zero", "/v1/reports/bulk", "/v1/reports/bulk/csv",
                 "/v1/reports/{unit}/{day}/corrections", "/v1/units/{unit}/reports",
                 "/v1/cases", "/v1/units/{unit}/cases"):
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    bulk = schema["paths"]["/v1/reports/bulk"]["post"]["requestBody"]["content"]
    assert bulk["application/json"]["schema"]["maxItems"] == 10_000
    assert "text/csv" in schema["paths"]["/v1/reports/bulk/csv"]["post"]["requestBody"][
        "content"]
    # Routes that read their body themselves still name its model.
    for path, model in (("/v1/reports", "SubmitReport"), ("/v1/reports/zero", "SubmitZeroReport"),
                        ("/v1/reports/{unit}/{day}/corrections", "CorrectReport"),
                        ("/v1/cases", "SubmitCase")):
        body = schema["paths"][path]["post"]["requestBody"]
        assert body["required"] is True
        assert body["content"]["application/json"]["schema"]["title"] == model


# -- whatever arrives: a clear answer, never a 500 -----------------------------------------

anything = st.recursive(
    st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3), max_leaves=6)
plausible = st.fixed_dictionaries({}, optional={
    "unit": st.sampled_from(["430621100001-CL", "430621100002-VC", "430621-MS1", "x", ""])
    | anything,
    "day": st.dates().map(date.isoformat) | anything,
    "reporter": st.sampled_from(["王", "a\x00", ""]) | anything,
    "values": st.dictionaries(st.sampled_from(["fever", "ili", "nat_tests", "nat_positive",
                                               "max_temperature", "x"]),
                              st.integers(-3, 10) | st.floats() | anything, max_size=4)
    | anything,
    "report_id": st.uuids().map(str) | anything,
})


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=plausible | anything)
def test_any_body_gets_a_clear_answer(system: dict, auth: dict, body: object) -> None:
    response = httpx.post(f"{system['ingest']}/v1/reports", headers=auth, timeout=30,
                          content=json.dumps(body, allow_nan=True),
                          params=None)
    # 429: the per-unit limit, when the examples happen to name one unit often enough.
    assert response.status_code in (200, 201, 403, 409, 422, 429), response.text
    if response.status_code >= 400:
        assert response.json()["errors"], response.text
        assert_bilingual(response.json()["errors"])
        assert response.json()["rejection_id"]
