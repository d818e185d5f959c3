"""A real browser (Debian's chromium driven by Playwright) against the console, which runs as
production runs it beside the three services, on NATS and PostgreSQL servers of its own: the
simulated day fills a county's day with reports and cases, which the other tests must not see."""

import asyncio
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rollcall.embedded import EmbeddedNats, EmbeddedPostgres
from rollcall.migrate import upgrade
from rollcall.reference import load_demo_and_announce
from tests.conftest import Servers, start_service
from tests.integration.notify_support import ALLOWED, Gateway

CHROMIUM = os.environ.get("ROLLCALL_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-dev-shm-usage"]


def in_thread(make_coroutine):
    """Runs a coroutine to its end on a thread of its own: Playwright's sync API keeps an event
    loop running on the test's thread, where asyncio.run may not start another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make_coroutine())).result()


def credential(servers: Servers, kind: str, scope: str, holder: str,
               sector: str | None = None) -> str:
    """A token issued straight into the session's database, as `rollcall token` would."""
    from shared.auth import issue
    from shared.clock import utc_now
    from shared.db import make_engine, make_sessionmaker

    async def run() -> str:
        engine = make_engine(servers.database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session, session.begin():
                token, _ = await issue(session, kind, scope, holder, utc_now(),  # type: ignore[arg-type]
                                       sector)
                return token
        finally:
            await engine.dispose()

    return in_thread(run)


@pytest.fixture(scope="package")
def day_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("day-servers")
    nats, pg = EmbeddedNats(root / "nats"), EmbeddedPostgres(root / "postgres", durable=False)
    try:
        nats_url = nats.start()
        database_url = pg.start()
        upgrade(database_url)
        asyncio.run(load_demo_and_announce(database_url, nats_url))
        yield Servers(nats_url, database_url)
    finally:
        pg.stop()
        nats.stop()


RECEIPT_SECRET = "e2e-receipt-secret"  # the SMS gateway's, for its delivery receipts


@pytest.fixture(scope="package")
def sms_gateway() -> Iterator[Gateway]:
    """The local SMS gateway notify sends to: what it took, and the ids it answered with."""
    gateway = Gateway()
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="package")
def day_system(day_servers: Servers, sms_gateway: Gateway,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The six services and the console, each in its own process as production runs them;
    notify sends its SMS to a local gateway (`sms_gateway`: its address), whose receipts it
    takes with RECEIPT_SECRET."""
    log_dir = tmp_path_factory.mktemp("day-logs")
    running = {}
    gateway = sms_gateway
    try:
        for name in ("ingest", "aggregate", "alerts"):
            running[name] = start_service(day_servers, name, log_dir)
        running["notify"] = start_service(day_servers, "notify", log_dir,
                                          ROLLCALL_NOTIFY_SMS_URL=f"{gateway.url}/sms",
                                          ROLLCALL_NOTIFY_ALLOWED_HOSTS=ALLOWED,
                                          ROLLCALL_NOTIFY_SMS_RECEIPT_SECRET=RECEIPT_SECRET,
                                          ROLLCALL_NOTIFY_ALERTS_URL=running["alerts"].url)
        running["signoff"] = start_service(day_servers, "signoff", log_dir)
        running["ledger"] = start_service(day_servers, "ledger", log_dir,
                                          ROLLCALL_LEDGER_INGEST_URL=running["ingest"].url)
        running["console"] = start_service(
            day_servers, "console", log_dir,
            ROLLCALL_CONSOLE_LEDGER_URL=running["ledger"].url,
            ROLLCALL_CONSOLE_INGEST_URL=running["ingest"].url,
            ROLLCALL_CONSOLE_AGGREGATE_URL=running["aggregate"].url,
            ROLLCALL_CONSOLE_ALERTS_URL=running["alerts"].url,
            ROLLCALL_CONSOLE_NOTIFY_URL=running["notify"].url,
            ROLLCALL_CONSOLE_SIGNOFF_URL=running["signoff"].url)
        yield {**{name: s.url for name, s in running.items()}, "sms_gateway": gateway.url}
    finally:
        for service in reversed(running.values()):
            service.stop()


# Package scope: Playwright's sync API keeps an event loop running on the test thread while it
# is open, where the other tests' asyncio.run would refuse to start; it closes with this package.
@pytest.fixture(scope="package")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: `make test` installs Debian's chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
