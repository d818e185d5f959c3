"""逐级审核上报 in a real browser: a town's operator sends a clinic's report back from the review
page, the clinic reads the reason on its form and corrects, the town confirms its day, and the
county's confirmation panel shows the town confirmed with its figures beside a town that has
not; a later correction shows at the county as "更正 after confirmation" with its difference."""

from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import expect

from tests.e2e.conftest import credential

ZONE = ZoneInfo("Asia/Shanghai")
COUNTY, TOWN, OTHER_TOWN = "430621", "430621112", "430621113"  # 新开镇, 步仙镇: nobody else's
CLINIC = "430621112001-CL"  # 新开镇寿溪社区卫生服务站
LIVE = 30_000  # ms


def today() -> str:
    return datetime.now(ZONE).date().isoformat()


def test_a_town_sends_back_a_report_confirms_its_day_and_the_county_sees_it(
        day_system, day_servers, browser, artifacts):
    town = credential(day_servers, "operator", TOWN, "新开镇值班员 周敏")
    county = credential(day_servers, "operator", COUNTY, "县指挥部值班员 李明")
    clinic = credential(day_servers, "unit", CLINIC, "寿溪卫生服务站 陈医生")
    first = httpx.post(f"{day_system['ingest']}/v1/reports", timeout=30,
                       headers={"Authorization": f"Bearer {clinic}"},
                       json={"unit": CLINIC, "day": today(), "reporter": "陈医生",
                             "values": {"fever": 3, "ili": 1}})
    assert first.status_code in (201, 409), first.text  # 409: a simulated morning sent it
    console = day_system["console"]
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    errors: list[str] = []

    # The town's review page: the clinic's report, sent back with a reason.
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{console}/review#token={town}")
    row = page.locator(f'#units tr[data-unit="{CLINIC}"]')
    expect(row).to_contain_text("版", timeout=LIVE)
    row.locator('input[name="reason"]').fill("发热人数与门诊日志不符,请核实后更正")
    row.locator('button[type="submit"]').click()
    expect(row.locator(".sendback-status")).to_contain_text("待更正", timeout=LIVE)
    page.locator("#confirm").click()  # refused: a report below is sent back
    expect(page.locator("#confirm-error")).to_contain_text("退回", timeout=LIVE)
    page.screenshot(path=artifacts / "30-review-sent-back.png", full_page=True)

    # The clinic's form shows why, and takes the correction.
    unit_context = browser.new_context(viewport={"width": 420, "height": 900}, locale="zh-CN",
                                       timezone_id="Asia/Shanghai")
    form = unit_context.new_page()
    form.on("pageerror", lambda exc: errors.append(str(exc)))
    form.goto(f"{console}/report#token={clinic}")
    notice = form.locator(f'.sendback-notice[data-day="{today()}"]')
    expect(notice).to_contain_text("发热人数与门诊日志不符", timeout=LIVE)
    form.screenshot(path=artifacts / "31-form-sent-back.png", full_page=True)
    notice.get_by_role("button", name="更正此报告").click()
    expect(form.locator('[data-metric="fever"]')).not_to_have_value("", timeout=LIVE)
    form.locator('[data-metric="fever"]').fill("7")
    form.locator('[data-metric="ili"]').fill("1")
    notice.locator('input[name="reason"]').fill("核对门诊日志后为7人")
    notice.get_by_role("button", name="提交更正").click()
    expect(form.locator("#sendbacks")).to_be_hidden(timeout=LIVE)  # cleared by the correction

    # The town sees it corrected, and confirms its day.
    page.reload()
    expect(row.locator(".sendback-status")).to_contain_text("已更正", timeout=LIVE)
    expect(row).to_contain_text("核对门诊日志后为7人")
    page.locator("#confirm").click()
    expect(page.locator("#node-status")).to_contain_text("已确认", timeout=LIVE)
    expect(page.locator("#node-status .confirmed")).to_contain_text("周敏")
    page.screenshot(path=artifacts / "32-review-confirmed.png", full_page=True)

    # The county's confirmation panel: the town confirmed, with its figures; another town not.
    panel = context.new_page()
    panel.on("pageerror", lambda exc: errors.append(str(exc)))
    panel.goto(f"{console}/review#token={county}")
    expect(panel.locator("#units-panel")).to_be_hidden()
    confirmed = panel.locator(f'#children tr[data-node="{TOWN}"]')
    expect(confirmed).to_contain_text("已确认", timeout=LIVE)
    expect(confirmed.locator(".confirmed")).to_contain_text("发热")
    expect(panel.locator(f'#children tr[data-node="{OTHER_TOWN}"]')).to_contain_text("未确认")

    # A correction after the confirmation: marked at the county, with the difference, and the
    # town's confirmation reopened.
    again = httpx.post(f"{day_system['ingest']}/v1/reports/{CLINIC}/{today()}/corrections",
                       timeout=30, headers={"Authorization": f"Bearer {clinic}"},
                       json={"values": {"fever": 9, "ili": 1}, "reporter": "陈医生",
                             "reason": "补报2名晚间就诊发热病人"})
    assert again.status_code == 201, again.text
    for _ in range(30):
        panel.reload()
        if "更正 after confirmation" in (confirmed.text_content(timeout=LIVE) or ""):
            break
        panel.wait_for_timeout(1000)
    expect(confirmed).to_contain_text("更正 after confirmation")
    expect(confirmed.locator(".difference")).to_contain_text("+2")
    expect(confirmed).to_contain_text("确认后更正")
    panel.screenshot(path=artifacts / "33-county-panel-changed.png", full_page=True)
    assert not errors, errors
