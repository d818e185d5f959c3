"""A town's two days of reports, sent through ingest and rolled up by the running services, for
the tests of the summary's files, ranges and editions: 月田镇 (430621110), which no other test
reports in."""

import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

TOWN, VILLAGE = "430621110", "430621110001"
ZONE = ZoneInfo("Asia/Shanghai")


# Taken once per run: the modules sharing these reports must agree on their days even when the
# run crosses local midnight (yesterday's reports would otherwise meet today's, changed).
TODAY = datetime.now(ZONE).date()


def today() -> date:
    return TODAY


def reports() -> list[dict]:
    """Yesterday and today: fever (a flow) 1 then 2, people under home observation (a stock)
    10 then 6; a school the town runs itself reports today."""
    d1, d2 = today() - timedelta(days=1), today()
    vc = {"returnees_risk": 1, "returnees_abroad": 0, "returnees_other_province": 0,
          "home_health_monitoring": 0, "central_isolation": 0}
    return [
        {"unit": f"{VILLAGE}-CL", "day": str(d1), "reporter": "王医生",
         "values": {"fever": 1, "ili": 0}},
        {"unit": f"{VILLAGE}-VC", "day": str(d1), "reporter": "李主任",
         "values": {**vc, "home_observation": 10}},
        {"unit": f"{VILLAGE}-CL", "day": str(d2), "reporter": "王医生",
         "values": {"fever": 2, "ili": 1}, "note": "一名发热病人已转诊"},
        {"unit": f"{VILLAGE}-VC", "day": str(d2), "reporter": "李主任",
         "values": {**vc, "home_observation": 6}},
        {"unit": f"{TOWN}-PS", "day": str(d2), "reporter": "张老师",
         "values": {"enrolled": 500, "morning_checks": 500, "noon_checks": 500,
                    "sick_absence": 3}},
    ]


def send_town_reports(system: dict, auth: dict) -> None:
    """Sent (again: a retry is a duplicate) and waited for until aggregate has them."""
    sent = httpx.post(f"{system['ingest']}/v1/reports/bulk", json=reports(), headers=auth,
                      timeout=30)
    assert sent.status_code in (200, 201, 207), sent.text
    assert all(r["status"] in ("accepted", "duplicate") for r in sent.json()["results"]), (
        sent.text)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        view = httpx.get(f"{system['aggregate']}/v1/rollups/{VILLAGE}", headers=auth,
                         params={"start": str(today() - timedelta(days=1)),
                                 "end": str(today())}, timeout=10).json()
        if view["completeness"]["reported"] >= 4:
            return
        time.sleep(0.2)
    raise TimeoutError("aggregate did not apply the town's reports")
