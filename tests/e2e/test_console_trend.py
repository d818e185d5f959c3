"""A town's trend in a real browser: the chart (uPlot, served by the console itself) over a
range, the metric chosen, its running total since a chosen day, and the period's totals as
aggregate folds them (a flow sums, a stock is its last day's figure); the presets; the range's
printable summary with its signature lines."""

import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import credential

ZONE = ZoneInfo("Asia/Shanghai")
TOWN, VILLAGE = "430621110", "430621110001"
LIVE = 30_000


def today() -> date:
    return datetime.now(ZONE).date()


@pytest.fixture(scope="module")
def town_token(day_servers) -> str:
    return credential(day_servers, "operator", TOWN, "月田镇值班员")


@pytest.fixture(scope="module")
def two_days(day_system, town_token) -> tuple[date, date]:
    """The two days before today (a simulator may fill today): fever 1 then 2, people under
    home observation 10 then 6."""
    d1, d2 = today() - timedelta(days=2), today() - timedelta(days=1)
    vc = {"returnees_risk": 1, "returnees_abroad": 0, "returnees_other_province": 0,
          "home_health_monitoring": 0, "central_isolation": 0}
    reports = [
        {"unit": f"{VILLAGE}-CL", "day": str(d1), "reporter": "王医生",
         "values": {"fever": 1, "ili": 0}},
        {"unit": f"{VILLAGE}-VC", "day": str(d1), "reporter": "李主任",
         "values": {**vc, "home_observation": 10}},
        {"unit": f"{VILLAGE}-CL", "day": str(d2), "reporter": "王医生",
         "values": {"fever": 2, "ili": 1}},
        {"unit": f"{VILLAGE}-VC", "day": str(d2), "reporter": "李主任",
         "values": {**vc, "home_observation": 6}},
    ]
    auth = {"Authorization": f"Bearer {town_token}"}
    sent = httpx.post(f"{day_system['ingest']}/v1/reports/bulk", json=reports, headers=auth,
                      timeout=30)
    assert sent.status_code < 300 and sent.json()["rejected"] == 0, sent.text
    for _ in range(150):
        view = httpx.get(f"{day_system['aggregate']}/v1/rollups/{VILLAGE}", headers=auth,
                         params={"start": str(d1), "end": str(d2)}, timeout=10).json()
        if view["completeness"]["reported"] >= 4:
            return d1, d2
        time.sleep(0.2)
    raise TimeoutError("aggregate did not apply the reports")


def test_a_towns_trend_with_its_running_totals_and_the_periods_totals(
        day_system, town_token, two_days, browser, artifacts):
    d1, d2 = two_days
    console = day_system["console"]
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{console}/trend?node={VILLAGE}&start={d1}&end={d2}&since={d1}"
              f"&metric=home_observation#token={town_token}")
    chart = page.locator("#chart")
    expect(chart.locator("canvas")).to_have_count(1, timeout=LIVE)  # uPlot drew it
    expect(chart).to_have_attribute("data-points", "2")
    expect(chart).to_have_attribute("data-metric", "home_observation")
    expect(page.locator("#title")).to_contain_text("安江社区")
    expect(page.locator("#chart-note")).to_contain_text("不累加")
    # The period's totals: the stock is its last day's figure, the flow the sum of the days.
    observed = page.locator('#totals-table tr[data-metric="home_observation"]')
    expect(observed.locator(".total-value")).to_have_text("6")
    expect(observed.locator(".running-value")).to_have_text("—")
    fever = page.locator('#totals-table tr[data-metric="fever"]')
    expect(fever.locator(".total-value")).to_have_text("3")
    expect(fever.locator(".running-value")).to_have_text("3")
    page.screenshot(path=artifacts / "08-trend-stock.png", full_page=True)

    # A flow: its daily figures and, on the right axis, the running total.
    page.select_option("#metric", "fever")
    expect(chart).to_have_attribute("data-metric", "fever")
    expect(page.locator("#chart-note")).to_contain_text("累计")
    expect(page.locator(".u-legend")).to_contain_text("累计")
    assert "metric=fever" in page.url
    # Only the second day shown, counted from the first: the running total still holds both.
    page.fill("#start", str(d2))
    page.click("#controls button[type=submit]")
    expect(chart).to_have_attribute("data-points", "1")
    expect(fever.locator(".total-value")).to_have_text("2")
    expect(page.locator('#totals-table tr[data-metric="fever"] .running-value')).to_have_text("3")
    page.screenshot(path=artifacts / "09-trend-flow.png", full_page=True)

    # This week's preset: Monday to today, as the API counts it.
    page.click("[data-period=week]")
    monday = today() - timedelta(days=today().weekday())
    expect(page.locator("#span")).to_contain_text(f"{monday} ~ {today()}")
    # A start after the running total's start is refused with its reason, named.
    page.fill("#start", str(d1))
    page.fill("#since", str(d2))
    page.click("#controls button[type=submit]")
    expect(page.locator("#error")).to_be_visible()

    # The range's printable summary carries the same foot as the spreadsheet.
    summary = context.new_page()
    summary.goto(f"{console}/summary?node={VILLAGE}&start={d1}&end={d2}")
    expect(summary.locator(".doc-head h1")).to_contain_text("汇总表", timeout=LIVE)
    expect(summary.locator(".signatures")).to_contain_text("填报人")
    for label in ("审核人", "填报时间", "盖章"):
        expect(summary.locator(".signatures")).to_contain_text(label)
    expect(summary.locator("#xlsx")).to_have_attribute(
        "href", f"/api/summary/{VILLAGE}/xlsx?start={d1}&end={d2}")
    summary.emulate_media(media="print")
    summary.pdf(path=artifacts / "10-range-summary.pdf", format="A4", landscape=True)
    context.close()
    assert errors == []
