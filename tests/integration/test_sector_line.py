"""The sector line (行业部门主管責任) on real NATS and PostgreSQL, with the services and the
console running as production runs them: the county's education bureau, holding a token scoped
to the county and the sector `education`, sees its schools and kindergartens only — at every
endpoint and on the live stream — and is refused by name (403 `outside_sector`) elsewhere."""

import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import issue_token, start_service

ZONE = ZoneInfo("Asia/Shanghai")
COUNTY, TOWN = "430621", "430621106"  # 柏祥镇: no other test reports there
SCHOOL, SCHOOL_VILLAGE = "430621106002-PS", "430621106002"
CLINIC, CLINIC_VILLAGE = "430621106009-CL", "430621106009"  # a village without a school
EDUCATION_TYPES = {"primary_school", "middle_school", "kindergarten"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused(answer: httpx.Response, code: str = "outside_sector") -> None:
    assert answer.status_code == 403, answer.text
    assert [e["code"] for e in answer.json()["errors"]] == [code], answer.text


def follow(url: str, token: str, seen: list[str], ready: threading.Event,
           stop: threading.Event) -> None:
    with httpx.stream("GET", f"{url}/api/events", headers=bearer(token),
                      timeout=httpx.Timeout(10, read=60)) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("event: hello"):
                ready.set()
            if line.startswith("data:"):
                seen.append(line)
            if stop.is_set():
                return


def wait_until(check, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def signoff(servers, system, tmp_path_factory):
    running = start_service(servers, "signoff", tmp_path_factory.mktemp("sector-signoff"))
    yield running.url
    running.stop()


@pytest.fixture(scope="module")
def ledger(servers, system, tmp_path_factory):
    running = start_service(servers, "ledger", tmp_path_factory.mktemp("sector-ledger"),
                            ROLLCALL_LEDGER_INGEST_URL=system["ingest"])
    yield running.url
    running.stop()


@pytest.fixture(scope="module")
def console(servers, system, tmp_path_factory):
    running = start_service(
        servers, "console", tmp_path_factory.mktemp("sector-console"),
        ROLLCALL_CONSOLE_INGEST_URL=system["ingest"],
        ROLLCALL_CONSOLE_AGGREGATE_URL=system["aggregate"],
        ROLLCALL_CONSOLE_ALERTS_URL=system["alerts"],
        ROLLCALL_CONSOLE_NOTIFY_URL=system["notify"])
    yield running.url
    running.stop()


def test_an_education_bureau_sees_schools_only_everywhere(servers, system, console,
                                                           signoff, ledger) -> None:
    edu = issue_token(servers, "operator", COUNTY, "县教育局", sector="education")
    county = issue_token(servers, "operator", COUNTY, "县指挥部")
    as_edu, as_county = bearer(edu), bearer(county)
    ingest, aggregate, alerts = system["ingest"], system["aggregate"], system["alerts"]
    day = datetime.now(ZONE).date().isoformat()

    # The live streams are open before anything happens.
    seen_edu: list[str] = []
    seen_county: list[str] = []
    stop = threading.Event()
    ready = [threading.Event(), threading.Event()]
    readers = [threading.Thread(target=follow, args=(console, edu, seen_edu, ready[0], stop),
                                daemon=True),
               threading.Thread(target=follow, args=(console, county, seen_county, ready[1],
                                                     stop), daemon=True)]
    for reader in readers:
        reader.start()
    assert all(r.wait(30) for r in ready)

    # Ingest: the bureau reports for its school, not for a clinic (the county may).
    school_report = {"unit": SCHOOL, "day": day, "reporter": "王老师", "values": {}}
    clinic_report = {"unit": CLINIC, "day": day, "reporter": "李医生", "values": {"fever": 1}}
    refused(httpx.post(f"{ingest}/v1/reports", json=clinic_report, headers=as_edu, timeout=30))
    assert httpx.post(f"{ingest}/v1/reports", json=clinic_report, headers=as_county,
                      timeout=30).status_code == 201
    assert httpx.post(f"{ingest}/v1/reports", json=school_report, headers=as_edu,
                      timeout=30).status_code == 201
    found = datetime.now(ZONE).replace(microsecond=0).isoformat()
    for unit, who in ((CLINIC, as_county), (SCHOOL, as_edu)):
        answer = httpx.post(f"{ingest}/v1/cases", headers=who, timeout=30, json={
            "unit": unit, "kind": "fever", "found_at": found, "temperature": 38.4,
            "person_ref": f"P-{unit[-4:]}"})
        assert answer.status_code == 201, answer.text
    assert httpx.get(f"{ingest}/v1/units/{SCHOOL}/reports", headers=as_edu,
                     timeout=30).status_code == 200
    refused(httpx.get(f"{ingest}/v1/units/{CLINIC}/reports", headers=as_edu, timeout=30))
    refused(httpx.get(f"{ingest}/v1/units/{CLINIC}/cases", headers=as_edu, timeout=30))

    # Aggregate: every figure is the sector's, the same as the county's view filtered by it.
    def rollup(path: str, who: dict, **params):
        params = {k: v for k, v in {"day": day, **params}.items() if v is not None}
        answer = httpx.get(f"{aggregate}{path}", params=params, headers=who, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    assert wait_until(lambda: rollup(f"/v1/rollups/{TOWN}", as_edu)["completeness"]["reported"]
                      >= 1)
    town = rollup(f"/v1/rollups/{TOWN}", as_edu)
    filtered = rollup(f"/v1/rollups/{TOWN}", as_county, sector="education")
    whole = rollup(f"/v1/rollups/{TOWN}", as_county)
    assert town["filter"] == {"sector": "education"}
    assert town["completeness"] == filtered["completeness"]
    assert town["values"] == filtered["values"] and "fever" not in town["values"]
    assert whole["values"]["fever"] >= 1
    assert town["completeness"]["expected"] < whole["completeness"]["expected"]
    listed = [u for key in ("pending_units", "missing_units", "late_units", "exempt_units")
              for u in town["completeness"][key]]
    assert listed and {u["unit_type"] for u in listed} <= EDUCATION_TYPES
    assert {u["sector"] for u in listed} == {"education"}

    children = rollup(f"/v1/rollups/{TOWN}/children", as_edu)
    assert {c["filter"]["sector"] for c in children if c["kind"] == "node"} == {"education"}
    units = [c for c in children if c["kind"] == "unit"]
    assert units and {u["sector"] for u in units} == {"education"}
    village = rollup(f"/v1/rollups/{CLINIC_VILLAGE}/children", as_edu)
    assert village == []  # the clinic's village has no school: nothing to see
    assert rollup(f"/v1/rollups/{TOWN}/series", as_edu, day=None, start=day, end=day
                  )["filter"] == {"sector": "education"}
    tallies = rollup(f"/v1/accountability/{TOWN}", as_edu, day=None, start=day, end=day)
    assert tallies["units"] and {u["sector"] for u in tallies["units"]} == {"education"}
    page = rollup(f"/v1/rollups/{TOWN}/completeness", as_edu)
    assert {u["sector"] for key in ("pending_units", "missing_units", "late_units")
            for u in page["completeness"][key]} <= {"education"}
    for path, params in ((f"/v1/rollups/{TOWN}", {"sector": "health"}),
                         (f"/v1/rollups/{TOWN}/children", {"unit_type": "village_clinic"}),
                         (f"/v1/rollups/{TOWN}/completeness", {"sector": "health"}),
                         (f"/v1/rollups/{TOWN}/series", {"sector": "commerce"}),
                         (f"/v1/accountability/{TOWN}", {"unit_type": "pharmacy"})):
        refused(httpx.get(f"{aggregate}{path}", params=params, headers=as_edu, timeout=30))
    # A calendar: of its kindergartens, yes; of every unit of a town, no (the town's to say).
    refused(httpx.post(f"{aggregate}/v1/calendars", headers=as_edu, timeout=30, json={
        "node_code": TOWN, "reason": "全镇停课"}))
    declared = httpx.post(f"{aggregate}/v1/calendars", headers=as_edu, timeout=30, json={
        "node_code": TOWN, "unit_type": "kindergarten", "reason": "幼儿园寒假",
        "valid_from": "2099-01-10", "valid_to": "2099-02-20"})
    assert declared.status_code == 201, declared.text

    # Alerts: the school's case, not the clinic's, listed, counted, read and acted on.
    def alerts_of(who: dict) -> list[dict]:
        answer = httpx.get(f"{alerts}/v1/alerts", params={"node": TOWN, "kind": "case"},
                           headers=who, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    assert wait_until(lambda: {SCHOOL, CLINIC} <= {a["unit"] for a in alerts_of(as_county)})
    mine = alerts_of(as_edu)
    assert {a["unit"] for a in mine} == {SCHOOL}
    counts = httpx.get(f"{alerts}/v1/alerts/counts", params={"node": TOWN}, headers=as_edu,
                       timeout=30).json()
    every = httpx.get(f"{alerts}/v1/alerts", params={"node": TOWN}, headers=as_edu,
                      timeout=30).json()
    assert counts["total"] == len(every)
    clinic_alert = next(a for a in alerts_of(as_county) if a["unit"] == CLINIC)
    refused(httpx.get(f"{alerts}/v1/alerts/{clinic_alert['alert_id']}", headers=as_edu,
                      timeout=30))
    refused(httpx.post(f"{alerts}/v1/alerts/{clinic_alert['alert_id']}/acknowledge",
                       headers=as_edu, json={"reason": "x"}, timeout=30))
    taken = httpx.post(f"{alerts}/v1/alerts/{mine[0]['alert_id']}/acknowledge", headers=as_edu,
                       json={"reason": "已联系学校"}, timeout=30)
    assert taken.status_code == 200, taken.text

    # Notify: who was told of the school's case, not of the clinic's (the alerts it sees).
    notify = system["notify"]
    school_alert = mine[0]["alert_id"]
    assert wait_until(lambda: all(
        httpx.get(f"{notify}/v1/alerts/{a}/deliveries", headers=as_county,
                  timeout=30).status_code == 200 for a in (school_alert, clinic_alert["alert_id"])))
    both = {"alert": [school_alert, clinic_alert["alert_id"]]}
    told = httpx.get(f"{notify}/v1/deliveries", params=both, headers=as_county, timeout=30)
    assert told.status_code == 200 and set(told.json()) == set(both["alert"]), told.text
    refused(httpx.get(f"{notify}/v1/deliveries", params=both, headers=as_edu, timeout=30))
    refused(httpx.get(f"{notify}/v1/alerts/{clinic_alert['alert_id']}/deliveries",
                      headers=as_edu, timeout=30))
    told = httpx.get(f"{notify}/v1/deliveries", params={"alert": school_alert},
                     headers=as_edu, timeout=30)
    assert told.status_code == 200 and list(told.json()) == [school_alert], told.text
    assert httpx.get(f"{notify}/v1/alerts/{school_alert}/deliveries", headers=as_edu,
                     timeout=30).status_code == 200

    # Notify: the duty roster is the territorial command centre's; so are the exports and
    # editions, which hold every sector's figures.
    refused(httpx.put(f"{system['notify']}/v1/rosters/{TOWN}/{day}", headers=as_edu,
                      json={"shifts": []}, timeout=30), "territorial_only")
    for url in (f"{aggregate}/v1/export/dhis2/dataValueSets.json",
                f"{ingest}/v1/export/dhis2/dataValueSets.json", f"{console}/api/editions",
                f"{ledger}/v1/control/people", f"{ledger}/v1/control/due"):
        refused(httpx.get(url, params={"node": TOWN}, headers=as_edu, timeout=30),
                "territorial_only")

    # Signoff: the bureau sends back its school's report, not the clinic's; it confirms nothing
    # (the territorial command centre confirms the county's day).
    refused(httpx.post(f"{signoff}/v1/sendbacks", headers=as_edu, timeout=30, json={
        "unit": CLINIC, "day": day, "reason": "请核实发热人数"}))
    sent_back = httpx.post(f"{signoff}/v1/sendbacks", headers=as_edu, timeout=30, json={
        "unit": SCHOOL, "day": day, "reason": "零报告与当日病例不符,请核实"})
    assert sent_back.status_code == 201, sent_back.text
    refused(httpx.post(f"{signoff}/v1/confirmations", headers=as_edu, timeout=30,
                       json={"node": COUNTY, "day": day}), "territorial_only")
    # Its audit trail holds its school's entries; the county's, the clinic's send-back too.
    assert httpx.post(f"{signoff}/v1/sendbacks", headers=as_county, timeout=30, json={
        "unit": CLINIC, "day": day, "reason": "请核实发热人数"}).status_code == 201

    def audited(who: dict) -> set[str | None]:
        answer = httpx.get(f"{signoff}/v1/audit", params={"node": TOWN, "day": day},
                           headers=who, timeout=30)
        assert answer.status_code == 200, answer.text
        return {entry["unit"] for entry in answer.json()}

    assert audited(as_edu) == {SCHOOL}
    assert {SCHOOL, CLINIC} <= audited(as_county)

    # The console: the sector's view, its summary, and the live stream.
    me = httpx.get(f"{console}/api/me", headers=as_edu, timeout=30).json()
    assert (me["sector"], me["sector_name"]["zh"]) == ("education", "教育")
    overview = httpx.get(f"{console}/api/overview/{TOWN}", params={"day": day}, headers=as_edu,
                         timeout=30).json()
    assert overview["node"]["filter"] == {"sector": "education"}
    summary = httpx.get(f"{console}/api/summary/{TOWN}", params={"day": day}, headers=as_edu,
                        timeout=30).json()
    assert summary["sector"] == "education"
    assert {a.get("unit") for a in summary["alerts"]} <= {SCHOOL, None}
    assert all(n["unit"] != CLINIC for n in summary["notes"])
    picker = httpx.get(f"{console}/api/units", params={"q": "柏祥镇"}, headers=as_edu,
                       timeout=30).json()
    assert picker and {u["unit_type"] for u in picker} <= EDUCATION_TYPES

    assert wait_until(lambda: any(CLINIC_VILLAGE in s for s in seen_county)
                      and any(SCHOOL_VILLAGE in s for s in seen_edu)
                      and any(SCHOOL in s for s in seen_edu)
                      and any(CLINIC in s for s in seen_county))
    time.sleep(2)  # what reaches the county's page within a second or two would reach it too
    stop.set()
    # The clinic's report, case and cutoffs never reach the bureau's page.
    assert any(CLINIC_VILLAGE in s and '"health"' in s for s in seen_county), seen_county
    assert not [s for s in seen_edu if CLINIC in s or CLINIC_VILLAGE in s], seen_edu
    assert any(SCHOOL_VILLAGE in s and '["education"]' in s for s in seen_edu), seen_edu
