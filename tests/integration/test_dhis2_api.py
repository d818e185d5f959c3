"""DHIS2 data value sets over the wire (NATS, PostgreSQL, the services as processes, the shipped
example mapping): an import answered in DHIS2's shape, JSON and CSV; the units' export from
ingest; the node's export from aggregate, equal to its rollup API once the imported reports
have rolled up; unmapped codes refused or skipped; operators only, inside their area. The
rules behind it are tested in process in test_dhis2_use_cases.py."""

import json
from datetime import timedelta

import httpx

from shared import dhis2
from tests.conftest import eventually, issue_token
from tests.dhis2 import errors_of_export, errors_of_summary
from tests.integration.conftest import today

EXAMPLE = dhis2.load_mapping()
CLINIC, HEALTH_CENTRE, TOWN, VILLAGE = ("430621108001-CL", "430621108-HC", "430621108",
                                        "430621108001")
UNMAPPED_CLINIC = "430621108002-CL"  # not in the example mapping
DAY = today() - timedelta(days=40)  # this module's own day: no other test reports on it
PERIOD = DAY.strftime("%Y%m%d")
FEVER, ILI = EXAMPLE.element_of("fever"), EXAMPLE.element_of("ili")


def ou(code: str) -> str:
    found = EXAMPLE.org_unit_of(code)
    assert found
    return found


def import_(system: dict, auth: dict, body: object, csv: str | None = None) -> httpx.Response:
    url = f"{system['ingest']}/v1/import/dhis2/dataValueSets"
    if csv is not None:
        return httpx.post(url, content=csv.encode(), timeout=60,
                          headers={**auth, "content-type": "application/csv"})
    return httpx.post(url, json=body, headers=auth, timeout=60)


def test_an_import_over_http_answers_dhis2s_summary_and_rolls_up(system: dict,
                                                                   auth: dict) -> None:
    payload = {"dataValues": [
        {"dataElement": FEVER, "period": PERIOD, "orgUnit": ou(CLINIC), "value": "2",
         "storedBy": "王医生", "comment": "两例已转诊"},
        {"dataElement": ILI, "period": PERIOD, "orgUnit": ou(CLINIC), "value": "1",
         "storedBy": "王医生", "comment": "两例已转诊"},
        {"dataElement": FEVER, "period": PERIOD, "orgUnit": ou(HEALTH_CENTRE), "value": "3"},
        {"dataElement": FEVER, "period": PERIOD, "orgUnit": "NotMapped01", "value": "1"},
    ]}
    first = import_(system, auth, payload)
    assert first.status_code == 200, first.text
    body = first.json()
    assert errors_of_summary(body) == []
    assert (body["status"], body["response"]["status"]) == ("WARNING", "WARNING")
    assert body["response"]["importCount"] == {"imported": 3, "updated": 0, "ignored": 1,
                                               "deleted": 0}
    [conflict] = body["response"]["conflicts"]
    assert (conflict["object"], conflict["errorCode"], conflict["indexes"]) == (
        "NotMapped01", "E8107", [3])

    again = import_(system, auth, payload).json()
    assert again["response"]["importCount"] == {"imported": 0, "updated": 0, "ignored": 4,
                                                "deleted": 0}
    # Each import is kept: read back by its summary's reference, inside the importer's area.
    kept = httpx.get(f"{system['ingest']}/v1/import/dhis2/dataValueSets/"
                     f"{body['response']['reference']}", headers=auth)
    assert kept.status_code == 200, kept.text
    assert (kept.json()["summary"], kept.json()["data_values"]) == (body["response"], 4)
    unknown = httpx.get(f"{system['ingest']}/v1/import/dhis2/dataValueSets/"
                        "00000000-0000-0000-0000-000000000000", headers=auth)
    assert unknown.status_code == 404 and unknown.json()["errors"][0]["code"] == "unknown_import"

    # DHIS2's CSV: the health centre's ili, added to its day (a correction, counted imported).
    csv = ('"dataelement","period","orgunit","catoptcombo","attroptcombo","value","storedby",'
           f'"timestamp"\n"{ILI}","{PERIOD}","{ou(HEALTH_CENTRE)}",,,"0","卫生院","{DAY}"\n')
    added = import_(system, auth, None, csv)
    assert added.status_code == 200, added.text
    assert added.json()["response"]["importCount"]["imported"] == 1
    history = httpx.get(f"{system['ingest']}/v1/units/{HEALTH_CENTRE}/reports",
                        params={"day": DAY.isoformat()}, headers=auth).json()
    assert [(r["revision"], r["values"]) for r in history] == [
        (1, {"fever": 3}), (2, {"fever": 3, "ili": 0})]

    # The units' own figures back from ingest, JSON and CSV.
    exported = httpx.get(f"{system['ingest']}/v1/export/dhis2/dataValueSets.json",
                         params={"node": VILLAGE, "day": DAY.isoformat()}, headers=auth)
    assert exported.status_code == 200, exported.text
    values = exported.json()
    assert errors_of_export(values) == []
    assert {(v["dataElement"], v["value"], v["storedBy"], v["comment"])
            for v in values["dataValues"] if v["orgUnit"] == ou(CLINIC)} == {
        (FEVER, "2", "王医生", "两例已转诊"), (ILI, "1", "王医生", "两例已转诊")}
    as_csv = httpx.get(f"{system['ingest']}/v1/export/dhis2/dataValueSets.csv",
                       params={"node": VILLAGE, "day": DAY.isoformat()}, headers=auth)
    assert as_csv.headers["content-type"].startswith("application/csv")
    assert as_csv.text.splitlines()[0] == ",".join(dhis2.CSV_HEADER)
    assert dhis2.from_csv(as_csv.text)["dataValues"][0]["orgUnit"] == ou(CLINIC)

    # The town's rollup from aggregate, once the reports have rolled up: its rollup API's.
    def rolled() -> dict | None:
        r = httpx.get(f"{system['aggregate']}/v1/rollups/{TOWN}",
                      params={"day": DAY.isoformat(), "limit": 0}, headers=auth).json()
        return r if r["completeness"]["reported"] >= 2 and "ili" in r["values"] else None

    rollup = eventually(rolled, timeout=30)
    assert rollup, "the imported reports did not roll up"
    town = httpx.get(f"{system['aggregate']}/v1/export/dhis2/dataValueSets.json",
                     params={"node": TOWN, "day": DAY.isoformat()}, headers=auth)
    assert town.status_code == 200, town.text
    assert errors_of_export(town.json()) == []
    assert {(v["dataElement"], v["period"], v["orgUnit"], v["value"])
            for v in town.json()["dataValues"]} == {
        (EXAMPLE.element_of(m), PERIOD, ou(TOWN), dhis2.value_text(x))
        for m, x in rollup["values"].items()}
    assert rollup["values"]["fever"] >= 5
    # The month holding the day, as the rollup API's ranges take it: that day's values in it.
    month = httpx.get(f"{system['aggregate']}/v1/export/dhis2/dataValueSets.json",
                      params={"node": TOWN, "day": DAY.isoformat(), "period": "month"},
                      headers=auth)
    assert month.status_code == 200, month.text
    assert {(v["dataElement"], v["value"]) for v in month.json()["dataValues"]
            if v["period"] == PERIOD} == {(EXAMPLE.element_of(m), dhis2.value_text(x))
                                          for m, x in rollup["values"].items()}


def test_an_export_refuses_unmapped_codes_or_skips_and_lists_them(system: dict,
                                                                   auth: dict) -> None:
    day = (DAY - timedelta(days=1)).isoformat()
    sent = httpx.post(f"{system['ingest']}/v1/reports", headers=auth, json={
        "unit": UNMAPPED_CLINIC, "day": day, "reporter": "李", "values": {"fever": 1}})
    assert sent.status_code in (200, 201), sent.text
    url = f"{system['ingest']}/v1/export/dhis2/dataValueSets.json"
    refused = httpx.get(url, params={"node": TOWN, "day": day}, headers=auth)
    assert refused.status_code == 422
    assert [(e["field"], e["code"]) for e in refused.json()["errors"]] == [
        (f"org_units.{UNMAPPED_CLINIC}", "unmapped_code")]
    skipped = httpx.get(url, params={"node": TOWN, "day": day, "unmapped": "skip"},
                        headers=auth)
    assert skipped.status_code == 200
    assert skipped.headers["rollcall-unmapped"] == f"org_unit:{UNMAPPED_CLINIC}"
    assert skipped.json() == {"dataValues": []}
    # Aggregate: the town's villages are not all mapped.
    children = httpx.get(f"{system['aggregate']}/v1/export/dhis2/dataValueSets.csv",
                         params={"node": TOWN, "day": day, "children": "true"}, headers=auth)
    assert children.status_code == 422
    assert ("org_units.430621108002", "unmapped_code") in {
        (e["field"], e["code"]) for e in children.json()["errors"]}
    village = httpx.get(f"{system['aggregate']}/v1/export/dhis2/dataValueSets.json",
                        params={"node": VILLAGE, "day": day, "children": "true"}, headers=auth)
    assert village.status_code == 422
    assert village.json()["errors"][0]["code"] == "units_from_ingest"


def test_operators_only_inside_their_area(system: dict, servers, auth: dict) -> None:
    unit = {"Authorization": f"Bearer {issue_token(servers, 'unit', CLINIC, '王医生')}"}
    other = {"Authorization": "Bearer "
             + issue_token(servers, "operator", "430602", "别县值班")}
    params = {"node": TOWN, "day": DAY.isoformat()}
    for base in (system["ingest"], system["aggregate"]):
        bad = httpx.get(f"{base}/v1/export/dhis2/dataValueSets.json",
                        params={"node": "43062x", "day": DAY.isoformat()}, headers=auth)
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "node", bad.text
    for base in (system["ingest"], system["aggregate"]):
        url = f"{base}/v1/export/dhis2/dataValueSets.json"
        assert httpx.get(url, params=params).status_code == 401
        assert httpx.get(url, params=params, headers=unit).status_code == 403
        assert httpx.get(url, params=params, headers=other).status_code == 403
    body = {"dataValues": [{"dataElement": FEVER, "period": PERIOD, "orgUnit": ou(CLINIC),
                            "value": "9"}]}
    assert import_(system, {}, body).status_code == 401
    assert import_(system, unit, body).status_code == 403
    refused = import_(system, other, body)
    assert refused.status_code == 409
    assert refused.json()["response"]["conflicts"][0]["errorCode"] == "E8011"
    # The other county's import is its own to read.
    reference = refused.json()["response"]["reference"]
    url = f"{system['ingest']}/v1/import/dhis2/dataValueSets/{reference}"
    assert httpx.get(url, headers=other).status_code == 200
    assert httpx.get(url, headers=auth).status_code == 403


def test_the_command_line_exports_imports_and_checks(system: dict, county_token: str,
                                                     tmp_path) -> None:
    """`rollcall dhis2`: the units' export written to a file and imported again (nothing
    changes: exit 0, every value ignored); a node's export as CSV; a bad mapping named."""
    from typer.testing import CliRunner

    from rollcall.cli import app

    runner = CliRunner()
    day = (DAY - timedelta(days=2)).isoformat()
    sent = httpx.post(f"{system['ingest']}/v1/reports",
                      headers={"Authorization": f"Bearer {county_token}"},
                      json={"unit": CLINIC, "day": day, "reporter": "王医生",
                            "values": {"fever": 1, "ili": 0}})
    assert sent.status_code in (200, 201), sent.text
    out = tmp_path / "units.json"
    exported = runner.invoke(app, ["dhis2", "export", "--node", VILLAGE, "--start", day,
                                   "--end", day, "--units", "--out", str(out), "--token",
                                   county_token, "--url", system["ingest"]])
    assert exported.exit_code == 0, exported.output
    assert len(json_of(out)["dataValues"]) == 2
    imported = runner.invoke(app, ["dhis2", "import", str(out), "--token", county_token,
                                   "--url", system["ingest"]])
    assert imported.exit_code == 0, imported.output
    assert '"ignored":2' in imported.output.replace(" ", "")
    as_csv = runner.invoke(app, ["dhis2", "export", "--node", VILLAGE, "--start", day, "--end",
                                 day, "--csv", "--token", county_token, "--url",
                                 system["aggregate"]])
    assert as_csv.exit_code == 0, as_csv.output
    assert as_csv.output.splitlines()[0] == ",".join(dhis2.CSV_HEADER)
    bad = tmp_path / "bad.toml"
    bad.write_text('[data_elements]\nfever = "x"\n', encoding="utf-8")
    checked = runner.invoke(app, ["dhis2", "check", str(bad)])
    assert checked.exit_code == 1 and "data_elements.fever" in checked.output


def json_of(path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
