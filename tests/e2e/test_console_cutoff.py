"""A cutoff passing under a command centre's eyes, in a real browser set to UTC: a village's unit
with its own cutoff a few seconds away shows as pending (待报) with the next cutoff counting down
in Shanghai time; when the cutoff passes it moves to missing (漏报) without a reload and without
any report; a unit the village exempts (免报) from the console's calendar panel shows apart with
its reason. Screenshots go to
test-artifacts/."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
from playwright.sync_api import expect

from rollcall.reference import announce
from shared.db import make_engine, make_sessionmaker
from shared.registry import store
from shared.registry.unit_types import unit_types
from tests.e2e.conftest import credential, in_thread

ZONE = ZoneInfo("Asia/Shanghai")
VILLAGE = "430621104001"
PENDING, CLOSED = f"{VILLAGE}-E2E-CUT", f"{VILLAGE}-E2E-SHUT"
LIVE = 60_000  # ms


def _register(servers, cutoff) -> None:
    today = datetime.now(ZONE).date()

    async def run() -> None:
        engine = make_engine(servers.database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                await store.upsert_units(session, [
                    {"code": PENDING, "name": "高湾社区测试药店", "unit_type": "pharmacy",
                     "sector": unit_types()["pharmacy"].sector, "node": VILLAGE, "cutoff": cutoff},
                    {"code": CLOSED, "name": "高湾社区停业药店", "unit_type": "pharmacy",
                     "sector": unit_types()["pharmacy"].sector, "node": VILLAGE}], today)
        finally:
            await engine.dispose()
        await announce(servers.nats_url, ["units"])

    in_thread(run)


def test_a_cutoff_passes_live_in_the_deployments_zone(day_system, day_servers, browser,
                                                      artifacts) -> None:
    # The unit's own cutoff: 25 seconds from now, in the deployment's zone. What comes before it
    # (page, live updates, the exemption, the pending list) takes 3 s on an idle machine.
    cutoff_at = (datetime.now(ZONE) + timedelta(seconds=25)).replace(microsecond=0)
    if cutoff_at.date() != datetime.now(ZONE).date():  # not across midnight
        cutoff_at = datetime.now(ZONE) + timedelta(minutes=2)
    _register(day_servers, cutoff_at.time())
    token = credential(day_servers, "operator", VILLAGE, "高湾社区值班员")

    context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN",
                                  timezone_id="UTC", device_scale_factor=1)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{day_system['console']}/#token={token}")
    expect(page.locator("#main")).to_be_visible(timeout=LIVE)
    expect(page.locator(".live")).to_have_attribute("data-state", "on", timeout=LIVE)

    # The village declares one of its units closed (免报) from the console's calendar panel.
    page.locator("#declare").click()
    page.fill("dialog input[name=unit_code]", CLOSED)
    page.fill("dialog input[name=reason]", "停业整顿")
    page.click("dialog button[type=submit]")
    expect(page.locator("#calendars li")).to_contain_text("停业整顿", timeout=LIVE)
    stored = httpx.get(f"{day_system['aggregate']}/v1/calendars", timeout=30,
                       headers={"Authorization": f"Bearer {token}"}).json()
    assert [(x["unit_code"], x["declared_by"]) for x in stored] == [(CLOSED, "高湾社区值班员")]

    # Before the cutoff: pending, the next cutoff shown in Shanghai time, not the browser's.
    page.locator('.tab[data-tab="pending"]').click()
    expect(page.locator(f'#unit-list li[data-unit="{PENDING}"]')).to_be_visible(timeout=LIVE)
    expect(page.locator("#next-cutoff-time")).to_have_text(cutoff_at.strftime("%H:%M"),
                                                           timeout=LIVE)
    expect(page.locator("#cutoff-countdown")).to_contain_text("剩余")
    expect(page.locator('[data-kpi="exempt"] .kpi-value')).to_have_text("1")
    missing_before = int(page.locator("#kpis").get_attribute("data-missing") or -1)
    page.locator('.tab[data-tab="exempt"]').click()
    expect(page.locator(f'#unit-list li[data-unit="{CLOSED}"]')).to_contain_text("停业整顿")
    page.screenshot(path=artifacts / "06-before-the-cutoff.png", full_page=True)

    # The cutoff passes: no report, no reload; the figures move by themselves.
    page.evaluate("window.__still_here = true")
    page.locator('.tab[data-tab="missing"]').click()
    page.wait_for_function(
        f"document.querySelector('#kpis').dataset.missing == {missing_before + 1}",
        timeout=LIVE + 60_000)
    assert datetime.now(ZONE) > cutoff_at
    expect(page.locator(f'#unit-list li[data-unit="{PENDING}"]')).to_be_visible(timeout=LIVE)
    assert page.evaluate("window.__still_here") is True
    page.screenshot(path=artifacts / "07-after-the-cutoff.png", full_page=True)
    assert errors == []
    context.close()
