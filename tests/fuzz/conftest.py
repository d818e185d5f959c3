"""The fuzz suites' own system: a NATS server and a database of their own, the four services
running as production runs them (`rollcall serve`, on 127.0.0.1), and tokens. Whatever the
fuzzers send stays here: the other suites never see it."""

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from rollcall.embedded import EmbeddedNats
from rollcall.migrate import upgrade
from rollcall.reference import load_demo_and_announce
from tests.conftest import RunningService, Servers, _fresh_database, issue_token, start_service

COUNTY = "430621"
UNIT = "430621108001-CL"  # the README's clinic: schema examples name it


@dataclass
class FuzzSystem:
    servers: Servers
    services: dict[str, RunningService]
    county_token: str
    unit_token: str

    def url(self, name: str) -> str:
        return self.services[name].url

    def auth(self, kind: str = "operator") -> dict[str, str]:
        token = self.county_token if kind == "operator" else self.unit_token
        return {"Authorization": f"Bearer {token}"}

    def alive(self) -> dict[str, int | None]:
        """Each service's exit code: None while it runs."""
        return {name: s.proc.poll() for name, s in self.services.items()}


@pytest.fixture(scope="session")
def fuzz_system(servers: Servers, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[FuzzSystem]:
    nats_server = EmbeddedNats(tmp_path_factory.mktemp("fuzz-nats"))
    nats_url = nats_server.start()
    running: dict[str, RunningService] = {}
    try:
        database_url = _fresh_database(servers.database_url)
        upgrade(database_url)
        asyncio.run(load_demo_and_announce(database_url, nats_url))
        own = Servers(nats_url, database_url)
        log_dir = tmp_path_factory.mktemp("fuzz-logs")
        for name in ("ingest", "aggregate", "alerts", "ledger"):
            running[name] = start_service(own, name, log_dir)
        yield FuzzSystem(own, running, issue_token(own, "operator", COUNTY, "模糊测试"),
                         issue_token(own, "unit", UNIT, "模糊测试"))
    finally:
        for service in running.values():
            service.stop()
        nats_server.stop()
