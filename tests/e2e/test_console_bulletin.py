"""The weekly 通报 and the sector view in a real browser: a town's week with silences and a zero
report on a day its clinic sent a fever case; the page ranks the villages and names the units
with the most missing and late days, shows the 疑似瞒报 flag, which the operator dismisses with
a reason (kept, and in the CSV); the county's education bureau signs in to its sector's view."""

import csv
import io
import time
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import expect

from tests.e2e.conftest import credential

ZONE = ZoneInfo("Asia/Shanghai")
COUNTY, TOWN = "430621", "430621113"  # 步仙镇: no other browser test reports there
CLINIC = "430621113001-CL"  # 和庄社区: a village without a school
LIVE = 30_000


def test_the_weekly_bulletin_and_a_sector_view(day_system, day_servers, browser, artifacts):
    token = credential(day_servers, "operator", TOWN, "步仙镇值班员")
    edu = credential(day_servers, "operator", COUNTY, "县教育局", sector="education")
    auth = {"Authorization": f"Bearer {token}"}
    today = datetime.now(ZONE).date()
    yesterday = today - timedelta(days=1)
    # Yesterday: the clinic and a few units report (late: sent today); everyone else is missing.
    some = ["430621113002-CL", "430621113-PS", "430621113003-PS", CLINIC]
    for unit in some:
        answer = httpx.post(f"{day_system['ingest']}/v1/reports", headers=auth, timeout=30,
                            json={"unit": unit, "day": yesterday.isoformat(),
                                  "reporter": "信息员", "values": {}})
        assert answer.status_code == 201, answer.text
    # Today: the clinic sends a fever case, then a zero report: 疑似瞒报.
    found = datetime.now(ZONE).replace(microsecond=0) - timedelta(minutes=5)
    case = httpx.post(f"{day_system['ingest']}/v1/cases", headers=auth, timeout=30, json={
        "unit": CLINIC, "kind": "fever", "found_at": found.isoformat(), "temperature": 38.5,
        "person_ref": "P-bul001", "case_id": str(uuid.uuid4())})
    assert case.status_code == 201, case.text
    zero = httpx.post(f"{day_system['ingest']}/v1/reports/zero", headers=auth, timeout=30,
                      json={"unit": CLINIC, "day": today.isoformat(), "reporter": "李医生"})
    if zero.status_code == 409:  # the simulated day reported figures for it: now a zero
        zero = httpx.post(f"{day_system['ingest']}/v1/reports/{CLINIC}/{today}/corrections",
                          headers=auth, timeout=30,
                          json={"values": {}, "reporter": "李医生", "reason": "改为零报告"})
    assert zero.status_code in (200, 201), zero.text  # 200: the simulated day's zero report

    console = day_system["console"]
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{console}/#token={token}")
    expect(page.locator("#main")).to_be_visible(timeout=LIVE)
    page.goto(f"{console}/bulletin?node={TOWN}&start={yesterday}&end={today}")
    expect(page.locator("h1")).to_contain_text("步仙镇", timeout=LIVE)
    expect(page.locator("h1")).to_contain_text("疫情防控报送通报")
    villages = page.locator("#children-table tbody tr")
    expect(villages.first).to_be_visible(timeout=LIVE)
    assert villages.count() >= 10
    expect(page.locator("#units-table tbody tr").first).to_contain_text("1")
    expect(page.locator("#lead")).to_contain_text("漏报")

    # The flag is shown; once checked, it is dismissed with a reason, which stays.
    flag = page.locator("#flags-table tbody tr", has_text="和庄社区卫生服务站")
    expect(flag).to_contain_text("零报告但当日报送了病例", timeout=LIVE)
    expect(page.locator("#units-table")).to_contain_text("疑似瞒报 1")
    page.screenshot(path=artifacts / "bulletin-town-week.png", full_page=True)
    flag.locator("input").fill("已核实:病人系外村来诊,本室当日无本村病例")
    flag.locator("button").click()
    expect(page.locator("#flags-table tbody tr", has_text="和庄社区卫生服务站")).to_contain_text(
        "已核实:病人系外村来诊", timeout=LIVE)
    expect(page.locator("#flags-table")).to_contain_text("步仙镇值班员")

    # The town sends the clinic's zero report back (退回): the 通报 counts it.
    def send_back() -> httpx.Response:
        return httpx.post(f"{day_system['signoff']}/v1/sendbacks", headers=auth, timeout=30,
                          json={"unit": CLINIC, "day": today.isoformat(),
                                "reason": "零报告与当日发热病例不符,请核实"})

    deadline = time.monotonic() + 30
    while (answer := send_back()).status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.3)  # signoff has not taken the report in yet
    assert answer.status_code in (201, 409), answer.text

    sheet = httpx.get(f"{console}/api/bulletin/{TOWN}/csv", headers=auth, timeout=30,
                      params={"start": yesterday.isoformat(), "end": today.isoformat()})
    assert sheet.status_code == 200
    rows = list(csv.reader(io.StringIO(sheet.content.decode("utf-8-sig"))))
    assert any("报告率最低的下级" in r[0] for r in rows if r)
    assert any(CLINIC in r and "已排除 Dismissed" in r for r in rows)
    at = rows.index(next(r for r in rows if r and r[0] == "合计 Total"))
    header, total = rows[at], rows[at + 1]
    assert total[header.index("退回 Sent back")] == "1"

    # The county's education bureau: its sector's view, named as such, schools only.
    page.goto(f"{console}/api/session")  # leave the town's page before signing in again
    context.clear_cookies()
    page.goto(f"{console}/#token={edu}")
    expect(page.locator("#scope-name")).to_contain_text("教育 行业视图", timeout=LIVE)
    page.goto(f"{console}/?node={TOWN}")
    expect(page.locator("#scope-name")).to_contain_text("教育", timeout=LIVE)
    page.goto(f"{console}/bulletin?node={TOWN}&start={yesterday}&end={today}")
    expect(page.locator("h1")).to_contain_text("步仙镇 · 教育", timeout=LIVE)
    expect(page.locator("#lead")).to_be_visible(timeout=LIVE)
    # The clinic is not its own.
    expect(page.locator("#doc")).not_to_contain_text("和庄社区卫生服务站")
    page.screenshot(path=artifacts / "bulletin-education-sector.png", full_page=True)
    assert not errors, errors
    context.close()
