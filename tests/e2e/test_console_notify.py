"""Who was told of an alert, on the console: the county's operator puts a village's duty roster
on the roster page, a fever case at the village opens an alert, and the alert's card and its
detail say the person on duty was sent an SMS ("短信已发送 13:30 张某"); once the gateway's
receipt comes, that it was delivered ("短信已送达"), on the card and in the alert's own history.
A console whose notify does not answer still lists the alerts, and says their deliveries are
unavailable."""

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import expect

from rollcall.embedded import free_port
from tests.conftest import eventually, start_service
from tests.e2e.conftest import RECEIPT_SECRET, credential

ZONE = ZoneInfo("Asia/Shanghai")
COUNTY, VILLAGE = "430621", "430621108002"  # 杨冲社区: the other files' cases are elsewhere
LIVE = 45_000  # ms: a delivery goes out after the alert, and the page asks again every 20 s


def today() -> str:
    return datetime.now(ZONE).date().isoformat()


def test_an_alert_says_who_was_told_and_the_roster_is_put_from_the_console(
        day_system, day_servers, sms_gateway, browser, artifacts):
    token = credential(day_servers, "operator", COUNTY, "县指挥部值班员 王芳")
    auth = {"Authorization": f"Bearer {token}"}
    staff = httpx.post(f"{day_system['notify']}/v1/staff/people", timeout=30,
                       headers={**auth, "Content-Type": "text/csv"},
                       content=f"code,name,node,phone\nzhangmou,张某,{VILLAGE},13912340001\n"
                               f"liu,刘带班,{VILLAGE},13912340002\n")
    assert staff.status_code == 200, staff.text
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # The roster page, reached from the console's navigation: nobody on duty yet; two shifts.
    page.goto(f"{day_system['console']}/#token={token}")
    expect(page.locator("#main")).to_be_visible(timeout=LIVE)
    page.locator("#roster-link").click()
    expect(page).to_have_url(f"{day_system['console']}/roster")
    page.goto(f"{day_system['console']}/roster?node={VILLAGE}")
    expect(page.locator("#shifts")).to_contain_text("当日尚未排班", timeout=LIVE)
    page.locator("#add").click()
    page.locator("#add").click()
    page.locator('tr[data-shift="0"] select[name="person"]').select_option("zhangmou")
    page.locator('tr[data-shift="1"] select[name="person"]').select_option("liu")
    page.locator('tr[data-shift="1"] select[name="role"]').select_option("leader")
    page.locator("#save").click()
    expect(page.locator("#toast")).to_contain_text("已保存", timeout=LIVE)
    roster = httpx.get(f"{day_system['notify']}/v1/rosters/{VILLAGE}/{today()}", headers=auth,
                       timeout=30).json()
    assert {(s["person"], s["role"]) for s in roster["shifts"]} == {
        ("zhangmou", "on_duty"), ("liu", "leader")}
    expect(page.locator("#shifts tbody tr")).to_have_count(2)  # read again after saving
    shown = page.eval_on_selector_all("#shifts tbody tr", """rows => rows.map(r =>
        [r.querySelector('[name=person]').value, r.querySelector('[name=role]').value])""")
    assert sorted(map(tuple, shown)) == [("liu", "leader"), ("zhangmou", "on_duty")]
    page.screenshot(path=artifacts / "20-roster.png", full_page=True)

    # A fever case at the village: its alert tells the person on duty by SMS, and says so.
    found = datetime.now(UTC) - timedelta(minutes=2)
    case = httpx.post(f"{day_system['ingest']}/v1/cases", headers=auth, timeout=30, json={
        "unit": f"{VILLAGE}-CL", "kind": "fever", "found_at": found.isoformat(),
        "temperature": 38.9, "person_ref": "P-e2e-notify", "case_id": str(uuid.uuid4())})
    assert case.status_code == 201, case.text
    page.goto(f"{day_system['console']}/")
    card = page.locator(".alert.kind-case", has_text="张某")
    expect(card.locator(".delivery-sent")).to_contain_text("短信已发送", timeout=LIVE)
    expect(card.locator(".delivery-sent")).to_contain_text("张某")
    page.screenshot(path=artifacts / "21-alert-deliveries.png", full_page=True)

    card.locator('[data-action="details"]').click()
    detail = page.locator(".alert-detail")
    expect(detail.locator(".changes")).to_contain_text("发出", timeout=LIVE)
    expect(detail.locator("tr.delivery-sent")).to_contain_text("张某")
    expect(detail.locator("tr.delivery-sent")).to_contain_text("值班")
    page.screenshot(path=artifacts / "22-alert-detail.png", full_page=True)

    # The gateway's receipt: the SMS reached 张某's phone. The card says so, and the alert's
    # own history (the alerts service, from notify's event) says it beside its changes.
    sms = [r for r in sms_gateway.to("/sms") if r.body.get("to") == "13912340001"][-1]
    receipt = httpx.post(f"{day_system['notify']}/v1/receipts/sms", timeout=30,
                         headers={"X-Receipt-Secret": RECEIPT_SECRET},
                         json={"message_id": sms.message_id, "status": "delivered"})
    assert receipt.json() == {"results": ["applied"]}, receipt.text
    alert = f"{day_system['alerts']}/v1/alerts/{card.get_attribute('data-alert')}"
    assert eventually(lambda: "delivered" in {t["outcome"] for t in httpx.get(
        alert, headers=auth, timeout=30).json()["told"]}, timeout=30)
    page.locator("#dialog").evaluate("d => d.close()")
    page.goto(f"{day_system['console']}/")
    card = page.locator(".alert.kind-case", has_text="张某")
    expect(card.locator(".delivery-delivered")).to_contain_text("短信已送达", timeout=LIVE)
    card.locator('[data-action="details"]').click()
    detail = page.locator(".alert-detail")
    expect(detail.locator(".changes li.told-delivered")).to_contain_text("短信已送达",
                                                                        timeout=LIVE)
    expect(detail.locator(".changes li.told-delivered")).to_contain_text("张某")
    page.screenshot(path=artifacts / "24-alert-delivered.png", full_page=True)
    assert not errors, errors
    context.close()


def test_without_notify_the_console_lists_alerts_and_says_deliveries_are_unavailable(
        day_system, day_servers, browser, artifacts, tmp_path):
    console = start_service(
        day_servers, "console", tmp_path,
        ROLLCALL_CONSOLE_INGEST_URL=day_system["ingest"],
        ROLLCALL_CONSOLE_AGGREGATE_URL=day_system["aggregate"],
        ROLLCALL_CONSOLE_ALERTS_URL=day_system["alerts"],
        ROLLCALL_CONSOLE_NOTIFY_URL=f"http://127.0.0.1:{free_port()}")  # nobody listens
    try:
        token = credential(day_servers, "operator", COUNTY, "县指挥部值班员 王芳")
        auth = {"Authorization": f"Bearer {token}"}
        found = datetime.now(UTC) - timedelta(minutes=1)
        case = httpx.post(f"{day_system['ingest']}/v1/cases", headers=auth, timeout=30, json={
            "unit": f"{VILLAGE}-CL", "kind": "fever", "found_at": found.isoformat(),
            "temperature": 38.2, "person_ref": "P-e2e-down", "case_id": str(uuid.uuid4())})
        assert case.status_code == 201, case.text
        alerts = httpx.get(f"{console.url}/api/alerts", headers=auth, timeout=30)
        assert alerts.status_code == 200, alerts.text
        assert alerts.json() and all(a["deliveries"] is None for a in alerts.json())
        one = httpx.get(f"{console.url}/api/alerts/{alerts.json()[0]['alert_id']}/deliveries",
                        headers=auth, timeout=30)
        assert one.status_code == 502  # the refusal "unavailable", as for any service down

        page = browser.new_page(locale="zh-CN", timezone_id="Asia/Shanghai")
        page.goto(f"{console.url}/#token={token}")
        expect(page.locator(".alert.kind-case").first).to_be_visible(timeout=LIVE)
        expect(page.locator(".alert.kind-case .deliveries.unavailable").first).to_contain_text(
            "通知服务暂不可用")
        page.screenshot(path=artifacts / "23-notify-down.png", full_page=True)
        page.close()
    finally:
        console.stop()
