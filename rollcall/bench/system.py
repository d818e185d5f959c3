"""The system under test: servers, a province's registry, an operator's token and the three
services, each started as production starts it (`python -m rollcall serve NAME`)."""

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from rollcall.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from rollcall.migrate import upgrade
from shared import auth
from shared.clock import utc_now
from shared.db import make_engine, make_sessionmaker

SERVICES = ("ingest", "aggregate", "alerts")
# Commit timestamps let the benchmark read when each rollup was committed, not when it was seen.
PG_SETTINGS = {"track_commit_timestamp": "on"}
# `--statements`: PostgreSQL's own account of its time, statement by statement.
PG_STATEMENTS = {"shared_preload_libraries": "pg_stat_statements"}
TOP_STATEMENTS = 12
STATEMENTS = f"""
    SELECT regexp_replace(query, '\\s+', ' ', 'g') AS query, calls, rows,
           total_exec_time AS ms
    FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT {TOP_STATEMENTS}
"""


def dsn(database_url: str) -> str:
    return database_url.replace("postgresql+asyncpg://", "postgresql://")


def peak_rss_kib(pid: int) -> int | None:
    """VmHWM: the peak resident set of a process, in KiB (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, children: bool = False) -> float:
    """CPU time (user + system) a process has used; with `children`, also what its exited
    children used (PostgreSQL's backends are its postmaster's children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    used = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        used += int(fields[13]) + int(fields[14])  # cutime, cstime
    return used / TICKS


def children_of(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(c) for c in found]


@dataclass
class Service:
    name: str
    port: int
    proc: subprocess.Popen
    peak_kib: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sample(self) -> None:
        if self.proc.poll() is None:
            self.peak_kib = max(self.peak_kib, peak_rss_kib(self.proc.pid) or 0)


@dataclass
class System:
    root: Path
    nats_url: str = ""
    database_url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    servers: list = field(default_factory=list)
    nats_pid: int | None = None
    postgres_pid: int | None = None
    commit_timestamps: bool = False
    statements: bool = False  # pg_stat_statements on the embedded server, read per phase

    def start_servers(self, nats_url: str | None, database_url: str | None) -> None:
        if nats_url:
            self.nats_url = nats_url
        else:
            nats = EmbeddedNats(self.root / "nats")
            self.nats_url = nats.start()
            self.servers.append(nats)
            self.nats_pid = nats.proc.pid if nats.proc else None
        if database_url:
            self.database_url = database_url
        else:
            pg = EmbeddedPostgres(self.root / "postgres", settings={
                **PG_SETTINGS, **(PG_STATEMENTS if self.statements else {})})
            self.database_url = pg.start()
            self.servers.append(pg)
            self.postgres_pid = pg.proc.pid if pg.proc else None
        upgrade(self.database_url)
        self.commit_timestamps = asyncio.run(self._commit_timestamps_on())

    async def _commit_timestamps_on(self) -> bool:
        conn = await asyncpg.connect(dsn(self.database_url))
        try:
            if self.statements:
                await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            return await conn.fetchval("SHOW track_commit_timestamp") == "on"
        finally:
            await conn.close()

    async def measure_from(self) -> dict[str, float]:
        """The start of a measured phase: the CPU used so far (and PostgreSQL's statement
        counts reset, with `statements`)."""
        if self.statements:
            conn = await asyncpg.connect(dsn(self.database_url))
            try:
                await conn.execute("SELECT pg_stat_statements_reset()")
            finally:
                await conn.close()
        return self.cpu()

    async def measured(self, before: dict[str, float], reports: int) -> dict:
        """A phase's CPU per report since `measure_from`, and with `statements` the statements
        PostgreSQL spent most time on, in µs per report."""
        out: dict = {"cpu_us_per_report": self.cpu_since(before, reports)}
        if self.statements:
            conn = await asyncpg.connect(dsn(self.database_url))
            try:
                rows = await conn.fetch(STATEMENTS)
            finally:
                await conn.close()
            out["statements"] = [
                {"query": r["query"][:2000], "calls": r["calls"], "rows": r["rows"],
                 "us_per_report": round(r["ms"] * 1000 / max(reports, 1), 1)} for r in rows]
        return out

    def service_env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "ROLLCALL_NATS_URL": self.nats_url,
                "ROLLCALL_DATABASE_URL": self.database_url, **self.env, **extra}

    def start(self, name: str, timeout: float = 120) -> Service:
        port = free_port()
        logs = self.root / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "rollcall", "serve", name, "--port", str(port)],
                env=self.service_env(), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        service = Service(name, port, proc)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}; see {logs / name}.log")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                    self.services[name] = service
                    return service
            time.sleep(0.2)
        proc.kill()
        raise TimeoutError(f"{name} not ready within {timeout}s; see {logs / name}.log")

    def stop(self, name: str) -> None:
        service = self.services.pop(name, None)
        if service is None:
            return
        service.sample()
        service.proc.terminate()
        try:
            service.proc.wait(30)
        except subprocess.TimeoutExpired:
            service.proc.kill()
            service.proc.wait()

    def sample(self) -> None:
        for service in self.services.values():
            service.sample()

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each part: the services, the servers (PostgreSQL with
        every backend, live or exited) and the benchmark's own client."""
        used = {name: cpu_seconds(s.proc.pid) for name, s in self.services.items()}
        if self.nats_pid:
            used["nats-server"] = cpu_seconds(self.nats_pid)
        if self.postgres_pid:
            used["postgres"] = cpu_seconds(self.postgres_pid, children=True) + sum(
                cpu_seconds(c) for c in children_of(self.postgres_pid))
        used["bench client"] = cpu_seconds(os.getpid())
        return used

    async def settle(self, idle_share: float = 0.05, window_s: float = 1.0,
                     timeout_s: float = 600.0) -> float:
        """Wait until every service and PostgreSQL are idle (under `idle_share` of a CPU over
        `window_s`, twice in a row): work a service does at start, such as alerts checking the
        cutoffs that passed, is not counted in a measured phase. PostgreSQL counts too: alerts
        idles while one of its cutoff checks runs a long statement, and the next check follows
        (a settle on the services alone let the start-up checks run into the phases, where
        they took a core and showed as stalls). Returns the seconds waited."""
        start = time.monotonic()
        quiet = 0
        watched = [*self.services, "postgres"]
        while time.monotonic() - start < timeout_s and quiet < 2:
            before = self.cpu()
            await asyncio.sleep(window_s)
            after = self.cpu()
            idle = all(after.get(name, 0.0) - before.get(name, 0.0) < idle_share * window_s
                       for name in watched)
            quiet = quiet + 1 if idle else 0
        return time.monotonic() - start

    def cpu_since(self, before: dict[str, float], reports: int) -> dict[str, float]:
        """Microseconds of CPU per report each part used since `before` (from `cpu()`)."""
        now = self.cpu()
        used = {name: (now[name] - before.get(name, 0.0)) * 1e6 / max(reports, 1)
                for name in now}
        used["total"] = sum(used.values())
        return {name: round(us, 1) for name, us in used.items()}

    def close(self) -> None:
        for name in list(self.services):
            self.stop(name)
        for server in reversed(self.servers):
            server.stop()


def generate_registry(divisions: Path, within: str, out: Path) -> None:
    """Villages and units below real townships, as `rollcall registry generate` writes them."""
    from shared.registry.generate import generate_from

    files, problems = generate_from(divisions, within)
    if problems:
        raise RuntimeError("divisions do not read: " + "; ".join(map(str, problems[:5])))
    out.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (out / name).write_text(content, encoding="utf-8")


async def load_registry(database_url: str, divisions: Path, within: str, out: Path
                        ) -> dict[str, int]:
    """Generate the registry and import it (as `rollcall registry import` does)."""
    from rollcall.reference import import_files

    await asyncio.to_thread(generate_registry, divisions, within, out)
    _, result = await import_files(database_url, [out], within=within)
    if result.counts is None:
        raise RuntimeError("registry does not import: " + "; ".join(map(str, result.problems[:5])))
    conn = await asyncpg.connect(dsn(database_url))
    try:
        rows = await conn.fetch("SELECT level, count(*) AS n FROM registry.nodes "
                                "WHERE code LIKE $1 || '%' GROUP BY level", within)
        units = await conn.fetchval("SELECT count(*) FROM registry.units")
    finally:
        await conn.close()
    names = {1: "provinces", 2: "cities", 3: "counties", 4: "townships", 5: "villages"}
    return {**{names.get(r["level"], str(r["level"])): r["n"] for r in rows}, "units": units}


async def operator_token(database_url: str, scope: str) -> str:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            token, _ = await auth.issue(session, "operator", scope, "benchmark", utc_now())
    finally:
        await engine.dispose()
    return token


async def units_of(database_url: str) -> list[tuple[str, str, str]]:
    """(unit code, node code, unit type) of every unit, in a stable order."""
    conn = await asyncpg.connect(dsn(database_url))
    try:
        rows = await conn.fetch("""
            SELECT DISTINCT ON (p.unit_code) p.unit_code, p.node_code, u.unit_type
            FROM registry.placements p JOIN registry.units u ON u.code = p.unit_code
            ORDER BY p.unit_code, p.valid_from DESC""")
    finally:
        await conn.close()
    return [(r["unit_code"], r["node_code"], r["unit_type"]) for r in rows]
