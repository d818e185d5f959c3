"""A county command centre's day in a real browser: the morning's reports are in, the page is
open; a report posted through the API and a fever case appear live without a reload; the
operator acknowledges the alert and closes it from the page, drills down to a village and a
unit's history, prints the daily summary; a unit sends its report through the form, and errors
show next to their field. Screenshots go to test-artifacts/ for people to look at."""

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from rollcall.simulate import Plan, Simulator
from tests.e2e.conftest import credential, in_thread

ZONE = ZoneInfo("Asia/Shanghai")
COUNTY, TOWN, VILLAGE = "430621", "430621108", "430621108001"
CLINIC = f"{VILLAGE}-CL"
LIVE = 30_000  # ms: generous, two cores are shared by everything here


def today() -> str:
    return datetime.now(ZONE).date().isoformat()


@pytest.fixture(scope="module")
def county_token(day_servers) -> str:
    return credential(day_servers, "operator", COUNTY, "县指挥部值班员 李明")


@pytest.fixture(scope="module")
def morning(day_system, county_token) -> dict:
    """The morning already passed: 60 % of the county's units reported, two cases were found."""
    simulator = Simulator(day_system["ingest"], day_system["aggregate"], county_token, COUNTY,
                          ZONE, Plan(share=0.6, burst=1.0, case_every_s=3600, seed=7))
    sent = in_thread(lambda: simulator.run(duration_s=0))
    assert sent["reports"] > 500 and sent["cases"] == 2 and sent["refused"] == 0, sent
    return sent


def reported(page: Page) -> int:
    return int(page.locator("#kpis").get_attribute("data-reported") or -1)


def post(day_system, path: str, body: dict, token: str) -> httpx.Response:
    return httpx.post(f"{day_system['ingest']}{path}", json=body, timeout=30,
                      headers={"Authorization": f"Bearer {token}"})


def test_a_county_command_centre_day(day_system, day_servers, county_token, morning, browser,
                                     artifacts):
    console = day_system["console"]
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai", device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Sign in with the token handed over in the address; it leaves the address bar at once.
    page.goto(f"{console}/#token={county_token}")
    expect(page.locator("#main")).to_be_visible(timeout=LIVE)
    expect(page.locator(".live")).to_have_attribute("data-state", "on", timeout=LIVE)
    expect(page.locator("table.children tbody tr")).to_have_count(15, timeout=LIVE)
    assert "token" not in page.url
    expect(page.locator("#scope-name")).to_contain_text("岳阳县")
    page.wait_for_function("document.querySelector('#kpis').dataset.reported > 500",
                           timeout=LIVE)
    cases = page.locator(".alert.kind-case")
    expect(cases).to_have_count(2, timeout=LIVE)
    # The case found 100 minutes ago has under 30 minutes left: highlighted.
    expect(page.locator(".alert.kind-case.urgent")).to_have_count(1, timeout=LIVE)
    page.screenshot(path=artifacts / "01-county-morning.png", full_page=True)

    # A report posted through the API appears live: no reload, the figures move.
    before = reported(page)
    fever_before = int(page.locator('[data-metric="fever"] .metric-value').inner_text() or 0)
    unit = page.evaluate("""() => document.querySelector('#unit-list li')?.dataset.unit""")
    if not unit:  # before the day's first cutoff nobody is missing yet: they are pending
        page.click('[data-tab="pending"]')
        unit = page.evaluate("""() => document.querySelector('#unit-list li')?.dataset.unit""")
    assert unit, "some unit has still not reported"
    page.evaluate("window.__still_here = true")
    answer = post(day_system, "/v1/reports", {"unit": unit, "day": today(), "reporter": "王医生",
                                              "values": {"fever": 2, "ili": 1}}, county_token)
    assert answer.status_code == 201, answer.text
    page.wait_for_function(f"document.querySelector('#kpis').dataset.reported == {before + 1}",
                           timeout=LIVE)
    expect(page.locator('[data-metric="fever"] .metric-value')).to_have_text(
        str(fever_before + 2), timeout=LIVE)
    assert page.evaluate("window.__still_here") is True  # the same page, never reloaded

    # A fever case found now opens an alert, which arrives live with its two-hour clock.
    found = datetime.now(UTC) - timedelta(minutes=3)
    case = post(day_system, "/v1/cases", {
        "unit": CLINIC, "kind": "fever", "found_at": found.isoformat(), "temperature": 38.6,
        "symptoms": ["cough"], "person_ref": "P-e2e001", "case_id": str(uuid.uuid4())},
        county_token)
    assert case.status_code == 201, case.text
    known = {cases.nth(i).get_attribute("data-alert") for i in range(2)}
    expect(cases).to_have_count(3, timeout=LIVE)
    [alert_id] = {cases.nth(i).get_attribute("data-alert") for i in range(3)} - known
    fresh = page.locator(f'[data-alert="{alert_id}"]')
    expect(fresh).to_contain_text("长源社区卫生服务站")
    expect(fresh.locator(".countdown")).to_contain_text("剩余 1:5", timeout=LIVE)
    page.screenshot(path=artifacts / "02-new-alert-live.png", full_page=True)

    # Acknowledge it from the page; the alerts service records who did.
    fresh.locator('[data-action="acknowledge"]').click()
    expect(page.locator(f'[data-alert="{alert_id}"] .chip-ack')).to_be_visible(timeout=LIVE)
    stored = httpx.get(f"{day_system['alerts']}/v1/alerts/{alert_id}", timeout=30,
                       headers={"Authorization": f"Bearer {county_token}"}).json()
    assert stored["status"] == "acknowledged"
    assert stored["acknowledged_by"]

    # And close it with what was done.
    page.locator(f'[data-alert="{alert_id}"] [data-action="close"]').click()
    page.select_option("dialog select[name=outcome]", "referred")
    page.fill("dialog textarea[name=note]", "已转诊至县人民医院发热门诊")
    page.click("dialog button[type=submit]")
    expect(page.locator(f'[data-alert="{alert_id}"]')).to_have_count(0, timeout=LIVE)
    page.screenshot(path=artifacts / "03-alert-handled.png", full_page=True)

    # Drill down: the town, then the village and its units, then one unit's history.
    page.locator(f'tr[data-node="{TOWN}"]').click()
    expect(page.locator(".crumbs b")).to_have_text("公田镇", timeout=LIVE)
    page.screenshot(path=artifacts / "04-town.png", full_page=True)
    page.locator(f'tr[data-node="{VILLAGE}"]').click()
    expect(page.locator(f'tr[data-unit="{CLINIC}"]')).to_be_visible(timeout=LIVE)
    page.locator(f'tr[data-unit="{CLINIC}"]').click()
    expect(page.locator("dialog .unit-history")).to_be_visible(timeout=LIVE)
    expect(page.locator("dialog .unit-history")).to_contain_text("38.6")
    page.screenshot(path=artifacts / "05-unit-history.png")
    page.keyboard.press("Escape")
    page.go_back()
    page.go_back()
    expect(page.locator(".crumbs b")).to_have_text("岳阳县", timeout=LIVE)
    expect(cases).to_have_count(2, timeout=LIVE)  # the county's alerts again, not the village's

    # English on a switch, and back.
    page.click("#lang")
    expect(page.locator("#children-title")).to_have_text("Reporting below")
    page.screenshot(path=artifacts / "06-county-english.png", full_page=True)
    page.click("#lang")
    expect(page.locator("#children-title")).to_have_text("下级报送情况")

    # The daily summary: a printable page and a CSV with the same figures.
    summary = context.new_page()
    summary.goto(f"{console}/summary?node={COUNTY}&day={today()}")
    expect(summary.locator(".doc-head h1")).to_contain_text("岳阳县", timeout=LIVE)
    expect(summary.locator(".doc-lead")).to_contain_text("报告率")
    summary.screenshot(path=artifacts / "07-daily-summary.png", full_page=True)
    summary.emulate_media(media="print")
    summary.pdf(path=artifacts / "07-daily-summary.pdf", format="A4")
    summary.close()
    response = context.request.get(f"{console}/api/summary/{COUNTY}/csv?day={today()}")
    assert response.ok and "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.body().decode("utf-8-sig"))))
    total = next(r for r in rows if r and r[0] == COUNTY)
    assert int(total[3]) == reported(page)  # 已报, as the page shows
    if stored["day"] == today():  # a case found just before midnight belongs to yesterday
        assert any("已办结" in cell for r in rows for cell in r)  # the closed alert is listed

    # On a phone-sized screen the same picture, one column.
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN",
                                timezone_id="Asia/Shanghai", device_scale_factor=2,
                                is_mobile=True, has_touch=True)
    mobile = phone.new_page()
    mobile.goto(f"{console}/#token={county_token}")
    expect(mobile.locator("table.children tbody tr")).to_have_count(15, timeout=LIVE)
    width = mobile.evaluate("document.documentElement.scrollWidth")
    assert width <= 400, f"the page scrolls sideways on a phone: {width}px"
    mobile.screenshot(path=artifacts / "08-phone.png", full_page=True)
    phone.close()

    assert not errors, errors
    context.close()


def test_a_unit_reports_through_the_form(day_system, day_servers, county_token, morning,
                                         browser, artifacts):
    console = day_system["console"]
    missing = httpx.get(f"{day_system['aggregate']}/v1/rollups/{TOWN}/completeness",
                        params={"day": today()}, timeout=30,
                        headers={"Authorization": f"Bearer {county_token}"}
                        ).json()["completeness"]
    # Missing after its cutoff, pending before it: either has still to report.
    unreported = missing["missing_units"] + missing["pending_units"]
    clinic = next(u["unit"] for u in unreported if u["unit_type"] == "village_clinic")
    token = credential(day_servers, "unit", clinic, "村医 周芳")
    context = browser.new_context(viewport={"width": 1100, "height": 1000}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.goto(f"{console}/report#token={token}")
    expect(page.locator("#unit")).to_have_value(clinic, timeout=LIVE)
    # The clinic's form: its own metrics, not a school's nor a pharmacy's.
    expect(page.locator("#form-name")).to_contain_text("医疗卫生机构日报", timeout=LIVE)
    expect(page.locator('[data-metric="fever"]')).to_be_visible()
    expect(page.locator('[data-metric="sick_absence"]')).to_have_count(0)
    expect(page.locator('[data-metric="fever_medicine_sales"]')).to_have_count(0)

    # Wrong input: the error shows next to the field at fault.
    page.fill('[data-metric="nat_tests"]', "1")
    page.fill('[data-metric="nat_positive"]', "3")
    page.click("#report-form button[type=submit]")
    expect(page.locator('[data-error="values.nat_positive"]')).to_contain_text(
        "核酸", timeout=LIVE)
    expect(page.locator('[data-field="values.nat_positive"]')).to_have_class("invalid")
    # A fever case without a temperature is refused on the temperature field.
    page.click("#case-form button[type=submit]")
    expect(page.locator('[data-error="temperature"]')).not_to_be_empty(timeout=LIVE)
    expect(page.locator('[data-field="temperature"]')).to_have_class("invalid")
    expect(page.locator('[data-error="values.nat_positive"]')).not_to_be_empty()
    page.screenshot(path=artifacts / "09-form-errors.png", full_page=True)

    # The zero report in one click, with a note.
    page.fill('[data-metric="nat_tests"]', "")
    page.fill('[data-metric="nat_positive"]', "")
    page.fill("#note", "今日村医外出培训,由乡镇卫生院代为值守")
    page.click("#zero")
    expect(page.locator("#report-receipt")).to_contain_text("零报告已提交", timeout=LIVE)
    page.screenshot(path=artifacts / "10-form-zero-report.png", full_page=True)
    history = httpx.get(f"{day_system['ingest']}/v1/units/{clinic}/reports", timeout=30,
                        headers={"Authorization": f"Bearer {token}"}).json()
    assert [(r["day"], r["zero"], r["reporter"], r["note"]) for r in history] == [
        (today(), True, "村医 周芳", "今日村医外出培训,由乡镇卫生院代为值守")]
    context.close()


def test_nobody_sees_another_area(day_system, day_servers, morning):
    console = day_system["console"]
    town = credential(day_servers, "operator", TOWN, "公田镇值班员")
    unit = credential(day_servers, "unit", CLINIC, "村医")
    as_town = {"Authorization": f"Bearer {town}"}
    with httpx.Client(base_url=console, timeout=30) as client:
        assert client.get(f"/api/overview/{TOWN}", headers=as_town).status_code == 200
        for path in (f"/api/overview/{COUNTY}", "/api/overview/430621109",
                     f"/api/alerts?node={COUNTY}", f"/api/summary/{COUNTY}"):
            refused = client.get(path, headers=as_town)
            assert refused.status_code == 403, (path, refused.text)
            assert refused.json()["errors"][0]["code"] == "outside_area"
        # The form's unit picker offers the operator's own units only.
        picked = client.get("/api/units", params={"q": "卫生"}, headers=as_town).json()
        assert picked and all(u["node"].startswith(TOWN) for u in picked)
        assert client.get("/api/units", params={"q": "430621109"}, headers=as_town).json() == []
        # A unit's token opens the form, not the command centre's pages.
        assert client.get(f"/api/overview/{TOWN}",
                          headers={"Authorization": f"Bearer {unit}"}).status_code == 403
        assert client.get(f"/api/overview/{TOWN}").status_code == 401
        assert client.post("/api/session", json={"token": "rc_nonsense"}).status_code == 401
