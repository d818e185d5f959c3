"""Real servers for the whole test session: embedded NATS and PostgreSQL on free loopback ports,
or the servers named by ROLLCALL_NATS_URL / NATS_URL and ROLLCALL_DATABASE_URL / DATABASE_URL
(a fresh database is created there for the session)."""

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from rollcall.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from rollcall.migrate import upgrade
from rollcall.reference import load_demo_and_announce
from shared.settings import Settings


@dataclass(frozen=True)
class Servers:
    nats_url: str
    database_url: str

    def settings(self, **overrides) -> Settings:
        return Settings(nats_url=self.nats_url, database_url=self.database_url, **overrides)

    def env(self) -> dict[str, str]:
        return {**os.environ, "ROLLCALL_NATS_URL": self.nats_url,
                "ROLLCALL_DATABASE_URL": self.database_url}


def _env(*names: str) -> str | None:
    return next((os.environ[n] for n in names if os.environ.get(n)), None)


def _fresh_database(server_url: str) -> str:
    """A new database on a given server, so tests never touch a user's data."""
    url = make_url(Settings(database_url=server_url).database_url)
    name = f"rollcall_test_{uuid.uuid4().hex[:8]}"
    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()

    asyncio.run(create())
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("servers")
    nats_url = _env("ROLLCALL_NATS_URL", "NATS_URL")
    database_url = _env("ROLLCALL_DATABASE_URL", "DATABASE_URL")
    started: list = []
    if not nats_url:
        nats = EmbeddedNats(root / "nats")
        nats_url = nats.start()
        started.append(nats)
    if database_url:
        database_url = _fresh_database(database_url)
    else:
        pg = EmbeddedPostgres(root / "postgres", durable=False)
        database_url = pg.start()
        started.append(pg)
    try:
        upgrade(database_url)
        asyncio.run(load_demo_and_announce(database_url, nats_url))
        yield Servers(nats_url, database_url)
    finally:
        for server in reversed(started):
            server.stop()


@dataclass
class RunningService:
    name: str
    url: str
    proc: subprocess.Popen

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:  # never leave a service running after the tests
                self.proc.kill()
                self.proc.wait(10)
                raise


def start_service(servers: Servers, name: str, log_dir: Path, port: int | None = None,
                  **env: str) -> RunningService:
    """A service as production runs it: `rollcall serve NAME`, in its own process (on `port`,
    e.g. the one a killed instance had, or a free one)."""
    port = port or free_port()
    log = open(log_dir / f"{name}-{port}.log", "ab")  # a restart on the same port appends
    proc = subprocess.Popen([sys.executable, "-m", "rollcall", "serve", name, "--port", str(port)],
                            env={**servers.env(), **env}, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {(log_dir / f'{name}-{port}.log').read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return RunningService(name, url, proc)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise TimeoutError(f"{name} not ready")


@pytest.fixture(scope="session")
def system(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The services running as separate processes against the session's servers."""
    log_dir = tmp_path_factory.mktemp("logs")
    running = {name: start_service(servers, name, log_dir)
               for name in ("ingest", "aggregate", "alerts")}
    running["notify"] = start_service(servers, "notify", log_dir,
                                      ROLLCALL_NOTIFY_ALERTS_URL=running["alerts"].url)
    try:
        yield {name: s.url for name, s in running.items()}
    finally:
        stuck = []
        for service in running.values():
            try:
                service.stop()
            except subprocess.TimeoutExpired:
                stuck.append(service.name)
        assert not stuck, f"did not stop on SIGTERM within 30 s: {stuck}"


def issue_token(servers: Servers, kind: str, scope: str, holder: str = "test",
                sector: str | None = None) -> str:
    """A credential issued straight into the session's database (an operator's optionally for
    one sector)."""
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

    return asyncio.run(run())


@pytest.fixture(scope="session")
def county_token(servers: Servers) -> str:
    """An operator's token for the demo county 430621: may submit for every unit in it."""
    return issue_token(servers, "operator", "430621", "县指挥部值班")


@pytest.fixture(scope="session")
def auth(county_token: str) -> dict[str, str]:
    """Headers carrying the county operator's token."""
    return {"Authorization": f"Bearer {county_token}"}


def eventually(check, timeout: float = 10.0, interval: float = 0.1):
    """Poll `check` until it returns a truthy value; the last value otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
