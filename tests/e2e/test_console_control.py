"""The ledger of people under control on the console (一人一案): a town's operator sees the
register with names, today's test due and the team's sign-off, records the test and a member's
signature with a click; the county's operator sees the same people by pseudonym only."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import expect

from rollcall.reference import announce
from tests.conftest import eventually
from tests.e2e.conftest import credential, in_thread
from tests.integration.ledger_support import add_village

ZONE = ZoneInfo("Asia/Shanghai")
# A county of this file's own: the person's past days raise alerts no other page test must see.
COUNTY, TOWN, VILLAGE = "430695", "430695100", "430695100001"
NAME = "孙管控"
LIVE = 30_000


def test_the_control_page_shows_the_days_work_and_keeps_names_to_the_town(
        day_system, day_servers, browser, artifacts):
    in_thread(lambda: add_village(day_servers.database_url, VILLAGE))
    in_thread(lambda: announce(day_servers.nats_url, ["nodes"]))
    town = credential(day_servers, "operator", TOWN, "镇指挥部 李员")
    county = credential(day_servers, "operator", COUNTY, "县指挥部 王员")
    today = datetime.now(ZONE).date()

    def register() -> httpx.Response | None:  # once the ledger has loaded the new village
        made = httpx.post(f"{day_system['ledger']}/v1/control/people", timeout=30,
                          headers={"Authorization": f"Bearer {town}"}, json={
                              "village": VILLAGE, "name": NAME, "contact": "13700000000",
                              "category": "close_contact", "regime": "7+7", "site": "县隔离点",
                              "start_day": (today - timedelta(days=2)).isoformat(),
                              "team": [{"role": "village_cadre", "staff": "赵村干"},
                                       {"role": "doctor", "staff": "钱医生"}]})
        return made if made.status_code != 422 else None

    made = eventually(register, timeout=30)
    assert made is not None and made.status_code == 201, made and made.text
    person = made.json()
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # The town: reached from the console's navigation; names, today's test, the sign-off.
    page.goto(f"{day_system['console']}/#token={town}")
    expect(page.locator("#main")).to_be_visible(timeout=LIVE)
    page.locator("#control-link").click()
    expect(page).to_have_url(f"{day_system['console']}/control")
    row = page.locator(f'#register tr[data-person="{person["person_id"]}"]')
    expect(row).to_contain_text(NAME, timeout=LIVE)
    expect(row).to_contain_text(person["pseudonym"])
    expect(row).to_contain_text("集中隔离")
    test = page.locator(f'#tests tr[data-person="{person["person_id"]}"]')
    expect(test).to_contain_text(today.isoformat())
    test.locator('button[name="test"]').click()
    expect(test).to_contain_text("已完成", timeout=LIVE)
    sign = page.locator(f'#signoffs tr[data-person="{person["person_id"]}"]')
    expect(page.locator("#missing-count")).not_to_have_text("0")
    sign.locator('button[name="sign"]').first.click()
    expect(sign).to_contain_text("已签", timeout=LIVE)
    sign.locator('button[name="sign"]').first.click()
    expect(sign).to_contain_text("已完成", timeout=LIVE)
    page.screenshot(path=str(artifacts / "control-town.png"), full_page=True)
    recorded = httpx.get(f"{day_system['ledger']}/v1/control/people/{person['person_id']}",
                         headers={"Authorization": f"Bearer {town}"}, timeout=30).json()
    assert today.isoformat() in recorded["tests_done"]
    context.close()

    # The county: the same person by pseudonym, never the name.
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{day_system['console']}/#token={county}")
    expect(page.locator("#main")).to_be_visible(timeout=LIVE)
    page.goto(f"{day_system['console']}/control")
    row = page.locator(f'#register tr[data-person="{person["person_id"]}"]')
    expect(row).to_contain_text(person["pseudonym"], timeout=LIVE)
    expect(row.locator("td.name")).to_have_text("—")
    assert NAME not in page.content()
    page.screenshot(path=str(artifacts / "control-county.png"), full_page=True)
    context.close()
    assert not errors, errors
