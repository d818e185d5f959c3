import httpx
from datetime import datetime
from zoneinfo import ZoneInfo
from tests.e2e.conftest import credential
from playwright.sync_api import expect

def test_smoke(day_system, day_servers, browser, artifacts):
    token = credential(day_servers, "operator", "430621", "县指挥部值班员 李明")
    day = datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
    import csv
    units = [l.split(",")[0] for l in open("shared/data/demo/units.csv").read().splitlines()[1:]]
    with httpx.Client(timeout=30) as c:
        for i, u in enumerate(units[:700]):
            r = c.post(day_system["ingest"] + "/v1/reports", json={"unit": u, "day": day, "reporter": "王", "values": {"fever": 1} if i % 9 == 0 else {}}, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code in (200, 201), r.text
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.on("console", lambda m: print("CONSOLE", m.text))
    page.on("pageerror", lambda e: print("PAGEERROR", e))
    page.goto(day_system["console"] + "/#token=" + token)
    page.wait_for_timeout(4000)
    page.screenshot(path=artifacts / "smoke-county.png", full_page=True)
    r = httpx.post(day_system["ingest"] + "/v1/reports", json={"unit": units[800], "day": day, "reporter": "王", "values": {"fever": 3}})
    page.wait_for_timeout(4000)
    print("reported", page.locator("#kpis").get_attribute("data-reported"))
    page.screenshot(path=artifacts / "smoke-county2.png", full_page=True)
