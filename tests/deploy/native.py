"""Compose services as local processes: the commands, environment, NATS configuration and
healthchecks of the compose files, on loopback instead of in containers.

What changes from compose to here is only what the containers would provide: host names become
loopback addresses, volumes become temporary folders, every service gets a free port instead of
the image's 8080, and PostgreSQL is the session's embedded server with the compose role and a
fresh database.
"""

import asyncio
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from rollcall.embedded import EmbeddedNats, _wait_for_port, free_port
from tests.deploy.compose import (
    ENV_EXAMPLE,
    NATS_CONF,
    dotenv,
    environment,
    image_env,
    interpolate,
    load,
    merge,
)

USERS = ("ingest", "aggregate", "alerts", "notify", "ledger", "console", "admin")


def base_env() -> dict[str, str]:
    """The environment a container starts with: nothing of the host's Rollcall settings."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("ROLLCALL_") and k not in ("NATS_URL", "DATABASE_URL")}


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    port: int | None = None
    proc: subprocess.Popen | None = None

    def start(self) -> "Process":
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=out)
        return self

    def restarted(self) -> "Process":
        return Process(self.name, self.argv, self.env, self.log.with_suffix(".restart.log"),
                       self.port).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def sigterm_and_wait(self, timeout: float) -> tuple[int, float]:
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - started

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class NatsNode:
    host: str  # its compose service name
    port: int
    monitor: int
    log: Path
    process: Process


@dataclass
class Deployment:
    compose: dict
    env: dict[str, str]
    database_url: str
    root: Path
    nats: dict[str, NatsNode] = field(default_factory=dict)
    services: dict[str, Process] = field(default_factory=dict)

    def password(self, user: str) -> str:
        return self.env[f"NATS_{user.upper()}_PASSWORD"]

    def nats_url(self, user: str, host: str = "nats") -> str:
        return f"nats://{user}:{self.password(user)}@127.0.0.1:{self.nats[host].port}"

    # --- NATS ------------------------------------------------------------------------------

    def start_nats(self, host: str, cluster: dict[str, int] | None = None) -> NatsNode:
        """nats-server with compose's command and environment; /etc/nats and the /data volume
        are folders here. In a cluster, `cluster` maps each node to its route port."""
        spec = self.compose["services"][host]
        conf_dir, data_dir = self.root / f"{host}-etc", self.root / f"{host}-data"
        shutil.copytree(NATS_CONF, conf_dir)
        for conf in conf_dir.glob("*.conf"):
            conf.write_text(conf.read_text().replace("store_dir: /data", f"store_dir: {data_dir}"))
        argv = [a.replace("/etc/nats", str(conf_dir)) for a in spec["command"]]
        port, monitor = free_port(), free_port()
        log = self.root / f"{host}.log"
        argv = [EmbeddedNats.binary(), *argv, "-a", "127.0.0.1", "-p", str(port),
                "-m", str(monitor), "-l", str(log)]
        if cluster:
            argv += ["--cluster", f"nats://127.0.0.1:{cluster[host]}", "--routes",
                     ",".join(f"nats-route://127.0.0.1:{p}" for p in cluster.values())]
        process = Process(host, argv, {**base_env(), **environment(spec)},
                          self.root / f"{host}.out", port)
        process.start()
        assert process.proc is not None
        _wait_for_port(port, process.proc, "nats-server", log)
        node = self.nats[host] = NatsNode(host, port, monitor, log, process)
        return node

    def nats_healthcheck_url(self, host: str) -> str:
        """Compose's NATS healthcheck (wget of the monitoring port), aimed at the node here."""
        test = self.compose["services"][host]["healthcheck"]["test"]
        url = next(a for a in test if a.startswith("http://"))
        return url.replace("127.0.0.1:8222", f"127.0.0.1:{self.nats[host].monitor}")

    # --- Rollcall services -------------------------------------------------------------------

    def service_process(self, service: str, name: str | None = None) -> Process:
        """A compose service as a local process: the image's ENV, then compose's environment,
        then what loopback needs; argv is compose's command, `rollcall` run by this Python."""
        spec = self.compose["services"][service]
        command = spec["command"]
        assert command[0] == "rollcall"
        env = {k: v for k, v in image_env().items() if k.startswith("ROLLCALL_")}
        env.update(environment(spec, unset=False))
        env = {k: self._local(v) for k, v in env.items()}
        port = free_port()
        env.update(ROLLCALL_HTTP_HOST="127.0.0.1", ROLLCALL_HTTP_PORT=str(port))
        name = name or service
        return Process(name, [sys.executable, "-m", "rollcall", *command[1:]],
                       {**base_env(), **env}, self.root / f"{name}-{port}.log", port)

    def _local(self, value: str) -> str:
        for host, node in self.nats.items():
            value = value.replace(f"@{host}:4222", f"@127.0.0.1:{node.port}")
        if "@postgres:5432/" in value:
            return self.database_url
        return value

    def start(self, service: str, name: str | None = None) -> Process:
        process = self.services[name or service] = self.service_process(service, name).start()
        return process

    def healthcheck(self, process: Process) -> bool:
        """Compose's healthcheck command (the image's probe), run against this process."""
        test = self.compose["x-rollcall"]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"]
        result = subprocess.run([sys.executable, *test[2:]], env=process.env,
                                capture_output=True, timeout=30)
        return result.returncode == 0

    def wait_healthy(self, process: Process, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert process.proc is not None
            if process.proc.poll() is not None:
                raise AssertionError(f"{process.name} exited: {process.log.read_text()[-3000:]}")
            if self.healthcheck(process):
                return
            time.sleep(0.5)
        raise AssertionError(f"{process.name} not healthy: {process.log.read_text()[-3000:]}")

    def run_once(self, service: str, *argv: str) -> subprocess.CompletedProcess:
        """A one-shot service (migrate), or `docker compose run --rm SERVICE rollcall ARGV`."""
        process = self.service_process(service)
        if argv:
            process.argv = [sys.executable, "-m", "rollcall", *argv]
        return subprocess.run(process.argv, env=process.env, capture_output=True, text=True,
                              timeout=300)

    def stop(self) -> None:
        for process in self.services.values():
            process.stop()
        for node in self.nats.values():
            node.process.stop(signal.SIGINT)


def prepare(files: list[Path], server_url: str, root: Path) -> Deployment:
    """The compose files merged and interpolated with .env.example whose secrets are set (as
    `deploy/secrets.sh` does), and a fresh database for the compose role."""
    env = dotenv(ENV_EXAMPLE)
    env.update({k: secrets.token_hex(24) for k in env if k.endswith("_PASSWORD")})
    doc: dict = {}
    for path in files:
        doc = merge(doc, load(path))
    compose = interpolate(doc, env)
    return Deployment(compose, env, _fresh_database(server_url, env["POSTGRES_PASSWORD"]), root)


def _fresh_database(server_url: str, password: str) -> str:
    """The compose role (`rollcall`, owner of its database) on the session's PostgreSQL."""
    admin = make_url(server_url).set(drivername="postgresql")
    name = f"rollcall_deploy_{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'rollcall'")
            if not exists:
                await conn.execute("CREATE ROLE rollcall LOGIN")
            await conn.execute(f"ALTER ROLE rollcall PASSWORD '{password}'")
            await conn.execute(f'CREATE DATABASE "{name}" OWNER rollcall')
        finally:
            await conn.close()

    asyncio.run(create())
    return admin.set(username="rollcall", password=password, database=name).render_as_string(
        hide_password=False)
